/** Races MaidSafe hit: simultaneous owners, and one owner's delete against the other's data. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { startEngine, tempDir, vaultsHoldingOnDisk, writeRandomFile } from './helpers.ts';

test('two owners storing the same chunk at the same moment end with 2 subscribers', async () => {
  const engine = await startEngine(12);
  const path = writeRandomFile(tempDir(), 'same.bin', 50_000);
  const [a, b] = await Promise.all([engine.putChunk({ as: 'ann', path }), engine.putChunk({ as: 'ben', path })]);
  assert.equal(a.name, b.name);
  assert.deepEqual([a.subscribers, b.subscribers].sort(), [1, 2]);
  const info = await engine.chunkInfo({ name: a.name });
  assert.equal(info.subscribers, 2);
  assert.equal(info.holders.length, 4);
  assert.equal(vaultsHoldingOnDisk(engine.dataDir, a.name).length, 4);

  // Ann deletes: Ben's copy is whole.
  assert.deepEqual(await engine.removeChunk({ as: 'ann', name: a.name }), { refcount: 0, subscribers: 1, deleted: false });
  assert.equal(vaultsHoldingOnDisk(engine.dataDir, a.name).length, 4);
});

test('two owners storing the same file at the same moment, then one deletes while the other reads', async () => {
  const engine = await startEngine(12);
  const dir = tempDir();
  const path = writeRandomFile(dir, 'shared.bin', 2_500_000);
  const [ann, ben] = await Promise.all([engine.putFile({ as: 'ann', path }), engine.putFile({ as: 'ben', path })]);
  assert.deepEqual(ann.chunks, ben.chunks);
  for (const chunk of ann.chunks) assert.equal((await engine.chunkInfo({ name: chunk })).subscribers, 2);

  const out = `${dir}/ben.bin`;
  await Promise.all([engine.removeFile({ as: 'ann', id: ann.id }), engine.getFile({ as: 'ben', id: ben.id, out })]);
  assert.ok(readFileSync(out).equals(readFileSync(path)));
  for (const chunk of ann.chunks) {
    const info = await engine.chunkInfo({ name: chunk });
    assert.equal(info.subscribers, 1);
    assert.equal(vaultsHoldingOnDisk(engine.dataDir, chunk).length, 4);
  }
  await engine.getFile({ as: 'ben', id: ben.id, out });
  assert.ok(readFileSync(out).equals(readFileSync(path)));
});

test('one owner storing the same chunk twice at once counts 2 references, 1 subscriber', async () => {
  const engine = await startEngine(12);
  const path = writeRandomFile(tempDir(), 'twice.bin', 5_000);
  const results = await Promise.all([engine.putChunk({ as: 'ann', path }), engine.putChunk({ as: 'ann', path })]);
  assert.deepEqual(results.map((r) => r.refcount).sort(), [1, 2]);
  const info = await engine.chunkInfo({ name: results[0]!.name, as: 'ann' });
  assert.equal(info.refcount, 2);
  assert.equal(info.subscribers, 1);
});
