/** 256-bit names and XOR closeness: the geometry every group decision is made in. */
import { hash } from 'node:crypto';

export type Name = Buffer;
export const NAME_BYTES = 32;

export const sha256 = (data: Buffer | Uint8Array): Name => hash('sha256', data, 'buffer');
export const toHex = (name: Name): string => name.toString('hex');
/** Whether two names are the same: their first bytes compared here first, as most pairs differ there and Buffer.equals is a call into C++. */
export const sameName = (a: Name, b: Name): boolean => a === b || (a[0] === b[0] && a[1] === b[1] && a.equals(b));

export function fromHex(hex: string): Name {
  if (!/^[0-9a-f]{64}$/.test(hex)) throw new TypeError(`not a 64-digit hex name: ${hex.slice(0, 80)}`);
  return Buffer.from(hex, 'hex');
}

/** Negative when `a` is closer to `target` than `b` (XOR metric, compared bytewise). */
export function compareDistance(target: Name, a: Name, b: Name): number {
  for (let i = 0; i < NAME_BYTES; i++) {
    const da = a[i]! ^ target[i]!;
    const db = b[i]! ^ target[i]!;
    if (da !== db) return da - db;
  }
  return 0;
}

/** The `count` names closest to `target`, closest first; `exclude` is never included. */
export function closest(target: Name, names: Iterable<Name>, count: number, exclude?: Name): Name[] {
  const best: Name[] = [];
  for (const name of names) {
    if (exclude && name.equals(exclude)) continue;
    if (best.length === count && compareDistance(target, name, best[count - 1]!) >= 0) continue;
    let i = best.length === count ? count - 1 : best.length;
    while (i > 0 && compareDistance(target, name, best[i - 1]!) < 0) {
      if (i < count) best[i] = best[i - 1]!;
      i--;
    }
    best[i] = name;
    if (best.length > count) best.length = count;
  }
  return best;
}

/** Targets are remembered by at most this many leading bits (read as one number). */
const MEMO_BITS = 48;
/** Past this many targets remembered, the memo starts again: a bound on memory, never on correctness. */
const MEMO_TARGETS = 1 << 16;

/**
 * closest() over a fixed set of names, remembered by the target's leading bits. Which of two names
 * is nearer a target depends only on the target's bit where the two first differ, so the target's
 * first `depth` bits (one past the longest prefix two names share) decide the whole order: targets
 * sharing them share their closest names. A view is asked this for every record of a batch, and a
 * vault's records cluster near it, so most answers come from the memo.
 */
export class ClosestNames {
  readonly #names: Name[];
  /** The bits that decide the order, or undefined if more than MEMO_BITS (names sharing long prefixes): not remembered then. */
  readonly #depth: number | undefined;
  /** By count, then by the target's first `depth` bits. */
  #memo = new Map<number, Map<number, Name[]>>();
  #remembered = 0;

  constructor(names: Iterable<Name>) {
    this.#names = [...names];
    const sorted = [...this.#names].sort(Buffer.compare);
    let shared = 0;
    for (let i = 1; i < sorted.length; i++) shared = Math.max(shared, commonBits(sorted[i - 1]!, sorted[i]!));
    this.#depth = sorted.length < 2 ? 0 : shared < MEMO_BITS ? shared + 1 : undefined;
  }

  /** As closest(target, names, count, exclude); a fresh array each time. */
  closest(target: Name, count: number, exclude?: Name): Name[] {
    // Leaving one name out keeps the others' order: the first `count` of one more, without it.
    const near = this.#near(target, exclude ? count + 1 : count);
    return exclude ? near.filter((name) => !name.equals(exclude)).slice(0, count) : [...near];
  }

  /** Whether `name` is among closest(target, count, exclude), without a copy of the list. */
  includes(target: Name, count: number, name: Name, exclude?: Name): boolean {
    let place = 0;
    for (const near of this.#near(target, exclude ? count + 1 : count)) {
      if (exclude && sameName(near, exclude)) continue;
      if (place++ === count) return false;
      if (sameName(near, name)) return true;
    }
    return false;
  }

  /** The `wanted` names closest to `target`, nearest first: the memo's list itself (never to be changed), or a new one where names share long prefixes. */
  #near(target: Name, wanted: number): readonly Name[] {
    if (this.#depth === undefined) return closest(target, this.#names, wanted);
    const prefix = Math.floor(target.readUIntBE(0, MEMO_BITS / 8) / 2 ** (MEMO_BITS - this.#depth));
    let byPrefix = this.#memo.get(wanted);
    if (!byPrefix) this.#memo.set(wanted, (byPrefix = new Map()));
    let found = byPrefix.get(prefix);
    if (!found) {
      if (++this.#remembered > MEMO_TARGETS) {
        this.#remembered = 1;
        this.#memo = new Map([[wanted, (byPrefix = new Map())]]);
      }
      byPrefix.set(prefix, (found = closest(target, this.#names, wanted)));
    }
    return found;
  }
}

/** The names from `from` to `to`, both included (bytewise order). */
export interface NameRange {
  from: Name;
  to: Name;
}

/** The whole name space. */
export const EVERY_NAME: NameRange = { from: Buffer.alloc(NAME_BYTES, 0), to: Buffer.alloc(NAME_BYTES, 0xff) };

const bit = (name: Name, i: number): number => (name[i >> 3]! >> (7 - (i & 7))) & 1;

/** Every name starting with the first `bits` bits of `prefix`. */
function subtree(prefix: Name, bits: number): NameRange {
  const from = Buffer.from(prefix);
  const to = Buffer.from(prefix);
  for (let i = bits; i < NAME_BYTES * 8; i++) {
    from[i >> 3] = from[i >> 3]! & ~(0x80 >> (i & 7));
    to[i >> 3] = to[i >> 3]! | (0x80 >> (i & 7));
  }
  return { from, to };
}

/** `name` with bit `i` set to `value`. */
function withBit(name: Name, i: number, value: number): Name {
  const copy = Buffer.from(name);
  copy[i >> 3] = (copy[i >> 3]! & ~(0x80 >> (i & 7))) | (value << (7 - (i & 7)));
  return copy;
}

/** At most this many ranges: past it, the walk stops a bit higher up (a superset of tiny subtrees), so a rare deep tie stays cheap. */
const MAX_RANGES = 128;

/**
 * Name ranges covering every target whose `size` closest among `members` may include `vault`:
 * when `vault` joins or leaves, only groups of targets in these ranges change. A member m that first
 * differs from `vault` at bit q is closer to a target than `vault` exactly when the target's bit q
 * differs from `vault`'s too. So a target is covered when the members found closer that way number
 * at most `size` (`size`, not `size - 1`, so a group that excludes one of them, as a node's own
 * managers do, is still covered). The walk goes down the bits of `vault`, emitting a subtree once
 * every target in it qualifies: about (size + 1) / members of the name space, in a few ranges.
 */
export function rangesNear(vault: Name, members: Iterable<Name>, size: number): NameRange[] {
  const BITS = NAME_BYTES * 8;
  // beside[q]: members that first differ from `vault` at bit q; deeper[q]: those that do at q or later.
  const beside = new Array<number>(BITS).fill(0);
  for (const m of members) {
    if (m.equals(vault)) continue;
    let q = 0;
    while (bit(m, q) === bit(vault, q)) q++;
    beside[q]!++;
  }
  const deeper = new Array<number>(BITS + 1).fill(0);
  for (let q = BITS - 1; q >= 0; q--) deeper[q] = deeper[q + 1]! + beside[q]!;
  // `prefix` holds a target's first `depth` bits; `closer` counts the members closer to it than `vault` so far.
  const walk = (ranges: NameRange[], limit: number, prefix: Name, depth: number, closer: number): boolean => {
    if (closer + deeper[depth]! <= size || depth === limit) {
      append(ranges, subtree(prefix, depth));
      return ranges.length <= MAX_RANGES;
    }
    for (const b of [0, 1]) {
      const cost = b === bit(vault, depth) ? 0 : beside[depth]!;
      if (closer + cost <= size && !walk(ranges, limit, withBit(prefix, depth, b), depth + 1, closer + cost)) return false;
    }
    return true;
  };
  // Past the deepest bit where a member leaves `vault`, every subtree qualifies whole.
  for (let limit = deeper.findIndex((d) => d === 0); ; limit--) {
    const ranges: NameRange[] = [];
    if (walk(ranges, limit, Buffer.from(vault), 0, 0)) return ranges;
  }
}

/** Adds `range` after the last one, joining them when they touch (ranges come in name order). */
function append(ranges: NameRange[], range: NameRange): void {
  const last = ranges.at(-1);
  if (last && isSuccessor(last.to, range.from)) last.to = range.to;
  else ranges.push(range);
}

/** Whether `b` is `a` + 1. */
function isSuccessor(a: Name, b: Name): boolean {
  const next = Buffer.from(a);
  for (let i = NAME_BYTES - 1; i >= 0; i--) {
    if (next[i]! < 0xff) {
      next[i]!++;
      return next.equals(b);
    }
    next[i] = 0;
  }
  return false; // a is the last name
}

/**
 * The members that can be among the `count` closest to some name in `range`. Every name in it
 * shares the first bits of `from` and `to`; a member leaving that prefix at bit q is nearer to all of
 * them than one leaving it earlier, whatever their other bits. So the members inside the prefix,
 * then those outside by how late they leave it, until `count` (a whole tie included): a short list
 * for many closest() calls over one range.
 */
export function candidatesIn({ from, to }: NameRange, members: readonly Name[], count: number): Name[] {
  const shared = commonBits(from, to);
  const byDepth = new Map<number, Name[]>();
  for (const m of members) {
    const q = Math.min(commonBits(m, from), shared);
    byDepth.set(q, [...(byDepth.get(q) ?? []), m]);
  }
  const picked: Name[] = [];
  for (const q of [...byDepth.keys()].sort((a, b) => b - a)) {
    if (picked.length >= count) break;
    picked.push(...byDepth.get(q)!);
  }
  return picked;
}

/** How many leading bits `a` and `b` share. */
function commonBits(a: Name, b: Name): number {
  for (let i = 0; i < NAME_BYTES; i++) {
    const diff = a[i]! ^ b[i]!;
    if (diff) return i * 8 + Math.clz32(diff) - 24;
  }
  return NAME_BYTES * 8;
}

export const inRange = (name: Name, { from, to }: NameRange): boolean => Buffer.compare(name, from) >= 0 && Buffer.compare(name, to) <= 0;
