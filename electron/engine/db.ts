/** SQLite files: WAL, and versioned migrations that each persona owns for its own tables. */
import Database from 'better-sqlite3';

export type Db = Database.Database;

export function openDatabase(path: string): Db {
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  // Committed transactions survive a crash of the process (WAL); NORMAL skips an fsync per commit.
  db.pragma('synchronous = NORMAL');
  db.pragma('foreign_keys = ON');
  db.exec('CREATE TABLE IF NOT EXISTS schema_version (owner TEXT PRIMARY KEY, version INTEGER NOT NULL) STRICT');
  return db;
}

/**
 * `fn` in a transaction of its own, or, called inside one, as part of it: no savepoint, as every
 * such `fn` refuses (throws) before it writes, so a refusal the caller catches leaves nothing to undo.
 */
export function atomic<A extends unknown[], R>(db: Db, fn: (...args: A) => R): (...args: A) => R {
  const alone = db.transaction(fn);
  return (...args) => (db.inTransaction ? fn(...args) : alone(...args));
}

/** Runs `migrations[v..]` for `owner` once each, in order, each in its own transaction. */
export function migrate(db: Db, owner: string, migrations: readonly string[]): void {
  const current = schemaVersion(db, owner);
  if (current > migrations.length) {
    throw new Error(`${owner} tables are at version ${current}, newer than this SafeVault (${migrations.length})`);
  }
  for (let v = current; v < migrations.length; v++) {
    db.transaction(() => {
      db.exec(migrations[v]!);
      db.prepare('INSERT INTO schema_version (owner, version) VALUES (?, ?) ON CONFLICT (owner) DO UPDATE SET version = excluded.version').run(owner, v + 1);
    })();
  }
}

/** The version `owner`'s tables are at (0: not created yet). */
export function schemaVersion(db: Db, owner: string): number {
  return (db.prepare<[string], number>('SELECT version FROM schema_version WHERE owner = ?').pluck().get(owner)) ?? 0;
}
