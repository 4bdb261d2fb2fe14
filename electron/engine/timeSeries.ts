/**
 * Samples of the network's state taken every few seconds into app.sqlite, kept for a bounded window,
 * for the window's charts. What a sample measures is the engine's business (`measure`); this module
 * owns the timer, the table and the trimming.
 */
import type { Sample } from '../api/contract.ts';
import { migrate, type Db } from './db.ts';

const migrations = [
  `CREATE TABLE sample (at INTEGER PRIMARY KEY, vaults_online INTEGER NOT NULL, under_replicated INTEGER NOT NULL,
     used INTEGER NOT NULL, donated INTEGER NOT NULL, chunks_held INTEGER NOT NULL, ops_per_second REAL NOT NULL) STRICT;`,
];

export const SAMPLE_EVERY_MS = 5000;
export const KEEP_MS = 24 * 3600_000;

export interface TimeSeriesOptions {
  /** What to record now (everything but the time). */
  measure: () => Promise<Omit<Sample, 'at'>>;
  everyMs?: number;
  keepMs?: number;
  now?: () => number;
  /** Told when a sample could not be taken (the next one still is). */
  onError?: (error: unknown) => void;
}

export class TimeSeries {
  readonly #sql;
  readonly #options: TimeSeriesOptions;
  readonly #now: () => number;
  readonly #timer: NodeJS.Timeout;
  #sampling: Promise<void> = Promise.resolve();

  constructor(db: Db, options: TimeSeriesOptions) {
    migrate(db, 'time_series', migrations);
    this.#options = options;
    this.#now = options.now ?? Date.now;
    this.#sql = {
      add: db.prepare<[number, number, number, number, number, number, number]>(
        `INSERT OR REPLACE INTO sample (at, vaults_online, under_replicated, used, donated, chunks_held, ops_per_second) VALUES (?, ?, ?, ?, ?, ?, ?)`,
      ),
      since: db.prepare<[number], Sample>(
        `SELECT at, vaults_online AS vaultsOnline, under_replicated AS underReplicated, used, donated, chunks_held AS chunksHeld,
           ops_per_second AS opsPerSecond FROM sample WHERE at > ? ORDER BY at`,
      ),
      trim: db.prepare<[number]>('DELETE FROM sample WHERE at < ?'),
    };
    this.#timer = setInterval(() => void this.sample(), options.everyMs ?? SAMPLE_EVERY_MS);
    this.#timer.unref();
  }

  /** Takes one sample now (one at a time: a slow measurement never overlaps the next) and trims the window. */
  sample(): Promise<void> {
    this.#sampling = this.#sampling.then(async () => {
      try {
        const s = await this.#options.measure();
        const at = this.#now();
        this.#sql.add.run(at, s.vaultsOnline, s.underReplicated, s.used, s.donated, s.chunksHeld, s.opsPerSecond);
        this.#sql.trim.run(at - (this.#options.keepMs ?? KEEP_MS));
      } catch (error) {
        this.#options.onError?.(error);
      }
    });
    return this.#sampling;
  }

  since(at = 0): Sample[] {
    return this.#sql.since.all(at);
  }

  /** Stops sampling; resolves once a sample under way has been written (so the database can close). */
  close(): Promise<void> {
    clearInterval(this.#timer);
    return this.#sampling;
  }
}
