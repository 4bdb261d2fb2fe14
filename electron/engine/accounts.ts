/**
 * Accounts: the records each manager persona keeps, as seen by account transfer. When group
 * membership changes, old members hand each record to the vaults newly responsible for it, and a
 * receiver adopts a record only when a quorum of old members sent the same value. Deleted records
 * leave tombstones that transfer too, so a stale copy on a returning vault never brings one back.
 */
import { migrate, type Db } from './db.ts';
import type { Name } from './names.ts';

export interface AccountRecord {
  kind: string;
  key: Buffer;
  /** The record lives with the close group of `group` (leaving out `exclude`, a node's own name). */
  group: Name;
  exclude?: Name;
  /** Canonical encoding; equal values encode equally, so copies can be compared. Null: deleted. */
  value: Buffer | null;
}

export interface AccountBook {
  readonly persona: string;
  /** Live records; tombstones are added by the caller. */
  records(): Iterable<AccountRecord>;
  /** Where a record of this kind and key lives, or undefined if the key is malformed. */
  placeOf(kind: string, key: Buffer): { group: Name; exclude?: Name } | undefined;
  /** The record's current value, encoded as in records(); null if this vault has none. */
  read(kind: string, key: Buffer): Buffer | null;
  /** The KeyedLock key under which the persona changes this record. */
  lockKey(kind: string, key: Buffer): string;
  /** Replaces the record with a transferred value (null: remove it). Throws on a malformed value. */
  adopt(kind: string, key: Buffer, value: Buffer | null): void;
  /** Forgets the record: this vault is no longer responsible for it (not a delete). */
  drop(kind: string, key: Buffer): void;
}

const migrations = [
  `CREATE TABLE tombstone (persona TEXT NOT NULL, kind TEXT NOT NULL, key BLOB NOT NULL, at INTEGER NOT NULL,
     PRIMARY KEY (persona, kind, key)) WITHOUT ROWID, STRICT;`,
];

/** How long a tombstone outlives its record: longer than any vault is expected to stay away. */
const TOMBSTONE_TTL_MS = 30 * 24 * 3600_000;

export class Tombstones {
  readonly #sql;

  constructor(db: Db) {
    migrate(db, 'accounts', migrations);
    this.#sql = {
      add: db.prepare<[string, string, Buffer, number]>('INSERT OR REPLACE INTO tombstone (persona, kind, key, at) VALUES (?, ?, ?, ?)'),
      clear: db.prepare<[string, string, Buffer]>('DELETE FROM tombstone WHERE persona = ? AND kind = ? AND key = ?'),
      list: db.prepare<[string], { kind: string; key: Buffer }>('SELECT kind, key FROM tombstone WHERE persona = ?'),
      expire: db.prepare<[number]>('DELETE FROM tombstone WHERE at < ?'),
    };
    this.#sql.expire.run(Date.now() - TOMBSTONE_TTL_MS);
  }

  add(persona: string, kind: string, key: Buffer): void {
    this.#sql.add.run(persona, kind, key, Date.now());
  }

  clear(persona: string, kind: string, key: Buffer): void {
    this.#sql.clear.run(persona, kind, key);
  }

  /** The persona's live records followed by its tombstones (value null). */
  *recordsOf(book: AccountBook): Iterable<AccountRecord> {
    yield* book.records();
    for (const { kind, key } of this.#sql.list.all(book.persona)) {
      const place = book.placeOf(kind, key);
      if (place) yield { kind, key, ...place, value: null };
    }
  }
}
