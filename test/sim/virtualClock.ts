/**
 * Virtual time for the simulation: timers run in order of their due time (ties in the order they
 * were set), and chance comes from one seeded generator, so a run replays exactly from its seed.
 * Between two timers every microtask runs to completion: the engine does no other I/O here
 * (SQLite and the chunk files are synchronous), so nothing else can interleave.
 */
import type { Clock } from '../../electron/engine/clock.ts';

interface Timer {
  at: number;
  seq: number;
  fn: () => void;
  cancelled: boolean;
}

/** sfc32: small, fast, and good enough to drive a simulation. */
function generator(seed: number): () => number {
  let a = 0x9e3779b9 ^ seed;
  let b = 0x243f6a88 ^ (seed * 31);
  let c = 0xb7e15162 ^ (seed * 17);
  let d = seed | 1;
  const next = () => {
    a |= 0;
    b |= 0;
    c |= 0;
    d |= 0;
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return (t >>> 0) / 4294967296;
  };
  for (let i = 0; i < 20; i++) next();
  return next;
}

const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

export class VirtualClock implements Clock {
  #now = Date.UTC(2026, 0, 1);
  #seq = 0;
  readonly #heap: Timer[] = [];
  readonly random: () => number;
  /** Timers run so far: the simulation's own measure of work done. */
  steps = 0;

  constructor(seed: number) {
    this.random = generator(seed);
  }

  now(): number {
    return this.#now;
  }

  after(ms: number, fn: () => void): () => void {
    const timer: Timer = { at: this.#now + Math.max(0, Math.round(ms)), seq: this.#seq++, fn, cancelled: false };
    this.#push(timer);
    return () => {
      timer.cancelled = true;
    };
  }

  bytes(count: number): Buffer {
    const out = Buffer.alloc(count);
    for (let i = 0; i < count; i++) out[i] = Math.floor(this.random() * 256);
    return out;
  }

  /** Runs timers until `work` settles; fails if nothing is left to run while it is still pending. */
  async drive<T>(work: Promise<T>, limitMs = 24 * 3600_000): Promise<T> {
    let done = false;
    work.then(
      () => (done = true),
      () => (done = true),
    );
    const limit = this.#now + limitMs;
    for (;;) {
      await settle();
      if (done) return work;
      if (!this.#step(limit)) throw new Error(`simulation stalled at +${this.#now - Date.UTC(2026, 0, 1)} ms: nothing left to run`);
    }
  }

  /** Lets `ms` of virtual time pass, running every timer due in it. */
  async pass(ms: number): Promise<void> {
    const until = this.#now + ms;
    for (;;) {
      await settle();
      if (!this.#step(until)) break;
    }
    this.#now = until;
  }

  #step(limit: number): boolean {
    for (;;) {
      const timer = this.#pop();
      if (!timer) return false;
      if (timer.at > limit) {
        this.#push(timer);
        return false;
      }
      if (timer.cancelled) continue;
      this.#now = Math.max(this.#now, timer.at);
      this.steps++;
      timer.fn();
      return true;
    }
  }

  #before(a: Timer, b: Timer): boolean {
    return a.at < b.at || (a.at === b.at && a.seq < b.seq);
  }

  #push(timer: Timer): void {
    const heap = this.#heap;
    heap.push(timer);
    for (let i = heap.length - 1; i > 0; ) {
      const parent = (i - 1) >> 1;
      if (!this.#before(heap[i]!, heap[parent]!)) break;
      [heap[i], heap[parent]] = [heap[parent]!, heap[i]!];
      i = parent;
    }
  }

  #pop(): Timer | undefined {
    const heap = this.#heap;
    const top = heap[0];
    const last = heap.pop();
    if (heap.length > 0 && last) {
      heap[0] = last;
      for (let i = 0; ; ) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < heap.length && this.#before(heap[l]!, heap[m]!)) m = l;
        if (r < heap.length && this.#before(heap[r]!, heap[m]!)) m = r;
        if (m === i) break;
        [heap[i], heap[m]] = [heap[m]!, heap[i]!];
        i = m;
      }
    }
    return top;
  }
}
