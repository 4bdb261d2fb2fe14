/**
 * Churn at scale on one data_manager's table (the one the layouts benchmark built): the real
 * handling of a holder leaving (the data_manager's own onMembershipChange: it finds, through the
 * holder index, the departed holder's chunks it leads, and for each has its group decide the new
 * holders while it sends the copies), and the transfer work of a vault joining (planTransfer over
 * the affected name ranges, and the transfer frames).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { systemClock } from '../../electron/engine/clock.ts';
import { openDatabase, type Db } from '../../electron/engine/db.ts';
import { EventBus } from '../../electron/engine/events.ts';
import { GROUP_SIZE } from '../../electron/engine/constants.ts';
import { Groups, NEAR_SLACK } from '../../electron/engine/group.ts';
import { KeyedLock } from '../../electron/engine/keyedLock.ts';
import { parseMessage, type Message, type MessageOf } from '../../electron/engine/messages.ts';
import { closest, toHex, type Name } from '../../electron/engine/names.ts';
import type { VaultContext } from '../../electron/engine/personas/context.ts';
import { DataManager } from '../../electron/engine/personas/dataManager.ts';
import { Replicas } from '../../electron/engine/replica.ts';
import { SenderJudge } from '../../electron/engine/senderJudge.ts';
import { View, type Network } from '../../electron/engine/transport.ts';
import { planTransfer } from '../../electron/engine/vault.ts';
import { decodeFrame, encodeFrame, type WireValue } from '../../electron/engine/wire/codec.ts';
import { readReply, requestFrame } from '../../electron/engine/wire/frames.ts';

export interface LeaveResult {
  lookupMs: number;
  wholeMs: number;
  /** Chunks the departed holder held, and those of them this vault leads (and so handles). */
  held: number;
  chunks: number;
  copies: number;
  copyBytes: number;
  frames: number;
  /** Of wholeMs, the time the other vaults spent answering (group members; new holders and account managers, whose answers are only replies here): their own machines' work in a real network. */
  othersMs: number;
  /**
   * The whole handling as on a network, where every member is a machine of its own (see Timeline):
   * the leader works while the members answer, and waits only for replies it needs and has not got.
   * Network latency left out.
   */
  networkMs: number;
  /** Of networkMs, the time the leader waited for members' replies. */
  waitedMs: number;
  /**
   * The departure as the whole network handles it: every vault leads the review of the departed
   * holder's chunks nearest it and answers its neighbours' batches, side by side. The busiest vault's
   * work, worked out from this run's costs per record (leading; answering as a member, prepare to
   * commit; as one of the two witnesses after the members, prepare only) and how many of the
   * departed holder's records it has each part in.
   */
  busiest: { ms: number; leads: number; member: number; witness: number };
}

/**
 * The leave's timeline as on a network, in one thread: the leader's clock runs with its own work
 * only (members' answers are timed and taken out), and each member, a machine of its own, answers a
 * request once it has arrived and the member is free. A reply is handed to the leader when it has
 * nothing else to run, earliest first; if it comes later than the leader's clock, the leader waited.
 */
class Timeline {
  readonly #start = performance.now();
  #answering = 0;
  #waited = 0;
  readonly #freeAt = new Map<string, number>();
  readonly #due: { at: number; deliver: () => void }[] = [];
  #pumping = false;
  /** By message type: the members' time answering, and the records the messages carried. */
  readonly spent = new Map<string, { ms: number; records: number }>();

  /** The leader's clock, in ms since the start. */
  now(): number {
    return performance.now() - this.#start - this.#answering + this.#waited;
  }

  get waited(): number {
    return this.#waited;
  }

  /** The members' work, all of it. */
  get answering(): number {
    return this.#answering;
  }

  /** A request sent now to `member`, which answers it in `answer` (timed: the member's work, not the leader's); its reply, when it comes. */
  ask<T>(member: string, type: string, records: number, answer: () => T): Promise<T> {
    const sent = this.now();
    const t = performance.now();
    const reply = answer();
    const ms = performance.now() - t;
    this.#answering += ms;
    const spent = this.spent.get(type) ?? { ms: 0, records: 0 };
    this.spent.set(type, { ms: spent.ms + ms, records: spent.records + records });
    const at = Math.max(sent, this.#freeAt.get(member) ?? 0) + ms;
    this.#freeAt.set(member, at);
    return new Promise((resolve) => {
      this.#due.push({ at, deliver: () => resolve(reply) });
      this.#pump();
    });
  }

  #pump(): void {
    if (this.#pumping) return;
    this.#pumping = true;
    // setImmediate runs once the leader's pending work (its microtasks) is done.
    setImmediate(() => {
      this.#pumping = false;
      let first = 0;
      this.#due.forEach((d, i) => d.at < this.#due[first]!.at && (first = i));
      const [next] = this.#due.splice(first, 1);
      if (!next) return;
      this.#waited += Math.max(0, next.at - this.now());
      next.deliver();
      if (this.#due.length) this.#pump();
    });
  }
}

/** What a departed holder's chunks are: the bytes a surviving holder serves (they hash to the name), and the size recorded. */
export type HeldChunks = Map<string, { bytes: Buffer; size: number }>;

/** A vault of the benchmark: its data_manager and replicas on `db`, linked to the others by `network`. */
function vaultOn(self: Name, db: Db, network: Network): { replicas: Replicas; dataManager: DataManager; judge: SenderJudge } {
  const locks = new KeyedLock();
  const replicas = new Replicas({ self, db, network, locks });
  const ctx: VaultContext = { self, db, network, clock: systemClock, groups: new Groups(network), locks, replicas, events: new EventBus() };
  const dataManager = new DataManager(ctx, () => undefined);
  replicas.register(dataManager);
  return { replicas, dataManager, judge: new SenderJudge(self, ctx.groups, replicas) };
}

/**
 * `leaving` leaves the view of the vault whose table `db` is: the time its data_manager
 * takes to handle it, group decisions and copy requests included. The other members of each group are
 * real replicas on their own databases in this process (their share of the work is timed too, and told apart); storage
 * nodes and node accounts answer at once, and every request is encoded as a frame, as on the wire.
 */
export async function holderLeaves(db: Db, vaults: Name[], leaving: Name, held: HeldChunks): Promise<LeaveResult> {
  // The vault with the most work: the one closest to the most of the departed holder's chunks.
  const online = vaults.filter((v) => !v.equals(leaving));
  const leads = new Map<string, number>();
  for (const hex of held.keys()) {
    const leader = toHex(closest(Buffer.from(hex, 'hex'), online, 1)[0]!);
    leads.set(leader, (leads.get(leader) ?? 0) + 1);
  }
  const self = online.reduce((best, v) => ((leads.get(toHex(v)) ?? 0) > (leads.get(toHex(best)) ?? 0) ? v : best));
  const view = new View();
  for (const v of vaults) view.apply('joined', v, true);
  const counts = { copies: 0, copyBytes: 0, frames: 0 };
  let timeline = new Timeline();
  const members = new Map<string, ReturnType<typeof vaultOn>>();
  // Each member's records in a file of its own, as a vault keeps them.
  const memberDir = mkdtempSync(join(tmpdir(), 'safevault-members-'));
  const memberDbs: Db[] = [];
  const memberOf = (vault: Name): ReturnType<typeof vaultOn> => {
    let member = members.get(toHex(vault));
    if (!member) {
      memberDbs.push(openDatabase(join(memberDir, `${toHex(vault)}.sqlite`)));
      members.set(toHex(vault), (member = vaultOn(vault, memberDbs.at(-1)!, networkOf(vault))));
    }
    return member;
  };
  const answer = (from: Name, to: Name, message: Message): unknown => {
    switch (message.type) {
      case 'rec.prepare':
      case 'rec.accept':
      case 'rec.commit':
      case 'rec.steps':
      case 'rec.prepareMany':
      case 'rec.acceptMany':
      case 'rec.commitMany': {
        // The sender is judged as a vault judges it: the message by its rule, then each step or record.
        const { replicas, judge } = memberOf(to);
        judge.judge(from, message);
        const check = (key: Buffer) => judge.judgeRecord(from, message as MessageOf<'rec.prepareMany'>, key);
        return message.type === 'rec.steps' ? replicas.onSteps(message.steps, (step) => judge.judge(from, step))
          : message.type === 'rec.prepareMany' ? replicas.onPrepareMany(message, check)
          : message.type === 'rec.acceptMany' ? replicas.onAcceptMany(message, check)
          : message.type === 'rec.commitMany' ? replicas.onCommitMany(message, check)
          : replicas.onDecision(message);
      }
      case 'node.get':
        return { bytes: held.get(toHex(message.chunk))!.bytes };
      case 'node.store':
      case 'node.storeMany': {
        const orders = message.type === 'node.store' ? [message] : message.orders;
        counts.copies += orders.length;
        for (const order of orders) counts.copyBytes += held.get(toHex(order.chunk))!.size;
        return message.type === 'node.store' ? { added: true } : { replies: orders.map(() => ({ reply: { added: true } })) };
      }
      case 'snm.account': {
        const account = { donated: 2 ** 40, storedBytes: 0, storedCount: 0, lostBytes: 0, lostCount: 0, rank: message.node[0]! };
        return { version: 1, account };
      }
      default:
        throw new Error(`the benchmark does not answer ${message.type}`);
    }
  };
  const networkOf = (from: Name): Network => ({
    self: from,
    view,
    clock: systemClock,
    // Both ways as frames, as on the wire: the receiver decodes and checks the message and encodes its reply; the sender reads the reply.
    request: async <T extends Message['type']>(to: Name, message: MessageOf<T>) => {
      counts.frames++;
      const frame = requestFrame(message);
      // The answer is the other vault's work, on its own machine (a storage node's or an account's is only its reply here).
      const answered = () => encodeFrame('reply', answer(from, to, parseMessage(decodeFrame(frame).value)) as WireValue);
      const reply = await timeline.ask(toHex(to), message.type, recordsIn(message as Message), answered);
      return readReply(message.type, reply, toHex(to).slice(0, 12));
    },
  });
  const { dataManager } = vaultOn(self, db, networkOf(self));
  // The other members of each chunk's group (and the two vaults of slack after them) hold its record, as in a real network.
  for (const hex of held.keys()) {
    const chunk = Buffer.from(hex, 'hex');
    const near = closest(chunk, online, GROUP_SIZE + NEAR_SLACK);
    const record = dataManager.load(chunk);
    if (!near[0]!.equals(self) || !record) continue;
    for (const member of near.slice(1).map(memberOf)) member.replicas.install(member.dataManager, chunk, { ...record, ops: [] });
  }

  view.apply('left', leaving, false);
  const t0 = performance.now();
  const led = dataManager.ledRanges();
  const entries = [...dataManager.chunks.entriesHeldIn(leaving, () => led)];
  const lookupMs = performance.now() - t0;
  // Each entry's record is read by its review, not by the lookup.
  const chunks = entries.reduce((n, entry) => n + dataManager.chunks.chunksAt(entry).length, 0);
  timeline = new Timeline();
  const t1 = performance.now();
  await dataManager.onMembershipChange(leaving, false);
  const wholeMs = performance.now() - t1;
  const networkMs = timeline.now();
  for (const memberDb of memberDbs) memberDb.close();
  rmSync(memberDir, { recursive: true, force: true });
  const perRecord = (type: Message['type']) => {
    const spent = timeline.spent.get(type);
    return spent ? spent.ms / spent.records : 0;
  };
  const costs = { lead: (wholeMs - timeline.answering) / chunks, witness: perRecord('rec.prepareMany') };
  const member = costs.witness + perRecord('rec.acceptMany') + perRecord('rec.commitMany');
  const parts = new Map<string, { leads: number; member: number; witness: number }>();
  for (const hex of held.keys()) {
    closest(Buffer.from(hex, 'hex'), online, GROUP_SIZE + NEAR_SLACK).forEach((vault, place) => {
      const part = parts.get(toHex(vault)) ?? { leads: 0, member: 0, witness: 0 };
      part[place === 0 ? 'leads' : place < GROUP_SIZE ? 'member' : 'witness']++;
      parts.set(toHex(vault), part);
    });
  }
  const busiest = [...parts.values()]
    .map((part) => ({ ...part, ms: part.leads * costs.lead + part.member * member + part.witness * costs.witness }))
    .reduce((a, b) => (b.ms > a.ms ? b : a));
  return { lookupMs, wholeMs, networkMs, waitedMs: timeline.waited, othersMs: timeline.answering, busiest, held: held.size, chunks, ...counts };
}

/** The records a decision message carries. */
function recordsIn(message: Message): number {
  switch (message.type) {
    case 'rec.prepareMany':
      return message.slots.length;
    case 'rec.acceptMany':
      return message.values.length;
    case 'rec.commitMany':
      return message.keys.length;
    case 'rec.steps':
      return message.steps.length;
    case 'node.storeMany':
      return message.orders.length;
    default:
      return 1;
  }
}

export interface JoinResult {
  ms: number;
  examined: number;
  sent: number;
  frames: number;
  records: number;
}

/** Vault `joining` joins next to the vault whose table this is: the transfer that vault works out and encodes. */
export function vaultJoins(db: Db, vaults: Name[], joining: Name): JoinResult {
  const self = closest(joining, vaults, 1)[0]!;
  const network = { self, clock: systemClock } as unknown as Network;
  const { replicas, dataManager } = vaultOn(self, db, network);
  const records = dataManager.count();
  const t0 = performance.now();
  const plan = planTransfer(replicas, self, { kind: 'joined', vault: joining, graceful: true, before: vaults, after: [...vaults, joining] });
  let frames = 0;
  for (const { message } of plan.sends) frames += requestFrame(message).length > 0 ? 1 : 0;
  return { ms: performance.now() - t0, examined: plan.examined, sent: plan.sent, frames, records };
}
