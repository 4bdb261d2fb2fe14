/** Client secrets sealed at rest: a copied app.sqlite alone gives up no secret and no data map. */
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { openDatabase } from '../../electron/engine/db.ts';
import { ClientBook } from '../../electron/engine/client/clientBook.ts';
import { createIdentity, loadIdentity } from '../../electron/engine/identity.ts';
import { aesGcmSealer, masterKeyFile, masterKeyPath } from '../../electron/engine/secretSealer.ts';
import { openEngine } from '../../electron/engine/engine.ts';
import { tempDir, writeRandomFile } from '../helpers.ts';

const secretsIn = (dbPath: string) => {
  const db = openDatabase(dbPath);
  try {
    return db.prepare<[], { label: string; secret: Buffer; sealed: number }>('SELECT label, secret, sealed FROM client').all();
  } finally {
    db.close();
  }
};

test('the daemon default seals secrets under a 0600 master.key; a copy of app.sqlite alone opens nothing', async () => {
  const dataDir = tempDir();
  const engine = await openEngine({ dataDir, vaults: 8 });
  const stored = await engine.putFile({ as: 'alice', path: writeRandomFile(tempDir(), 'photo.jpg', 300_000) });
  await engine.close();

  if (process.platform !== 'win32') assert.equal(statSync(masterKeyPath(dataDir)).mode & 0o777, 0o600);
  const [row] = secretsIn(join(dataDir, 'app.sqlite'));
  assert.equal(row!.sealed, 1);
  const secret = aesGcmSealer(masterKeyFile(dataDir)).open(row!.secret);
  assert.ok(loadIdentity(secret), 'the sealed secret opens with the master key');
  assert.throws(() => aesGcmSealer(Buffer.alloc(32, 7)).open(row!.secret), /cannot be opened/);

  const raw = readFileSync(join(dataDir, 'app.sqlite'));
  assert.equal(raw.includes(secret), false, 'the clear secret is nowhere in app.sqlite');

  const thief = tempDir();
  copyFileSync(join(dataDir, 'app.sqlite'), join(thief, 'app.sqlite'));
  const stolen = openDatabase(join(thief, 'app.sqlite'));
  try {
    const book = new ClientBook(stolen, aesGcmSealer(masterKeyFile(thief)));
    assert.throws(() => book.files('alice'), /cannot be opened with this master key/);
    assert.throws(() => book.file('alice', stored.id), /cannot be opened/);
  } finally {
    stolen.close();
  }
});

test('clear secrets an older SafeVault wrote are sealed on open and leave no clear copy behind', () => {
  const dataDir = tempDir();
  const path = join(dataDir, 'app.sqlite');
  const legacy = createIdentity();
  // The clients tables as version 1 wrote them: the secret in clear.
  const db = openDatabase(path);
  db.exec(`CREATE TABLE client (label TEXT PRIMARY KEY, secret BLOB NOT NULL, created_at INTEGER NOT NULL) STRICT;
    CREATE TABLE file (id TEXT PRIMARY KEY, client TEXT NOT NULL REFERENCES client (label), name TEXT NOT NULL,
      size INTEGER NOT NULL, data_map BLOB NOT NULL, stored_at INTEGER NOT NULL, removed_chunks INTEGER NOT NULL DEFAULT 0) STRICT;
    CREATE INDEX file_by_client ON file (client, stored_at);
    INSERT INTO schema_version (owner, version) VALUES ('clients', 1);`);
  db.prepare('INSERT INTO client (label, secret, created_at) VALUES (?, ?, ?)').run('bob', legacy.secret, Date.now());
  db.close();
  assert.ok(readFileSync(path).includes(legacy.secret), 'the fixture really holds the secret in clear');

  mkdirSync(dataDir, { recursive: true });
  const sealer = aesGcmSealer(masterKeyFile(dataDir));
  const reopened = openDatabase(path);
  const book = new ClientBook(reopened, sealer);
  assert.deepEqual(book.identity('bob').name, legacy.name, 'the same identity survives sealing');
  reopened.close();

  assert.equal(readFileSync(path).includes(legacy.secret), false);
  assert.equal(existsSync(`${path}-wal`) && readFileSync(`${path}-wal`).includes(legacy.secret), false);
  const [row] = secretsIn(path);
  assert.equal(row!.sealed, 1);
  assert.deepEqual(sealer.open(row!.secret), legacy.secret);
});

test('a sealed secret altered by one bit is refused', () => {
  const sealer = aesGcmSealer(Buffer.alloc(32, 1));
  const sealed = sealer.seal(Buffer.from('secret'));
  sealed[sealed.length - 1]! ^= 1;
  assert.throws(() => sealer.open(sealed), /cannot be opened/);
  assert.throws(() => aesGcmSealer(Buffer.alloc(16)), /32 bytes/);
});
