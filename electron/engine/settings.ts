/**
 * The app's settings and the few facts about its user's own vault (which one it is, whether it is
 * paused), in app.sqlite. Settings not yet saved read as their defaults.
 */
import type { Settings } from '../api/contract.ts';
import { DEFAULT_DONATED_BYTES } from './constants.ts';
import { migrate, type Db } from './db.ts';

const migrations = [`CREATE TABLE app_setting (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;`];

export const DEFAULT_SETTINGS: Settings = {
  donated: DEFAULT_DONATED_BYTES,
  theme: 'auto',
  startAtLogin: false,
  mode: 'local',
  bootstrap: [],
  listen: '/ip4/0.0.0.0/tcp/4001',
  mdns: true,
  notifications: { storeFinished: true, storeFailed: true, vaultOffline: true, spaceNearlyFull: true },
};

/** Keys beside the user's settings: the own vault's id and its paused flag. */
type Key = keyof Settings | 'ownVault' | 'paused';

export class SettingsBook {
  readonly #sql;

  constructor(db: Db) {
    migrate(db, 'settings', migrations);
    this.#sql = {
      all: db.prepare<[], { key: string; value: string }>('SELECT key, value FROM app_setting'),
      get: db.prepare<[string], string>('SELECT value FROM app_setting WHERE key = ?').pluck(),
      set: db.prepare<[string, string]>('INSERT OR REPLACE INTO app_setting (key, value) VALUES (?, ?)'),
    };
  }

  settings(): Settings {
    const saved = Object.fromEntries(this.#sql.all.all().map(({ key, value }) => [key, JSON.parse(value) as unknown]));
    return Object.fromEntries(Object.entries(DEFAULT_SETTINGS).map(([key, value]) => [key, key in saved ? saved[key] : value])) as Settings;
  }

  /** `changes` were validated by the contract; only known keys reach here. */
  update(changes: Partial<Settings>): Settings {
    for (const [key, value] of Object.entries(changes)) if (value !== undefined) this.#set(key as keyof Settings, value);
    return this.settings();
  }

  get ownVault(): string | undefined {
    return this.#get('ownVault') as string | undefined;
  }

  set ownVault(id: string) {
    this.#set('ownVault', id);
  }

  get paused(): boolean {
    return this.#get('paused') === true;
  }

  set paused(paused: boolean) {
    this.#set('paused', paused);
  }

  #get(key: Key): unknown {
    const value = this.#sql.get.get(key);
    return value === undefined ? undefined : JSON.parse(value);
  }

  #set(key: Key, value: unknown): void {
    this.#sql.set.run(key, JSON.stringify(value));
  }
}
