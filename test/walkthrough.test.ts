/** Seed 004, step by step, in-process: reference counts, subscribers, non-owner deletes, bytes leaving disk. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isSafeVaultError } from '../electron/api/errors.ts';
import { eventually, startEngine, tempDir, vaultsHoldingOnDisk, writeRandomFile } from './helpers.ts';

test('multiple store/delete walk-through', async () => {
  const engine = await startEngine(12);
  const path = writeRandomFile(tempDir(), 'chunk.bin', 40_000);
  const refused = (as: string) =>
    assert.rejects(engine.removeChunk({ as, name }), (e) => isSafeVaultError(e) && e.code === 'non-owner' && /non-owner/.test(e.message));

  // User 1 stores a chunk: copies on 4 storage nodes.
  const first = await engine.putChunk({ as: 'user1', path });
  const name = first.name;
  assert.deepEqual(first, { name, refcount: 1, subscribers: 1 });
  const info = await engine.chunkInfo({ name, as: 'user1' });
  assert.equal(info.holders.length, 4);
  assert.deepEqual(vaultsHoldingOnDisk(engine.dataDir, name).sort(), info.holders.map((h) => h.vault).sort());

  // User 1 stores it again: only the manager's reference count moves; no new copies.
  assert.deepEqual(await engine.putChunk({ as: 'user1', path }), { name, refcount: 2, subscribers: 1 });
  assert.equal(vaultsHoldingOnDisk(engine.dataDir, name).length, 4);

  // User 2 stores it: the data_manager counts a second subscriber; still 4 copies.
  assert.deepEqual(await engine.putChunk({ as: 'user2', path }), { name, refcount: 1, subscribers: 2 });
  assert.equal(vaultsHoldingOnDisk(engine.dataDir, name).length, 4);

  // User 3 tries to delete: blocked, nothing changes.
  await refused('user3');
  const unchanged = await engine.chunkInfo({ name, as: 'user1' });
  assert.equal(unchanged.subscribers, 2);
  assert.equal(unchanged.refcount, 2);

  // User 1 deletes: refcount 2 -> 1, data_manager untouched.
  assert.deepEqual(await engine.removeChunk({ as: 'user1', name }), { refcount: 1, subscribers: 2, deleted: false });
  // Again: refcount 0, subscribers 2 -> 1; the data stays for user 2.
  assert.deepEqual(await engine.removeChunk({ as: 'user1', name }), { refcount: 0, subscribers: 1, deleted: false });
  assert.equal(vaultsHoldingOnDisk(engine.dataDir, name).length, 4);
  // A third time: user 1 is now a non-owner.
  await refused('user1');

  // User 2 deletes: subscribers 0, every storage node drops the bytes.
  assert.deepEqual(await engine.removeChunk({ as: 'user2', name }), { refcount: 0, subscribers: 0, deleted: true });
  assert.deepEqual(vaultsHoldingOnDisk(engine.dataDir, name), []);
  await assert.rejects(engine.chunkInfo({ name }), (e) => isSafeVaultError(e) && e.code === 'not-found');
  // Each holder reports the release to its managers, with any other change of the same second.
  const accounting = async () => (await engine.listVaults({})).filter((vault) => vault.used !== 0).map((vault) => vault.id);
  await eventually(async () => (await accounting()).length === 0, 'no vault accounts bytes').catch(async (error: Error) => {
    throw new Error(`${error.message}; still accounted by ${(await accounting()).join(', ')}`);
  });

  const types = (await engine.events({})).map((e) => e.type);
  for (const type of ['chunk.stored', 'chunk.deduplicated', 'delete.refused', 'chunk.released', 'chunk.deleted']) {
    assert.ok(types.includes(type as never), `missing ${type} event`);
  }
});

test('files: put, list, get byte-identical, remove', async () => {
  const engine = await startEngine(12);
  const dir = tempDir();
  const path = writeRandomFile(dir, 'photo.raw', 3 * 1024 * 1024 + 123);
  const file = await engine.putFile({ as: 'alice', path });
  assert.equal(file.name, 'photo.raw');
  assert.equal(file.size, 3 * 1024 * 1024 + 123);
  assert.equal(file.chunks.length, 4);
  assert.deepEqual((await engine.listFiles({ as: 'alice' })).map((f) => f.id), [file.id]);
  assert.deepEqual(await engine.listFiles({ as: 'bob' }), []);

  const out = `${dir}/copy.raw`;
  const progress: number[] = [];
  const stop = engine.onEvent((e) => e.type === 'file.progress' && e.client === 'alice' && progress.push(e.done));
  await engine.getFile({ as: 'alice', id: file.id, out });
  stop();
  assert.equal(progress.length, 4, 'one progress event per chunk');
  assert.equal(progress.at(-1), file.size);
  const { readFileSync } = await import('node:fs');
  assert.ok(readFileSync(out).equals(readFileSync(path)));

  // Bob stores the same file: convergent encryption gives the same chunks, now with 2 subscribers.
  const bobs = await engine.putFile({ as: 'bob', path });
  assert.deepEqual(bobs.chunks, file.chunks);
  assert.equal((await engine.chunkInfo({ name: file.chunks[0]! })).subscribers, 2);

  const removed = await engine.removeFile({ as: 'alice', id: file.id });
  assert.ok(removed.chunks.every((c) => c.subscribers === 1 && !c.deleted));
  await assert.rejects(engine.getFile({ as: 'alice', id: file.id, out }), (e) => isSafeVaultError(e) && e.code === 'not-found');
  await engine.getFile({ as: 'bob', id: bobs.id, out });
  assert.ok(readFileSync(out).equals(readFileSync(path)));
  await engine.removeFile({ as: 'bob', id: bobs.id });
  for (const chunk of file.chunks) assert.deepEqual(vaultsHoldingOnDisk(engine.dataDir, chunk), []);
});
