/** Close groups: the vaults closest to a name, as one vault's routing view sees them. */
import { sleep } from './clock.ts';
import { GROUP_SIZE, OP_DEADLINE_MS, QUORUM } from './constants.ts';
import { SafeVaultError, fail, isSafeVaultError } from '../api/errors.ts';
import type { MessageOf, MessageType, Persona, Reply } from './messages.ts';
import type { Name } from './names.ts';
import type { Network } from './transport.ts';
import { digestOf, type WireValue } from './wire/codec.ts';

/**
 * Matching answers needed from a group of `size` members online, in a view that has seen `known`
 * vaults: 3 of 4, or a majority of a network that never had a whole group. A vault cut off from a
 * larger network sees a smaller group, but still needs 3: a lone vault deciding on its own would
 * bring back, when the partition heals, what the others deleted meanwhile.
 */
export const quorumOf = (size: number, known = size): number => (size >= GROUP_SIZE || known >= GROUP_SIZE ? QUORUM : Math.floor(size / 2) + 1);

const READ_ROUNDS = 4;
/** Places beyond a group that other vaults' messages about it may come from: views lag most around churn. */
export const NEAR_SLACK = 2;

/** The reply `needed` of `replies` are equal to (compared by the hash of the canonical encoding), if any. */
function agreed<R>(replies: readonly R[], needed: number): R | undefined {
  const tally = new Map<string, number>();
  for (const reply of replies) {
    const key = digestOf(reply as unknown as WireValue);
    const votes = (tally.get(key) ?? 0) + 1;
    tally.set(key, votes);
    if (votes >= needed) return reply;
  }
  return undefined;
}

/** Reads whose replies carry the record's version, so a lagging member is outvoted by the newest. */
type VersionedRead = 'dm.info' | 'cm.refcount' | 'snm.account';

/** The record each versioned read is about, as its members keep it (see the books' keys). */
const RECORD_READ: { [T in VersionedRead]: (msg: MessageOf<T>) => { persona: Persona; key: Buffer } } = {
  'dm.info': (msg) => ({ persona: 'data_manager', key: msg.chunk }),
  'cm.refcount': (msg) => ({ persona: 'storage_client_manager', key: Buffer.concat([msg.client, msg.chunk]) }),
  'snm.account': (msg) => ({ persona: 'storage_node_manager', key: msg.node }),
};

export class Groups {
  readonly #network: Network;

  constructor(network: Network) {
    this.#network = network;
  }

  /** The close group of `target`; `exclude` leaves out the subject itself (a node is not its own manager). */
  members(target: Name, exclude?: Name): Name[] {
    return this.#network.view.closest(target, GROUP_SIZE, exclude);
  }

  /** Whether `vault` may act for the group of `target`; one extra place allows for views that lag. */
  isMember(target: Name, vault: Name, exclude?: Name): boolean {
    return this.isWithin(target, vault, 1, exclude);
  }

  /** Whether another vault's message about `target` may come from `vault` (NEAR_SLACK places of slack). */
  isNear(target: Name, vault: Name, exclude?: Name): boolean {
    return this.isWithin(target, vault, NEAR_SLACK, exclude);
  }

  /** Whether `vault` is in the group of `target`, or `slack` places beyond it. */
  isWithin(target: Name, vault: Name, slack: number, exclude?: Name): boolean {
    return this.#network.view.isAmongClosest(target, vault, GROUP_SIZE + slack, exclude);
  }

  /**
   * Asks every member and returns the reply a quorum agrees on (compared by the hash of its
   * canonical encoding); if the members' versions differ, the newest reply that enough members
   * answered at all. Refusals from a quorum are the group's answer.
   */
  async read<T extends VersionedRead>(target: Name, message: MessageOf<T>, exclude?: Name): Promise<Reply<T>> {
    return (await this.readAll(target, message, exclude)).reply;
  }

  /**
   * As `read`, with the newest version any member answered with: newer than the reply's when a
   * quorum still agrees on a state that some member has seen superseded (a group catching up).
   */
  async readAll<T extends VersionedRead>(target: Name, message: MessageOf<T>, exclude?: Name): Promise<{ reply: Reply<T>; newest: number }> {
    return this.#retried(() => this.#readOnce(target, message, exclude));
  }

  /**
   * What a quorum of `target`'s group agrees it decided, or 'unavailable' when no quorum agrees (yet):
   * how one group checks a message another group's member passed on, so no single vault can forge it.
   */
  async confirm(target: Name, message: MessageOf<'cm.passed'>): Promise<Reply<'cm.passed'>> {
    return this.#retried(async () => {
      const { answers, needed } = await this.#askAll(target, message);
      return agreed(answers.map((a) => a.reply), needed) ?? fail('unavailable', `the group does not agree on that (${needed} matching answers needed)`);
    });
  }

  async #retried<R>(attempt: () => Promise<R>): Promise<R> {
    const { clock } = this.#network;
    for (let round = 0; ; round++) {
      try {
        return await attempt();
      } catch (error) {
        // A lost answer or a member that just went is churn: ask again, a few times.
        if (round >= READ_ROUNDS - 1 || !isSafeVaultError(error) || error.code !== 'unavailable') throw error;
        await sleep(clock, 100 * 2 ** round * (0.5 + clock.random()));
      }
    }
  }

  async #readOnce<T extends VersionedRead>(target: Name, message: MessageOf<T>, exclude?: Name): Promise<{ reply: Reply<T>; newest: number }> {
    const { answers, needed } = await this.#askAll(target, message, exclude);
    const replies = answers.map((a) => a.reply);
    const newest = [...replies].sort((a, b) => b.version - a.version)[0]!;
    this.#repair(message, answers, newest.version);
    return { reply: agreed(replies, needed) ?? newest, newest: newest.version };
  }

  /** Every member's answer; 'unavailable' unless at least a quorum answered. */
  async #askAll<T extends MessageType>(target: Name, message: MessageOf<T>, exclude?: Name): Promise<{ answers: { member: Name; reply: Reply<T> }[]; needed: number }> {
    const members = this.members(target, exclude);
    if (members.length === 0) throw new SafeVaultError('unavailable', 'no vaults are online');
    const needed = quorumOf(members.length, this.#network.view.knownCount());
    const settled = await Promise.allSettled(members.map((m) => this.#network.request(m, message)));
    const answers = settled.flatMap((s, i) => (s.status === 'fulfilled' ? [{ member: members[i]!, reply: s.value as Reply<T> }] : []));
    if (answers.length < needed) {
      const reason = settled.find((s) => s.status === 'rejected')?.reason as Error | undefined;
      throw new SafeVaultError('unavailable', `the group could not answer (${needed} of ${members.length} needed)${reason ? `: ${reason.message}` : ''}`);
    }
    return { answers, needed };
  }

  /**
   * Read-repair: tells each member that answered with a version older than `newest` that it is
   * behind; it catches up from its group itself (Replicas.pull). Nothing is sent when all agree.
   */
  #repair<T extends VersionedRead>(message: MessageOf<T>, answers: { member: Name; reply: Reply<T> }[], newest: number): void {
    const stale = answers.filter((a) => a.reply.version < newest).map((a) => a.member);
    if (stale.length === 0) return;
    const record = (RECORD_READ[message.type] as (msg: MessageOf<T>) => { persona: Persona; key: Buffer })(message);
    for (const member of stale) void this.#network.request(member, { type: 'rec.behind', ...record }).catch(() => undefined);
  }

  /**
   * Has one member of `target`'s group handle `message` (it decides with the rest of its group):
   * the closest first, then the next while they are unreachable, round after round with backoff
   * until `deadlineMs` passed (or the absolute `deadline` a client's request carries). The message
   * carries its operation id, so a repeat counts once.
   */
  async askMember<T extends MessageType>(target: Name, message: MessageOf<T>, options: { exclude?: Name; deadlineMs?: number; deadline?: number } = {}): Promise<Reply<T>> {
    const { clock } = this.#network;
    const deadline = options.deadline ?? clock.now() + (options.deadlineMs ?? OP_DEADLINE_MS);
    let last: unknown;
    for (let round = 0; clock.now() < deadline; round++) {
      for (const member of this.members(target, options.exclude)) {
        try {
          return await this.#network.request(member, message);
        } catch (error) {
          if (!isSafeVaultError(error) || error.code !== 'unavailable') throw error;
          last = error;
        }
      }
      await sleep(clock, Math.min(5000, 50 * 2 ** round) * (0.5 + clock.random()));
    }
    throw new SafeVaultError('unavailable', `no member of the group answered in time${last ? `: ${(last as Error).message}` : ''}`);
  }
}
