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
