/**
 * A group acts on another group's message only when a quorum of that group's members sent the same
 * message: no single vault can forge a group decision. Callers key each message by all of its content
 * (bytes aside, which are checked against the chunk name), so copies that differ never add up.
 */
import { QUORUM_TIMEOUT_MS } from './constants.ts';
import { SafeVaultError } from '../api/errors.ts';

interface Round {
  senders: Set<string>;
  acted: boolean;
  result: Promise<unknown>;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
  timer: NodeJS.Timeout;
}

export class QuorumCollector {
  readonly #rounds = new Map<string, Round>();
  readonly #timeoutMs: number;

  constructor(timeoutMs = QUORUM_TIMEOUT_MS) {
    this.#timeoutMs = timeoutMs;
  }

  /**
   * Counts `sender`'s copy of message `key`. The `threshold`-th distinct sender runs `act`, once;
   * every copy, earlier or later, resolves with its result. A sender already counted in a round that
   * has acted starts a new round: the same message sent again is a new operation.
   */
  submit<R>(key: string, sender: string, threshold: number, act: () => Promise<R>): Promise<R> {
    let round = this.#rounds.get(key);
    if (round?.acted && round.senders.has(sender)) {
      this.#end(key, round);
      round = undefined;
    }
    round ??= this.#open(key);
    round.senders.add(sender);
    if (!round.acted && round.senders.size >= threshold) {
      round.acted = true;
      act().then(round.resolve, round.reject);
    }
    return round.result as Promise<R>;
  }

  /** Ends every pending round (a vault shutting down): its senders get an answer, not silence. */
  clear(): void {
    for (const [key, round] of this.#rounds) {
      if (!round.acted) round.reject(new SafeVaultError('unavailable', 'the vault stopped before a quorum formed'));
      this.#end(key, round);
    }
  }

  #open(key: string): Round {
    const { promise, resolve, reject } = Promise.withResolvers<unknown>();
    promise.catch(() => undefined); // a round nobody awaits any more must not crash the process
    const round: Round = {
      senders: new Set(),
      acted: false,
      result: promise,
      resolve,
      reject,
      timer: setTimeout(() => {
        if (!round.acted) reject(new SafeVaultError('unavailable', 'no quorum: too few group members agreed in time'));
        this.#end(key, round);
      }, this.#timeoutMs),
    };
    round.timer.unref();
    this.#rounds.set(key, round);
    return round;
  }

  #end(key: string, round: Round): void {
    clearTimeout(round.timer);
    if (this.#rounds.get(key) === round) this.#rounds.delete(key);
  }
}
