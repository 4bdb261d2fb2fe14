/**
 * Time and chance as the engine sees them. In the app they are the system's; in the simulation
 * they are virtual and seeded, so a run (and a failing seed) replays exactly.
 */
import { randomBytes } from 'node:crypto';

export interface Clock {
  now(): number;
  /** Runs `fn` after `ms`; returns a cancel function. */
  after(ms: number, fn: () => void): () => void;
  /** Uniform in [0, 1): jitter and backoff draw from here. */
  random(): number;
  /** Operation ids and nonces. */
  bytes(count: number): Buffer;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  after(ms, fn) {
    const timer = setTimeout(fn, ms);
    timer.unref();
    return () => clearTimeout(timer);
  },
  random: () => Math.random(),
  bytes: (count) => randomBytes(count),
};

/** Resolves after `ms` on `clock`. */
export const sleep = (clock: Clock, ms: number): Promise<void> => new Promise((resolve) => clock.after(ms, resolve));

/** Rejects with `error()` unless `work` settles within `ms` on `clock`. */
export function within<T>(clock: Clock, ms: number, work: Promise<T>, error: () => Error): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const cancel = clock.after(ms, () => reject(error()));
    work.then(
      (value) => {
        cancel();
        resolve(value);
      },
      (reason: unknown) => {
        cancel();
        reject(reason);
      },
    );
  });
}
