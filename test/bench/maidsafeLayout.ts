/**
 * The bench's baseline: MaidSafe's data_manager table of that time. 512-bit (64-byte) names, one
 * key/value table (a rowid table, so the key is stored again in its automatic index), the value a
 * serialized record with the holders' full names concatenated, and no index by holder: finding a
 * holder's chunks means scanning and decoding every record.
 */
import type { Db } from '../../electron/engine/db.ts';

export const MAIDSAFE_NAME_BYTES = 64;

export interface MaidSafeRecord {
  subscribers: number;
  size: number;
  holders: Buffer[];
}

export class MaidSafeDataManager {
  readonly #put;
  readonly #get;
  readonly #all;

  constructor(db: Db) {
    db.exec('CREATE TABLE IF NOT EXISTS data_manager (key BLOB PRIMARY KEY NOT NULL, value BLOB NOT NULL)');
    this.#put = db.prepare<[Buffer, Buffer]>(
      'INSERT INTO data_manager (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
    );
    this.#get = db.prepare<[Buffer], Buffer>('SELECT value FROM data_manager WHERE key = ?').pluck();
    this.#all = db.prepare<[], { key: Buffer; value: Buffer }>('SELECT key, value FROM data_manager');
  }

  put(key: Buffer, record: MaidSafeRecord): void {
    this.#put.run(key, encodeRecord(record));
  }

  get(key: Buffer): MaidSafeRecord | undefined {
    const value = this.#get.get(key);
    return value && decodeRecord(value);
  }

  /** Every record, decoded: the only way to find a holder's chunks in this layout. */
  *all(): Iterable<[Buffer, MaidSafeRecord]> {
    for (const { key, value } of this.#all.iterate()) yield [key, decodeRecord(value)];
  }
}

/** subscribers (u32), size (u32), then each holder's 64-byte name. */
export function encodeRecord({ subscribers, size, holders }: MaidSafeRecord): Buffer {
  const value = Buffer.alloc(8 + holders.length * MAIDSAFE_NAME_BYTES);
  value.writeUInt32BE(subscribers, 0);
  value.writeUInt32BE(size, 4);
  holders.forEach((holder, i) => holder.copy(value, 8 + i * MAIDSAFE_NAME_BYTES));
  return value;
}

export function decodeRecord(value: Buffer): MaidSafeRecord {
  const holders: Buffer[] = [];
  for (let at = 8; at < value.length; at += MAIDSAFE_NAME_BYTES) holders.push(value.subarray(at, at + MAIDSAFE_NAME_BYTES));
  return { subscribers: value.readUInt32BE(0), size: value.readUInt32BE(4), holders };
}
