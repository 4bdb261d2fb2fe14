/** Event history in the app database, so the UI and `safevault events` can replay what happened. */
import { migrate, type Db } from './db.ts';
import type { RecordedEvent } from '../api/events.ts';
import type { EventBus } from './events.ts';

const migrations = [`CREATE TABLE event (seq INTEGER PRIMARY KEY, at INTEGER NOT NULL, body TEXT NOT NULL) STRICT;`];
/** Older events are trimmed so the history stays small. */
const KEEP = 100_000;

export class EventLog {
  readonly #sql;
  readonly #stop: () => void;

  constructor(db: Db, bus: EventBus) {
    migrate(db, 'events', migrations);
    this.#sql = {
      last: db.prepare<[], number | null>('SELECT max(seq) FROM event').pluck(),
      add: db.prepare<[number, number, string]>('INSERT INTO event (seq, at, body) VALUES (?, ?, ?)'),
      since: db.prepare<[number, number], string>('SELECT body FROM event WHERE seq > ? ORDER BY seq LIMIT ?').pluck(),
      trim: db.prepare<[number]>('DELETE FROM event WHERE seq <= ?'),
    };
    bus.resumeAt(this.#sql.last.get() ?? 0);
    this.#stop = bus.on((event) => {
      this.#sql.add.run(event.seq, event.at, JSON.stringify(event));
      if (event.seq % 1000 === 0) this.#sql.trim.run(event.seq - KEEP);
    });
  }

  since(seq = 0, limit = 1000): RecordedEvent[] {
    return this.#sql.since.all(seq, limit).map((body) => JSON.parse(body) as RecordedEvent);
  }

  close(): void {
    this.#stop();
  }
}
