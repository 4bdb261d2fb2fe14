/**
 * The engine's own log (start, refusals, errors): lines kept in app.sqlite, the newest KEEP of them,
 * for the Logs view; a host can also forward each line to its own logger through `onLine`.
 */
import type { LogLevel, LogLine } from '../api/contract.ts';
import { migrate, type Db } from './db.ts';

const migrations = [
  `CREATE TABLE log_line (seq INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL, level TEXT NOT NULL, message TEXT NOT NULL) STRICT;`,
];
const LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error'];
/** Lines kept; older ones are trimmed every TRIM_EVERY lines. */
const KEEP = 10_000;
const TRIM_EVERY = 500;
/** One line each: a message is cut here so a runaway error cannot bloat the table. */
const MAX_MESSAGE = 2000;

export class EngineLog {
  readonly #sql;
  readonly #listeners = new Set<(line: LogLine) => void>();

  constructor(db: Db) {
    migrate(db, 'engine_log', migrations);
    this.#sql = {
      add: db.prepare<[number, string, string], number>('INSERT INTO log_line (at, level, message) VALUES (?, ?, ?) RETURNING seq').pluck(),
      since: db.prepare<[number, string, number], LogLine>(
        `SELECT seq, at, level, message FROM log_line WHERE seq > ? AND level IN (SELECT value FROM json_each(?)) ORDER BY seq LIMIT ?`,
      ),
      trim: db.prepare<[number]>('DELETE FROM log_line WHERE seq <= ?'),
    };
  }

  debug(message: string): void {
    this.#write('debug', message);
  }

  info(message: string): void {
    this.#write('info', message);
  }

  warn(message: string): void {
    this.#write('warn', message);
  }

  error(message: string): void {
    this.#write('error', message);
  }

  /** Lines after `since` at `level` or above, oldest first. */
  lines({ since = 0, level = 'debug', limit = 1000 }: { since?: number; level?: LogLevel; limit?: number }): LogLine[] {
    return this.#sql.since.all(since, JSON.stringify(LEVELS.slice(LEVELS.indexOf(level))), limit);
  }

  /** Every line from now on, e.g. for a host to forward to electron-log or stderr. */
  onLine(listener: (line: LogLine) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #write(level: LogLevel, text: string): void {
    const message = text.replace(/[\r\n]+/g, ' ').slice(0, MAX_MESSAGE);
    const at = Date.now();
    const seq = this.#sql.add.get(at, level, message)!;
    if (seq % TRIM_EVERY === 0) this.#sql.trim.run(seq - KEEP);
    for (const listener of this.#listeners) listener({ seq, at, level, message });
  }
}
