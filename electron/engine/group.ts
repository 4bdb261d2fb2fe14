/** Talking to and hearing from close groups: the 4 vaults closest to a name. */
import { GROUP_SIZE, QUORUM } from './constants.ts';
import { SafeVaultError, isSafeVaultError } from '../api/errors.ts';
import type { Message, Reply } from './messages.ts';
import type { Name } from './names.ts';
import type { RoutingTable, Transport } from './transport.ts';

/** Matching copies needed from a group of `size` members: 3 of 4, or a majority of a smaller network. */
export const quorumOf = (size: number): number => (size >= GROUP_SIZE ? QUORUM : Math.floor(size / 2) + 1);

export class Groups {
  readonly #routing: RoutingTable;
  readonly #transport: Transport;

  constructor(routing: RoutingTable, transport: Transport) {
    this.#routing = routing;
    this.#transport = transport;
  }

  /** The close group of `target`; `exclude` leaves out the subject itself (a node is not its own manager). */
  members(target: Name, exclude?: Name): Name[] {
    return this.#routing.closest(target, GROUP_SIZE, exclude);
  }

  /** Whether `sender` may speak for the group of `target`; one extra place allows for churn in flight. */
  isMember(target: Name, sender: Name, exclude?: Name): boolean {
    return this.#routing.closest(target, GROUP_SIZE + 1, exclude).some((m) => m.equals(sender));
  }

  threshold(target: Name, exclude?: Name): number {
    return quorumOf(this.members(target, exclude).length);
  }

  /**
   * Sends `message` to every member of `target`'s group and returns the reply a quorum agrees on, as
   * soon as it does: a slow or diverging member doesn't hold up the group's answer. If a quorum
   * refuses with the same error, that error is thrown: the group's answer is a refusal.
   */
  ask<M extends Message>(target: Name, message: M, exclude?: Name): Promise<Reply<M['type']>> {
    const members = this.members(target, exclude);
    if (members.length === 0) return Promise.reject(new SafeVaultError('unavailable', 'no vaults are online'));
    const needed = quorumOf(members.length);
    const { promise, resolve, reject } = Promise.withResolvers<Reply<M['type']>>();
    const tally = new Map<string, number>();
    let pending = members.length;
    let firstError: unknown;
    const count = (key: string, settle: () => void) => {
      const votes = (tally.get(key) ?? 0) + 1;
      tally.set(key, votes);
      if (votes === needed) settle();
      // Once no answer can still reach a quorum, say so without waiting for the stragglers.
      if (--pending + Math.max(...tally.values()) < needed || pending === 0) {
        const detail = firstError ? `: ${(firstError as Error).message}` : '';
        reject(new SafeVaultError('unavailable', `the group could not agree (${needed} of ${members.length} needed)${detail}`));
      }
    };
    for (const member of members) {
      this.#transport.request(member, message).then(
        (reply) => count(`ok:${JSON.stringify(reply)}`, () => resolve(reply)),
        (error: unknown) => {
          firstError ??= error;
          count(`error:${errorKey(error)}`, () => reject(error));
        },
      );
    }
    return promise;
  }
}

const errorKey = (error: unknown): string => (isSafeVaultError(error) ? `${error.code}:${error.message}` : String(error));
