/** Races MaidSafe hit: simultaneous owners, and one owner's delete against the other's data. */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { signRequest } from '../electron/engine/clientRequest.ts';
import { GROUP_SIZE } from '../electron/engine/constants.ts';
import { isSafeVaultError } from '../electron/api/errors.ts';
import { createIdentity } from '../electron/engine/identity.ts';
import { sha256 } from '../electron/engine/names.ts';
import { startEngine, tempDir, virtualNetwork, vaultsHoldingOnDisk, writeRandomFile } from './helpers.ts';

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

test('one owner, two requests on one chunk handled by two managers at once: counted exactly once each way', async () => {
  for (const [seed, second] of [[1, 'put'], [2, 'put'], ...[3, 4, 5, 6, 7, 8].map((s) => [s, 'delete'] as const)] as const) {
    const { clock, network, close } = await virtualNetwork(seed, 10, 3000);
    const owner = createIdentity();
    const client = network.networkOf(owner.name);
    const bytes = randomBytes(2000);
    const chunk = sha256(bytes);
    const stagedAt = network.closest(chunk, 1)[0]!;
    const put = () => ({ type: 'client.put' as const, request: signRequest(owner, 'put', chunk, bytes.length, clock), stagedAt });
    await clock.drive(client.request(stagedAt, { type: 'chunk.stage', chunk, bytes }));
    const [a, b] = network.closest(owner.name, GROUP_SIZE);
    if (second === 'delete') {
      await clock.drive(client.request(a!, put()));
      await clock.pass(1000);
      await clock.drive(client.request(stagedAt, { type: 'chunk.stage', chunk, bytes })); // for a put after the delete
    }
    const other = second === 'put' ? put() : { type: 'client.delete' as const, request: signRequest(owner, 'delete', chunk, 0, clock) };
    const replies = await clock.drive(Promise.all([client.request(a!, put()), client.request(b!, other as ReturnType<typeof put>)]));
    await clock.pass(5000);
    const { refcount } = await clock.drive(client.request(a!, { type: 'cm.refcount', client: owner.name, chunk }));
    const record = await clock.drive(network.chunkRecord(chunk));
    // Two puts: references 1 then 2, one subscriber. A put and a delete of the one reference: whichever went first, one reference and one subscriber.
    assert.equal(refcount, second === 'put' ? 2 : 1, `seed ${seed}: refcount`);
    // The put before the delete answers 2 and the delete 1; the delete before the put answers 0 and the put 1.
    if (second === 'put') assert.deepEqual(replies.map((r) => r.refcount).sort(), [1, 2]);
    else assert.equal(replies[0]!.refcount - replies[1]!.refcount, 1, `seed ${seed}: replies ${replies.map((r) => r.refcount)}`);
    assert.equal(record?.subscribers, 1, `seed ${seed}: subscribers after a ${second} beside a put`);
    close();
  }
});

test("a delete refused before the owner's reference existed stays refused: the same request handled later, by another manager, releases nothing", async () => {
  const { clock, network, close } = await virtualNetwork(11, 10, 3000);
  const owner = createIdentity();
  const client = network.networkOf(owner.name);
  const bytes = randomBytes(2000);
  const chunk = sha256(bytes);
  const stagedAt = network.closest(chunk, 1)[0]!;
  const [a, b] = network.closest(owner.name, GROUP_SIZE);
  const nonOwner = (error: unknown) => isSafeVaultError(error) && error.code === 'non-owner';
  const release = { type: 'client.delete' as const, request: signRequest(owner, 'delete', chunk, 0, clock) };
  await assert.rejects(clock.drive(client.request(a!, release)), nonOwner);
  await clock.drive(client.request(stagedAt, { type: 'chunk.stage', chunk, bytes }));
  const put = await clock.drive(client.request(a!, { type: 'client.put', request: signRequest(owner, 'put', chunk, bytes.length, clock), stagedAt }));
  assert.equal(put.refcount, 1);
  // The refused delete again (the client's retry, a duplicate frame), at another manager: its stored answer.
  await assert.rejects(clock.drive(client.request(b!, release)), nonOwner);
  await clock.pass(5000);
  const { refcount } = await clock.drive(client.request(a!, { type: 'cm.refcount', client: owner.name, chunk }));
  assert.equal(refcount, 1, 'the put is still counted');
  assert.equal((await clock.drive(network.chunkRecord(chunk)))?.subscribers, 1);
  close();
});
