/**
 * The data_manager's SQLite records, kept small because this is the most data-heavy persona (the
 * RFC's motivation):
 * - a chunk record is keyed by the first 8 bytes of its name (the rowid, so no separate name index)
 *   with the other 24 bytes beside it to confirm the match;
 * - holders are small integers (ids in dm_vault) packed in list order, not repeated 32-byte names;
 * - the index by holder is a posting list per (vault, bucket of keys): sorted keys packed in one
 *   blob, 7 bytes per holder instead of a B-tree entry each (the bucket implies the first byte). Churn finds a holder's chunks
 *   through it instead of scanning every record.
 */
import { migrate, type Db } from '../db.ts';
import { fail } from '../../api/errors.ts';
import { EVERY_NAME, inRange, toHex, type Name, type NameRange } from '../names.ts';

export interface DataRecord {
  /** The record's version in its group (replica.ts): only a newer one replaces it. */
  version: number;
  subscribers: number;
  size: number;
  /** In list order: the most recently (re)joined holder first. */
  holders: Name[];
}

const migrations = [
  `CREATE TABLE dm_vault (id INTEGER PRIMARY KEY, name BLOB NOT NULL UNIQUE) STRICT;
   CREATE TABLE dm_chunk (key INTEGER PRIMARY KEY, tail BLOB NOT NULL, size INTEGER NOT NULL,
     subscribers INTEGER NOT NULL, holders BLOB NOT NULL) STRICT;
   CREATE TABLE dm_holding (vault INTEGER NOT NULL, bucket INTEGER NOT NULL, keys BLOB NOT NULL,
     PRIMARY KEY (vault, bucket)) WITHOUT ROWID, STRICT;`,
  `ALTER TABLE dm_chunk ADD COLUMN version INTEGER NOT NULL DEFAULT 1;`,
];

const KEY_BYTES = 8;
/** Posting lists are split by the top bits of the key so each stays a few hundred bytes. */
const BUCKET_BITS = 10;

const keyOf = (name: Name): bigint => name.readBigInt64BE(0);
const bucketOf = (name: Name): number => name.readUInt16BE(0) >> (16 - BUCKET_BITS);
/** A posting entry is the key without its first byte, which is the bucket's top 8 bits. */
const ENTRY_BYTES = KEY_BYTES - 1;
const entryOf = (name: Name): Buffer => name.subarray(1, KEY_BYTES);

export class DataManagerRecords {
  readonly #sql;
  readonly #vaultIds = new Map<string, number>();
  readonly #vaultNames = new Map<number, Name>();

  constructor(db: Db) {
    migrate(db, 'data_manager', migrations);
    const s = {
      vaults: db.prepare<[], { id: number; name: Buffer }>('SELECT id, name FROM dm_vault'),
      addVault: db.prepare<[Buffer], { id: number }>('INSERT INTO dm_vault (name) VALUES (?) RETURNING id'),
      get: db.prepare<[bigint], { tail: Buffer; size: number; subscribers: number; holders: Buffer; version: number }>(
        'SELECT tail, size, subscribers, holders, version FROM dm_chunk WHERE key = ?',
      ),
      upsert: db.prepare<[bigint, Buffer, number, number, Buffer, number]>(
        `INSERT INTO dm_chunk (key, tail, size, subscribers, holders, version) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (key) DO UPDATE SET size = excluded.size, subscribers = excluded.subscribers, holders = excluded.holders, version = excluded.version`,
      ),
      remove: db.prepare<[bigint]>('DELETE FROM dm_chunk WHERE key = ?'),
      all: db.prepare<[bigint, bigint], { key: bigint; tail: Buffer; size: bigint; subscribers: bigint; holders: Buffer; version: bigint }>(
        'SELECT key, tail, size, subscribers, holders, version FROM dm_chunk WHERE key BETWEEN ? AND ?',
      ),
      count: db.prepare<[], number>('SELECT count(*) FROM dm_chunk').pluck(),
      posting: db.prepare<[number, number], Buffer>('SELECT keys FROM dm_holding WHERE vault = ? AND bucket = ?').pluck(),
      postings: db.prepare<[number], { bucket: number; keys: Buffer }>('SELECT bucket, keys FROM dm_holding WHERE vault = ?'),
      setPosting: db.prepare<[number, number, Buffer]>('INSERT OR REPLACE INTO dm_holding (vault, bucket, keys) VALUES (?, ?, ?)'),
      removePosting: db.prepare<[number, number]>('DELETE FROM dm_holding WHERE vault = ? AND bucket = ?'),
    };
    s.all.safeIntegers(true); // keys use all 64 bits
    this.#sql = s;
    for (const { id, name } of s.vaults.all()) this.#remember(id, name);
    this.put = db.transaction(this.put.bind(this));
    this.delete = db.transaction(this.delete.bind(this));
  }

  get(name: Name): DataRecord | undefined {
    const row = this.#sql.get.get(keyOf(name));
    if (!row) return undefined;
    if (!row.tail.equals(name.subarray(KEY_BYTES))) return undefined;
    return { version: row.version, subscribers: row.subscribers, size: row.size, holders: this.#decodeHolders(row.holders) };
  }

  /** Inserts or replaces the record, keeping the holder index in step. */
  put(name: Name, record: DataRecord): void {
    const key = keyOf(name);
    const row = this.#sql.get.get(key);
    if (row && !row.tail.equals(name.subarray(KEY_BYTES))) {
      fail('conflict', `chunk ${toHex(name)} shares its 8-byte key with another chunk; refusing to mix their records`);
    }
    const before = row ? this.#decodeIds(row.holders) : [];
    const after = record.holders.map((h) => this.#idOf(h));
    for (const id of before) if (!after.includes(id)) this.#unindex(id, name);
    for (const id of after) if (!before.includes(id)) this.#index(id, name);
    this.#sql.upsert.run(key, name.subarray(KEY_BYTES), record.size, record.subscribers, encodeIds(after), record.version);
  }

  delete(name: Name): void {
    const row = this.#sql.get.get(keyOf(name));
    if (!row || !row.tail.equals(name.subarray(KEY_BYTES))) return;
    for (const id of this.#decodeIds(row.holders)) this.#unindex(id, name);
    this.#sql.remove.run(keyOf(name));
  }

  /** Every chunk `vault` holds, through the index: no scan of the records. */
  chunksHeldBy(vault: Name): Name[] {
    return [...this.chunksHeldIn(vault, () => [EVERY_NAME])];
  }

  /**
   * The chunks `vault` holds, in name order, whose names may lie in `ranges()`: the posting lists
   * alone decide which records are read (a name is judged by its first 8 bytes, so one just outside
   * a range's edge can come too). `ranges` is asked again at each entry, so the caller may change it
   * as it goes; the lists are read once, at the start, so records it changes meanwhile do not move them.
   */
  *chunksHeldIn(vault: Name, ranges: () => readonly NameRange[]): Generator<Name> {
    const id = this.#vaultIds.get(toHex(vault));
    if (id === undefined) return;
    let asked: readonly NameRange[] | undefined;
    let spans: { from: Name; to: Name; fromBucket: number; toBucket: number }[] = [];
    for (const { bucket, keys } of this.#sql.postings.all(id)) {
      const first = bucket >> (BUCKET_BITS - 8);
      for (let at = 0; at < keys.length; at += ENTRY_BYTES) {
        if (ranges() !== asked) {
          asked = ranges();
          spans = asked.map(({ from, to }) => ({ from, to, fromBucket: bucketOf(from), toBucket: bucketOf(to) }));
        }
        let inside = false;
        for (const { from, to, fromBucket, toBucket } of spans) {
          if (bucket < fromBucket || bucket > toBucket) continue;
          const afterFrom = first > from[0]! || (first === from[0] && keys.compare(from, 1, KEY_BYTES, at, at + ENTRY_BYTES) >= 0);
          inside = afterFrom && (first < to[0]! || (first === to[0] && keys.compare(to, 1, KEY_BYTES, at, at + ENTRY_BYTES) <= 0));
          if (inside) break;
        }
        // No range reaches this bucket: its other entries are passed over at once.
        if (!inside && spans.every((span) => bucket < span.fromBucket || bucket > span.toBucket)) break;
        if (!inside) continue;
        const head = Buffer.alloc(KEY_BYTES, first);
        keys.copy(head, 1, at, at + ENTRY_BYTES);
        const row = this.#sql.get.get(head.readBigInt64BE(0));
        if (row) yield Buffer.concat([head, row.tail]);
      }
    }
  }

  /** Every vault that has held a chunk recorded here. */
  vaults(): Name[] {
    return [...this.#vaultNames.values()];
  }

  /** Every record, or those named in `range`: a range of the rowid, so no scan. */
  *all(range: NameRange = EVERY_NAME): Iterable<[Name, DataRecord]> {
    for (const [from, to] of keySpans(range)) {
      for (const row of this.#sql.all.iterate(from, to)) {
        const head = Buffer.alloc(KEY_BYTES);
        head.writeBigInt64BE(row.key);
        const name = Buffer.concat([head, row.tail]);
        if (!inRange(name, range)) continue; // the key is only the name's first 8 bytes
        yield [name, { version: Number(row.version), subscribers: Number(row.subscribers), size: Number(row.size), holders: this.#decodeHolders(row.holders) }];
      }
    }
  }

  count(): number {
    return this.#sql.count.get()!;
  }

  #remember(id: number, name: Name): void {
    this.#vaultIds.set(toHex(name), id);
    this.#vaultNames.set(id, name);
  }

  #idOf(vault: Name): number {
    const known = this.#vaultIds.get(toHex(vault));
    if (known !== undefined) return known;
    const { id } = this.#sql.addVault.get(vault)!;
    this.#remember(id, vault);
    return id;
  }

  #decodeIds(packed: Buffer): number[] {
    const ids: number[] = [];
    let value = 0;
    let shift = 0;
    for (const byte of packed) {
      value += (byte & 0x7f) * 2 ** shift;
      shift += 7;
      if (byte < 0x80) {
        ids.push(value);
        value = 0;
        shift = 0;
      }
    }
    return ids;
  }

  #decodeHolders(packed: Buffer): Name[] {
    return this.#decodeIds(packed).map((id) => this.#vaultNames.get(id)!);
  }

  #index(vault: number, name: Name): void {
    const bucket = bucketOf(name);
    const keys = this.#sql.posting.get(vault, bucket) ?? Buffer.alloc(0);
    const key = entryOf(name);
    const at = searchKeys(keys, key);
    if (at < keys.length && keys.subarray(at, at + ENTRY_BYTES).equals(key)) return;
    this.#sql.setPosting.run(vault, bucket, Buffer.concat([keys.subarray(0, at), key, keys.subarray(at)]));
  }

  #unindex(vault: number, name: Name): void {
    const bucket = bucketOf(name);
    const keys = this.#sql.posting.get(vault, bucket);
    if (!keys) return;
    const key = entryOf(name);
    const at = searchKeys(keys, key);
    if (at >= keys.length || !keys.subarray(at, at + ENTRY_BYTES).equals(key)) return;
    if (keys.length === ENTRY_BYTES) this.#sql.removePosting.run(vault, bucket);
    else this.#sql.setPosting.run(vault, bucket, Buffer.concat([keys.subarray(0, at), keys.subarray(at + ENTRY_BYTES)]));
  }
}

/** LEB128: one byte per holder id below 128. */
function encodeIds(ids: readonly number[]): Buffer {
  const bytes: number[] = [];
  for (let id of ids) {
    while (id >= 0x80) {
      bytes.push((id & 0x7f) | 0x80);
      id = Math.floor(id / 0x80);
    }
    bytes.push(id);
  }
  return Buffer.from(bytes);
}

/** Byte offset of the first key in the sorted list that is >= `key`. */
function searchKeys(keys: Buffer, key: Buffer): number {
  let lo = 0;
  let hi = keys.length / ENTRY_BYTES;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (Buffer.compare(keys.subarray(mid * ENTRY_BYTES, (mid + 1) * ENTRY_BYTES), key) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo * ENTRY_BYTES;
}

/**
 * The spans of signed 64-bit keys holding the names in `range`. A key is a name's first 8 bytes read
 * as a signed integer, so names from 0x80… on sort first: a range across that line is two spans.
 */
function keySpans({ from, to }: NameRange): [bigint, bigint][] {
  const [lo, hi] = [from.readBigInt64BE(0), to.readBigInt64BE(0)];
  const negative = (name: Name) => name[0]! >= 0x80;
  if (negative(from) === negative(to)) return [[lo, hi]];
  return [
    [lo, 2n ** 63n - 1n],
    [-(2n ** 63n), hi],
  ];
}
