/**
 * The data_manager's SQLite records, kept small because this is the most data-heavy persona (the
 * RFC's motivation):
 * - a chunk record is keyed by the first 8 bytes of its name (the rowid, so no separate name index)
 *   with the other 24 bytes beside it to confirm the match;
 * - holders are small integers (ids in dm_vault) packed in list order, not repeated 32-byte names;
 * - the index by holder is a posting list per (vault, bucket of keys): sorted entries packed in one
 *   blob, 6 bytes per holder instead of a B-tree entry each. An entry is the 48 bits of the key after
 *   the bucket's 10, so it stands for the (at most 64) keys sharing those 58 bits: the records it
 *   finds are checked for the holder. Churn finds a holder's chunks through it instead of scanning
 *   every record.
 */
import type Database from 'better-sqlite3';
import { atomic, migrate, schemaVersion, type Db } from '../db.ts';
import { fail } from '../../api/errors.ts';
import { EVERY_NAME, inRange, sameName, toHex, type Name, type NameRange } from '../names.ts';

/** One posting entry of a holder: it stands for the few chunk keys sharing its 58 bits (see chunksAt). */
export interface HeldEntry {
  vault: number;
  bucket: number;
  entry: number;
}

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
  // Posting entries go from 7 bytes to 6: the lists are rebuilt from the records (see the constructor).
  `DELETE FROM dm_holding;`,
];
/** The first version whose posting entries are 6 bytes. */
const SIX_BYTE_ENTRIES = 3;

const KEY_BYTES = 8;

interface ChunkRow {
  tail: Buffer;
  size: number;
  subscribers: number;
  holders: Buffer;
  version: number;
}
/** Rows per page when reading records in bulk. */
const PAGE_ROWS = 2048;
/** Posting entries whose records one query reads. */
const RECORDS_AT = 256;
/** Names whose rows grouped() reads in one query (two parameters each). */
const READ_AT_ONCE = 128;
/** Posting lists are split by the top bits of the key so each stays a few hundred bytes. */
const BUCKET_BITS = 10;

const keyOf = (name: Name): bigint => name.readBigInt64BE(0);
/** `count` SQL fragments, comma-separated. */
const list = (count: number, each: (i: number) => string): string => Array.from({ length: count }, (_, i) => each(i)).join(', ');
const prefixOf = (name: Name): number => name.readUIntBE(0, 6);
const bucketOf = (name: Name): number => name.readUInt16BE(0) >> (16 - BUCKET_BITS);
const ENTRY_BYTES = 6;
/** A posting entry: bits 10 to 57 of the name (the 22 low bits of its first 4 bytes, the 26 high bits of the next 4), as a number. */
const entryOf = (name: Name): number => (name.readUInt32BE(0) & 0x3fffff) * 2 ** 26 + (name.readUInt32BE(4) >>> 6);
/** The keys an entry of `bucket` stands for: the 64 sharing its 58 bits (the first's 8 bytes are `head`; the others differ in its last 6 bits). */
function keysOf(bucket: number, entry: number): { head: Buffer; from: bigint; to: bigint } {
  const head = Buffer.alloc(KEY_BYTES);
  head.writeUInt32BE(bucket * 2 ** 22 + Math.floor(entry / 2 ** 26), 0);
  head.writeUInt32BE((entry % 2 ** 26) * 64, 4);
  const from = head.readBigInt64BE(0);
  return { head, from, to: from + 63n };
}

export class DataManagerRecords {
  readonly #sql;
  readonly #vaultIds = new Map<string, number>();
  /** A vault's id by its name's first 6 bytes, tried before the hex map (each holder of every record put is looked up). */
  readonly #idByPrefix = new Map<number, number>();
  readonly #vaultNames = new Map<number, Name>();
  /** While grouped: the posting lists read or changed, by vault and bucket (keys undefined: read, unchanged). */
  #held: Map<string, { vault: number; bucket: number; read: Buffer | undefined; keys?: Buffer }> | undefined;
  /**
   * While grouped: the rows read or written so far, by key (null: none), so a record is read once
   * however often it is looked at; those of the names grouped() was given are read in one query.
   */
  #rows: Map<bigint, ChunkRow | null> | undefined;
  /** While grouped to read versions alone: by key, the version of the name given whose row it is (null: no row at that key). */
  #versions: Map<bigint, { name: Name; version: number } | null> | undefined;
  readonly #db: Db;
  /** See #readMany. */
  readonly #many = new Map<string, Database.Statement<(bigint | Buffer | null)[], [number, number, ...unknown[]]>>();

  constructor(db: Db) {
    this.#db = db;
    const before = schemaVersion(db, 'data_manager');
    db.transaction(() => {
      migrate(db, 'data_manager', migrations);
      if (before > 0 && before < SIX_BYTE_ENTRIES) reindex(db);
    })();
    const s = {
      vaults: db.prepare<[], { id: number; name: Buffer }>('SELECT id, name FROM dm_vault'),
      addVault: db.prepare<[Buffer], { id: number }>('INSERT INTO dm_vault (name) VALUES (?) RETURNING id'),
      get: db.prepare<[bigint], ChunkRow>(
        'SELECT tail, size, subscribers, holders, version FROM dm_chunk WHERE key = ?',
      ),
      version: db.prepare<[bigint], { tail: Buffer; version: number }>('SELECT tail, version FROM dm_chunk WHERE key = ?'),
      upsert: db.prepare<[bigint, Buffer, number, number, Buffer, number]>(
        `INSERT INTO dm_chunk (key, tail, size, subscribers, holders, version) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (key) DO UPDATE SET size = excluded.size, subscribers = excluded.subscribers, holders = excluded.holders, version = excluded.version`,
      ),
      remove: db.prepare<[bigint]>('DELETE FROM dm_chunk WHERE key = ?'),
      // A transfer reads tens of thousands of rows: as arrays, in pages (one call into SQLite per
      // page, not per row), with the name and the holders as hex text, which better-sqlite3 hands
      // over faster than a Buffer per blob (printf's %x writes the key's 64 bits).
      page: db
        .prepare<[bigint, bigint], [string, string, number, number, number]>(
          `SELECT printf('%016x', key) || hex(tail), hex(holders), size, subscribers, version FROM dm_chunk
           WHERE key BETWEEN ? AND ? ORDER BY key LIMIT ${PAGE_ROWS}`,
        )
        .raw(),
      // A key's low 6 bits alone: the rest is the entry's (see keysOf), and no column needs a BigInt.
      near: db.prepare<[bigint, bigint], { low: number; tail: Buffer; holders: Buffer; size: number; subscribers: number; version: number }>(
        'SELECT key & 63 AS low, tail, holders, size, subscribers, version FROM dm_chunk WHERE key BETWEEN ? AND ?',
      ),
      count: db.prepare<[], number>('SELECT count(*) FROM dm_chunk').pluck(),
      posting: db.prepare<[number, number], Buffer>('SELECT keys FROM dm_holding WHERE vault = ? AND bucket = ?').pluck(),
      postings: db.prepare<[number], { bucket: number; keys: Buffer }>('SELECT bucket, keys FROM dm_holding WHERE vault = ?'),
      setPosting: db.prepare<[number, number, Buffer]>('INSERT OR REPLACE INTO dm_holding (vault, bucket, keys) VALUES (?, ?, ?)'),
      removePosting: db.prepare<[number, number]>('DELETE FROM dm_holding WHERE vault = ? AND bucket = ?'),
    };
    this.#sql = s;
    for (const { id, name } of s.vaults.all()) this.#remember(id, name);
    this.put = atomic(db, this.put.bind(this));
    this.delete = atomic(db, this.delete.bind(this));
  }

  get(name: Name): DataRecord | undefined {
    const row = this.#row(keyOf(name));
    if (!row) return undefined;
    if (!row.tail.equals(name.subarray(KEY_BYTES))) return undefined;
    return { version: row.version, subscribers: row.subscribers, size: row.size, holders: this.#decodeHolders(row.holders) };
  }

  /** The record's version alone. */
  version(name: Name): number | undefined {
    const key = keyOf(name);
    const ahead = this.#rows?.has(key) ? undefined : this.#versions?.get(key);
    if (ahead === null) return undefined;
    if (ahead && sameName(ahead.name, name)) return ahead.version;
    // While grouped the whole row is read, for the put that most often follows (an install reads the version, then stores).
    const row = this.#rows ? this.#row(key) : this.#sql.version.get(key);
    return row?.tail.equals(name.subarray(KEY_BYTES)) ? row.version : undefined;
  }

  /** The row at `key`: while grouped, read once and kept. */
  #row(key: bigint): ChunkRow | undefined {
    const rows = this.#rows;
    if (!rows) return this.#sql.get.get(key);
    let row = rows.get(key);
    if (row === undefined) rows.set(key, (row = this.#sql.get.get(key) ?? null));
    return row ?? undefined;
  }

  /**
   * Runs `work` (several reads, puts and deletes, inside a transaction) with the posting lists it
   * changes kept in memory and written once each at the end: a batch of records near each other
   * shares a few lists, which would otherwise be rewritten once per record. The records of `names`,
   * those `work` is about, are read in one query up front rather than one each: whole, or their
   * `versions` alone if that is all `work` reads of most of them (a record read whole is read then).
   */
  grouped<T>(work: () => T, names: readonly Name[] = [], read: 'records' | 'versions' = 'records'): T {
    if (this.#held) return work();
    const held = (this.#held = new Map());
    const rows = (this.#rows = new Map());
    try {
      if (names.length) {
        const keys = names.map(keyOf);
        const versions = read === 'versions' ? (this.#versions = new Map()) : undefined;
        for (const key of keys) (versions ?? rows).set(key, null);
        for (let from = 0; from < names.length; from += READ_AT_ONCE) {
          const count = Math.min(READ_AT_ONCE, names.length - from);
          const asked: (bigint | Buffer | null)[] = [];
          for (let i = from; i < from + count; i++) asked.push(keys[i]!, names[i]!.subarray(KEY_BYTES));
          for (const row of this.#readMany(read, asked, 2)) {
            const [at, same] = [from + row[0], row[1]];
            const key = keys[at]!;
            if (!same) {
              if ((versions ?? rows).get(key) === null) (versions ?? rows).delete(key); // another name's row: read as it is asked for
            } else if (versions) versions.set(key, { name: names[at]!, version: row[2] as number });
            else {
              rows.set(key, { tail: names[at]!.subarray(KEY_BYTES), size: row[2] as number, subscribers: row[3] as number, holders: row[4] as Buffer, version: row[5] as number });
            }
          }
        }
      }
      const result = work();
      for (const { vault, bucket, keys } of held.values()) {
        if (keys === undefined) continue;
        if (keys.length === 0) this.#sql.removePosting.run(vault, bucket);
        else this.#sql.setPosting.run(vault, bucket, keys);
      }
      return result;
    } finally {
      this.#held = undefined;
      this.#rows = undefined;
      this.#versions = undefined;
    }
  }

  /**
   * Reads many rows at once, with what it asks bound as parameters (`each` per row asked), each row
   * found with its place in the list: the rows (or `versions` alone) of names, each name's key and
   * the rest of it bound, and SQLite telling whether the row at the key is that name's (so the rest
   * of the name is not handed back as a Buffer per row); or the rows `near` posting entries, each
   * bound as the first of the 64 keys it stands for. `asked`, the caller's own fresh list, is padded
   * with nulls (which match no row) to a power of two, so a few statements, each prepared once, serve
   * every batch.
   */
  #readMany(kind: 'records' | 'versions' | 'near', asked: (bigint | Buffer | null)[], each: number): [number, number, ...unknown[]][] {
    const count = 2 ** Math.ceil(Math.log2(asked.length / each));
    while (asked.length < count * each) asked.push(null);
    const id = `${kind}:${count}`;
    let statement = this.#many.get(id);
    if (!statement) {
      const sql =
        kind === 'near'
          ? `WITH asked (at, key) AS (VALUES ${list(count, (i) => `(${i}, ?)`)}) SELECT asked.at, dm_chunk.key & 63, tail, holders, size, subscribers, version
             FROM asked JOIN dm_chunk ON dm_chunk.key BETWEEN asked.key AND asked.key + 63`
          : `WITH asked (at, key, tail) AS (VALUES ${list(count, (i) => `(${i}, ?, ?)`)}) SELECT asked.at, dm_chunk.tail = asked.tail, ${kind === 'records' ? 'size, subscribers, holders, version' : 'version'}
             FROM asked JOIN dm_chunk ON dm_chunk.key = asked.key`;
      this.#many.set(id, (statement = this.#db.prepare<(bigint | Buffer | null)[], [number, number, ...unknown[]]>(sql).raw()));
    }
    return statement.all(...asked);
  }

  /** Inserts or replaces the record, keeping the holder index in step. */
  put(name: Name, record: DataRecord): void {
    const key = keyOf(name);
    const row = this.#row(key);
    if (row && !row.tail.equals(name.subarray(KEY_BYTES))) {
      fail('conflict', `chunk ${toHex(name)} shares its 8-byte key with another chunk; refusing to mix their records`);
    }
    const before = row ? decodeIds(row.holders) : [];
    const after = record.holders.map((h) => this.#idOf(h));
    for (const id of before) if (!after.includes(id)) this.#unindex(id, name);
    for (const id of after) if (!before.includes(id)) this.#index(id, name);
    const holders = encodeIds(after);
    this.#sql.upsert.run(key, name.subarray(KEY_BYTES), record.size, record.subscribers, holders, record.version);
    this.#rows?.set(key, { tail: name.subarray(KEY_BYTES), size: record.size, subscribers: record.subscribers, holders, version: record.version });
  }

  delete(name: Name): void {
    const row = this.#row(keyOf(name));
    if (!row || !row.tail.equals(name.subarray(KEY_BYTES))) return;
    for (const id of decodeIds(row.holders)) this.#unindex(id, name);
    this.#sql.remove.run(keyOf(name));
    this.#rows?.set(keyOf(name), null);
  }

  /** Every chunk `vault` holds, through the index: no scan of the records. */
  chunksHeldBy(vault: Name): Name[] {
    const everywhere = [EVERY_NAME];
    return [...this.entriesHeldIn(vault, () => everywhere)].flatMap((entry) => this.chunksAt(entry));
  }

  /**
   * The posting entries of `vault` whose names may lie in `ranges()`, in name order: the posting
   * lists alone, no record read (an entry is judged by its 58 bits, so one just outside a range's
   * edge can come too). `ranges` is asked again at each entry, so the caller may change it as it
   * goes; the lists are read once, at the start, so records it changes meanwhile do not move them.
   */
  *entriesHeldIn(vault: Name, ranges: () => readonly NameRange[]): Generator<HeldEntry> {
    const id = this.#vaultIds.get(toHex(vault));
    if (id === undefined) return;
    let asked: readonly NameRange[] | undefined;
    let spans: { fromBucket: number; fromEntry: number; toBucket: number; toEntry: number }[] = [];
    for (const { bucket, keys } of this.#sql.postings.all(id)) {
      for (let at = 0; at < keys.length; at += ENTRY_BYTES) {
        if (ranges() !== asked) {
          asked = ranges();
          spans = asked.map(({ from, to }) => ({ fromBucket: bucketOf(from), fromEntry: entryOf(from), toBucket: bucketOf(to), toEntry: entryOf(to) }));
        }
        // No range reaches this bucket: its other entries are passed over at once.
        if (spans.every((span) => bucket < span.fromBucket || bucket > span.toBucket)) break;
        const entry = keys.readUIntBE(at, ENTRY_BYTES);
        const inside = spans.some(
          (span) =>
            (bucket > span.fromBucket || (bucket === span.fromBucket && entry >= span.fromEntry)) &&
            (bucket < span.toBucket || (bucket === span.toBucket && entry <= span.toEntry)),
        );
        if (inside) yield { vault: id, bucket, entry };
      }
    }
  }

  /** The chunks a posting entry stands for that list its vault as a holder (almost always one). */
  chunksAt(entry: HeldEntry): Name[] {
    return this.recordsAt([entry]).map(([name]) => name);
  }

  /** The chunks of several entries with their records, in entry order: one query per RECORDS_AT entries, not one each. */
  recordsAt(entries: readonly HeldEntry[]): [Name, DataRecord][] {
    const records: [Name, DataRecord][] = [];
    for (let start = 0; start < entries.length; start += RECORDS_AT) {
      const some = entries.slice(start, start + RECORDS_AT);
      const keys = some.map(({ bucket, entry }) => keysOf(bucket, entry));
      const rows = this.#readMany('near', keys.map((k) => k.from), 1) as [number, number, Buffer, Buffer, number, number, number][];
      for (const [at, low, tail, holders, size, subscribers, version] of rows) {
        if (!decodeIds(holders).includes(some[at]!.vault)) continue; // another chunk sharing the entry
        const name = Buffer.concat([keys[at]!.head, tail]);
        name[KEY_BYTES - 1]! |= low;
        records.push([name, { version, subscribers, size, holders: this.#decodeHolders(holders) }]);
      }
    }
    return records;
  }

  /** Every vault that has held a chunk recorded here. */
  vaults(): Name[] {
    return [...this.#vaultNames.values()];
  }

  /**
   * Every record, or those named in `range` (a range of the rowid, so no scan) whose name `wanted`
   * accepts; `wanted` is asked just before a record is yielded, and the others' holders are not decoded.
   */
  *all(range: NameRange = EVERY_NAME, wanted: (name: Name) => boolean = () => true): Iterable<[Name, DataRecord]> {
    for (const [from, to] of keySpans(range)) {
      for (let next = from; next <= to; ) {
        const rows = this.#sql.page.all(next, to);
        for (const [nameHex, holdersHex, size, subscribers, version] of rows) {
          const name = Buffer.from(nameHex, 'hex');
          if (!inRange(name, range) || !wanted(name)) continue; // the key is only the name's first 8 bytes
          yield [name, { version, subscribers, size, holders: this.#decodeHolders(Buffer.from(holdersHex, 'hex')) }];
        }
        if (rows.length < PAGE_ROWS) break;
        next = keyOf(Buffer.from(rows.at(-1)![0], 'hex')) + 1n;
      }
    }
  }

  count(): number {
    return this.#sql.count.get()!;
  }

  #remember(id: number, name: Name): void {
    this.#vaultIds.set(toHex(name), id);
    this.#vaultNames.set(id, name);
    if (!this.#idByPrefix.has(prefixOf(name))) this.#idByPrefix.set(prefixOf(name), id);
  }

  #idOf(vault: Name): number {
    const byPrefix = this.#idByPrefix.get(prefixOf(vault));
    if (byPrefix !== undefined && sameName(this.#vaultNames.get(byPrefix)!, vault)) return byPrefix;
    const known = this.#vaultIds.get(toHex(vault));
    if (known !== undefined) return known;
    const { id } = this.#sql.addVault.get(vault)!;
    this.#remember(id, vault);
    return id;
  }

  #decodeHolders(packed: Buffer): Name[] {
    return decodeIds(packed).map((id) => this.#vaultNames.get(id)!);
  }

  #index(vault: number, name: Name): void {
    const bucket = bucketOf(name);
    const keys = this.#posting(vault, bucket) ?? Buffer.alloc(0);
    const entry = entryOf(name);
    const at = searchEntries(keys, entry);
    if (at < keys.length && keys.readUIntBE(at, ENTRY_BYTES) === entry) return;
    const bytes = Buffer.alloc(ENTRY_BYTES);
    bytes.writeUIntBE(entry, 0, ENTRY_BYTES);
    this.#setPosting(vault, bucket, Buffer.concat([keys.subarray(0, at), bytes, keys.subarray(at)]));
  }

  #unindex(vault: number, name: Name): void {
    const bucket = bucketOf(name);
    const keys = this.#posting(vault, bucket);
    if (!keys?.length) return;
    const entry = entryOf(name);
    const at = searchEntries(keys, entry);
    if (at >= keys.length || keys.readUIntBE(at, ENTRY_BYTES) !== entry) return;
    // The entry stays while another chunk it stands for still lists the vault.
    const { from, to } = keysOf(bucket, entry);
    const low = name[KEY_BYTES - 1]! & 63;
    if (this.#sql.near.all(from, to).some((row) => row.low !== low && decodeIds(row.holders).includes(vault))) return;
    this.#setPosting(vault, bucket, Buffer.concat([keys.subarray(0, at), keys.subarray(at + ENTRY_BYTES)]));
  }

  /** A posting list as it stands (while grouped, as changed so far). */
  #posting(vault: number, bucket: number): Buffer | undefined {
    if (!this.#held) return this.#sql.posting.get(vault, bucket);
    const id = `${vault}:${bucket}`;
    let list = this.#held.get(id);
    if (!list) this.#held.set(id, (list = { vault, bucket, read: this.#sql.posting.get(vault, bucket) }));
    return list.keys ?? list.read;
  }

  /** Replaces a posting list (empty: removes it), or while grouped, notes it for the end. */
  #setPosting(vault: number, bucket: number, keys: Buffer): void {
    if (this.#held) {
      this.#posting(vault, bucket);
      this.#held.get(`${vault}:${bucket}`)!.keys = keys;
    } else if (keys.length === 0) this.#sql.removePosting.run(vault, bucket);
    else this.#sql.setPosting.run(vault, bucket, keys);
  }
}

/** Rebuilds every posting list from the records, in the current entry format. */
function reindex(db: Db): void {
  const lists = new Map<string, { vault: number; bucket: number; entries: Set<number> }>();
  const rows = db.prepare<[], { key: bigint; holders: Buffer }>('SELECT key, holders FROM dm_chunk').safeIntegers(true);
  const head = Buffer.alloc(KEY_BYTES);
  for (const { key, holders } of rows.iterate()) {
    head.writeBigInt64BE(key);
    const [bucket, entry] = [bucketOf(head), entryOf(head)];
    for (const vault of decodeIds(holders)) {
      const list = lists.get(`${vault}:${bucket}`) ?? { vault, bucket, entries: new Set<number>() };
      list.entries.add(entry);
      lists.set(`${vault}:${bucket}`, list);
    }
  }
  db.exec('DELETE FROM dm_holding');
  const insert = db.prepare<[number, number, Buffer]>('INSERT INTO dm_holding (vault, bucket, keys) VALUES (?, ?, ?)');
  for (const { vault, bucket, entries } of lists.values()) {
    const keys = Buffer.alloc(entries.size * ENTRY_BYTES);
    [...entries].sort((a, b) => a - b).forEach((entry, i) => keys.writeUIntBE(entry, i * ENTRY_BYTES, ENTRY_BYTES));
    insert.run(vault, bucket, keys);
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

/** The holder ids of an LEB128 list. */
function decodeIds(packed: Buffer): number[] {
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

/** Byte offset of the first entry in the sorted list that is >= `entry`. */
function searchEntries(keys: Buffer, entry: number): number {
  let lo = 0;
  let hi = keys.length / ENTRY_BYTES;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (keys.readUIntBE(mid * ENTRY_BYTES, ENTRY_BYTES) < entry) lo = mid + 1;
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
