/**
 * The app's own records of its users: each local client identity (made on first use) and the data
 * maps of the files it stored, sealed with a key derived from that client's secret. The secrets
 * themselves are sealed by the host's SecretSealer, so app.sqlite alone reveals neither.
 */
import { hkdfSync, randomBytes } from 'node:crypto';
import { migrate, type Db } from '../db.ts';
import { fail } from '../../api/errors.ts';
import { createIdentity, loadIdentity, type Identity } from '../identity.ts';
import { toHex } from '../names.ts';
import type { SecretSealer } from '../secretSealer.ts';
import { openDataMap, sealDataMap, type DataMap } from './selfEncryption.ts';

const migrations = [
  `CREATE TABLE client (label TEXT PRIMARY KEY, secret BLOB NOT NULL, created_at INTEGER NOT NULL) STRICT;
   CREATE TABLE file (id TEXT PRIMARY KEY, client TEXT NOT NULL REFERENCES client (label), name TEXT NOT NULL,
     size INTEGER NOT NULL, data_map BLOB NOT NULL, stored_at INTEGER NOT NULL,
     removed_chunks INTEGER NOT NULL DEFAULT 0) STRICT;
   CREATE INDEX file_by_client ON file (client, stored_at);`,
  // Secrets written before sealing existed are sealed on open (sealClearSecrets).
  `ALTER TABLE client ADD COLUMN sealed INTEGER NOT NULL DEFAULT 0;`,
];

export interface StoredFile {
  id: string;
  name: string;
  size: number;
  map: DataMap;
  storedAt: number;
  /** Chunks already released by an interrupted removal, so a retry resumes instead of releasing twice. */
  removedChunks: number;
}

interface FileRow { id: string; name: string; size: number; data_map: Buffer; stored_at: number; removed_chunks: number }

export class ClientBook {
  readonly #sql;
  readonly #sealer: SecretSealer;
  readonly #identities = new Map<string, Identity>();

  constructor(db: Db, sealer: SecretSealer) {
    migrate(db, 'clients', migrations);
    this.#sealer = sealer;
    sealClearSecrets(db, sealer);
    this.#sql = {
      secret: db.prepare<[string], Buffer>('SELECT secret FROM client WHERE label = ?').pluck(),
      addClient: db.prepare<[string, Buffer, number]>('INSERT INTO client (label, secret, created_at, sealed) VALUES (?, ?, ?, 1)'),
      labels: db.prepare<[], string>('SELECT label FROM client ORDER BY label').pluck(),
      clients: db.prepare<[], { label: string; createdAt: number; files: number }>(
        `SELECT label, created_at AS createdAt, (SELECT count(*) FROM file WHERE file.client = client.label) AS files FROM client ORDER BY label`,
      ),
      file: db.prepare<[string, string], FileRow>('SELECT * FROM file WHERE id = ? AND client = ?'),
      files: db.prepare<[string], FileRow>('SELECT * FROM file WHERE client = ? ORDER BY stored_at, id'),
      addFile: db.prepare<[string, string, string, number, Buffer, number]>(
        'INSERT INTO file (id, client, name, size, data_map, stored_at) VALUES (?, ?, ?, ?, ?, ?)',
      ),
      setRemoved: db.prepare<[number, string]>('UPDATE file SET removed_chunks = ? WHERE id = ?'),
      removeFile: db.prepare<[string]>('DELETE FROM file WHERE id = ?'),
    };
  }

  /** The client called `label`, made on first use. */
  identity(label: string): Identity {
    let identity = this.#identities.get(label);
    if (!identity) {
      const secret = this.#sql.secret.get(label);
      identity = secret ? loadIdentity(this.#sealer.open(secret)) : createIdentity();
      if (!secret) this.#sql.addClient.run(label, this.#sealer.seal(identity.secret), Date.now());
      this.#identities.set(label, identity);
    }
    return identity;
  }

  has(label: string): boolean {
    return this.#identities.has(label) || this.#sql.secret.get(label) !== undefined;
  }

  /** Every local client with its network name and how many files it keeps here. */
  clients(): { label: string; name: string; files: number; createdAt: number }[] {
    return this.#sql.clients.all().map((c) => ({ ...c, name: toHex(this.identity(c.label).name) }));
  }

  /** A new client called `label`; one that exists is a conflict rather than a second identity. */
  create(label: string): void {
    if (this.has(label)) fail('conflict', `client ${label} already exists`);
    this.identity(label);
  }

  labels(): string[] {
    return this.#sql.labels.all();
  }

  addFile(label: string, name: string, map: DataMap): StoredFile {
    const file = { id: randomBytes(16).toString('hex'), name, size: map.size, map, storedAt: Date.now(), removedChunks: 0 };
    this.#sql.addFile.run(file.id, label, name, map.size, sealDataMap(map, this.#mapKey(label)), file.storedAt);
    return file;
  }

  file(label: string, id: string): StoredFile {
    const row = this.#sql.file.get(id, label) ?? fail('not-found', `client ${label} has no file ${id}`);
    return this.#decode(label, row);
  }

  files(label: string): StoredFile[] {
    return this.#sql.files.all(label).map((row) => this.#decode(label, row));
  }

  markRemoved(id: string, chunks: number): void {
    this.#sql.setRemoved.run(chunks, id);
  }

  removeFile(id: string): void {
    this.#sql.removeFile.run(id);
  }

  #decode(label: string, row: FileRow): StoredFile {
    return { id: row.id, name: row.name, size: row.size, map: openDataMap(row.data_map, this.#mapKey(label)), storedAt: row.stored_at, removedChunks: row.removed_chunks };
  }

  #mapKey(label: string): Buffer {
    return Buffer.from(hkdfSync('sha256', this.identity(label).secret, toHex(this.identity(label).name), 'safevault data map', 32));
  }
}

/**
 * Seals the clear secrets an older SafeVault wrote. secure_delete zeroes the cells they leave behind and
 * the checkpoint empties the WAL, so no copy of a clear secret survives in the database's files.
 */
function sealClearSecrets(db: Db, sealer: SecretSealer): void {
  const clear = db.prepare<[], { label: string; secret: Buffer }>('SELECT label, secret FROM client WHERE sealed = 0').all();
  if (clear.length === 0) return;
  const secureDelete = db.pragma('secure_delete', { simple: true });
  db.pragma('secure_delete = ON');
  const seal = db.prepare<[Buffer, string]>('UPDATE client SET secret = ?, sealed = 1 WHERE label = ?');
  db.transaction(() => {
    for (const { label, secret } of clear) seal.run(sealer.seal(secret), label);
  })();
  db.pragma('wal_checkpoint(TRUNCATE)');
  db.pragma(`secure_delete = ${secureDelete ? 'ON' : 'OFF'}`);
}
