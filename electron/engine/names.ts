/** 256-bit names and XOR closeness: the geometry every group decision is made in. */
import { hash } from 'node:crypto';

export type Name = Buffer;
export const NAME_BYTES = 32;

export const sha256 = (data: Buffer | Uint8Array): Name => hash('sha256', data, 'buffer');
export const toHex = (name: Name): string => name.toString('hex');

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

/** The names from `from` to `to`, both included (bytewise order). */
export interface NameRange {
  from: Name;
  to: Name;
}

/** The whole name space. */
export const EVERY_NAME: NameRange = { from: Buffer.alloc(NAME_BYTES, 0), to: Buffer.alloc(NAME_BYTES, 0xff) };

const bit = (name: Name, i: number): number => (name[i >> 3]! >> (7 - (i & 7))) & 1;

/** Every name starting with the first `bits` bits of `prefix`, then bit `bits` set to `next` (or nothing more, if `next` is undefined). */
function subtree(prefix: Name, bits: number, next?: number): NameRange {
  const from = Buffer.from(prefix);
  const length = next === undefined ? bits : bits + 1;
  if (next !== undefined) from[bits >> 3] = (from[bits >> 3]! & ~(0x80 >> (bits & 7))) | (next << (7 - (bits & 7)));
  const to = Buffer.from(from);
  for (let i = length; i < NAME_BYTES * 8; i++) {
    from[i >> 3] = from[i >> 3]! & ~(0x80 >> (i & 7));
    to[i >> 3] = to[i >> 3]! | (0x80 >> (i & 7));
  }
  return { from, to };
}

/**
 * Name ranges covering every target whose `size` closest among `members` may include `vault`:
 * when `vault` joins or leaves, only groups of targets in these ranges change. For a target that
 * shares exactly p leading bits with `vault`, every member sharing more than p with the target is
 * closer to it than `vault`; so the subtree beside `vault` at depth p is left out when more than
 * `size` others lie in it (more than `size`, not `size`, so a group that excludes one of them, as a
 * node's own managers do, is still covered). The ranges are a few prefixes: about
 * size / members of the name space, not all of it.
 */
export function rangesNear(vault: Name, members: Iterable<Name>, size: number): NameRange[] {
  let others = [...members].filter((m) => !m.equals(vault));
  const ranges: NameRange[] = [];
  for (let depth = 0; depth < NAME_BYTES * 8; depth++) {
    if (others.length === 0) return [...ranges, subtree(vault, depth)];
    const beside = others.filter((m) => bit(m, depth) !== bit(vault, depth));
    if (beside.length <= size) ranges.push(subtree(vault, depth, 1 - bit(vault, depth)));
    others = others.filter((m) => bit(m, depth) === bit(vault, depth));
  }
  return [...ranges, { from: vault, to: vault }];
}

export const inRange = (name: Name, { from, to }: NameRange): boolean => Buffer.compare(name, from) >= 0 && Buffer.compare(name, to) <= 0;
