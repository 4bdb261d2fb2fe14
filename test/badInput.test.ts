/** Bad input from callers, clients and vaults gets a clear error and changes nothing. */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseParams } from '../electron/api/contract.ts';
import { signRequest } from '../electron/engine/clientRequest.ts';
import { GROUP_SIZE, MAX_CHUNK_SIZE } from '../electron/engine/constants.ts';
import type { Engine } from '../electron/engine/engine.ts';
import { isSafeVaultError, type ErrorCode } from '../electron/api/errors.ts';
import { Groups } from '../electron/engine/group.ts';
import { createIdentity } from '../electron/engine/identity.ts';
import { fromHex, sha256 } from '../electron/engine/names.ts';
import { chunkPath, eventually, startEngine, tempDir, vaultsHoldingOnDisk, writeRandomFile } from './helpers.ts';

const refusal = (code: ErrorCode, pattern?: RegExp) => (e: unknown) =>
  isSafeVaultError(e) && e.code === code && !e.message.includes('\n') && (!pattern || pattern.test(e.message));

async function nothingStored(engine: Engine) {
  for (const vault of await engine.listVaults({})) assert.equal(vault.used, 0, `vault ${vault.id} holds bytes`);
}

/** A client outside the engine, talking to the network directly, as a malicious one would. */
function rawClient(engine: Engine) {
  const identity = createIdentity();
  const transport = engine.network.transportFor(identity.name);
  return { identity, transport, groups: new Groups(engine.network.net, transport) };
}

test('the API contract refuses malformed params with one line', () => {
  const bad: [Parameters<typeof parseParams>[0], unknown, RegExp][] = [
    ['putFile', { as: '../etc', path: '/tmp/x' }, /as: a client name/],
    ['putFile', { as: 'a/b', path: '/tmp/x' }, /as:/],
    ['putFile', { as: 'ok', path: 'relative/x' }, /absolute/],
    ['removeChunk', { as: 'ok', name: 'zz' }, /64 lowercase hex/],
    ['getFile', { as: 'ok', id: '../../x', out: '/tmp/o' }, /file id/],
    ['listVaults', { extra: 1 }, /extra|Unrecognized/i],
    ['stopVault', { id: 'not-hex' }, /vault id/],
  ];
  for (const [method, params, pattern] of bad) assert.throws(() => parseParams(method, params), refusal('bad-request', pattern));
  assert.deepEqual(parseParams('putFile', { as: 'alice_1', path: '/tmp/x' }), { as: 'alice_1', path: '/tmp/x' });
});

test('oversize chunks, missing files, directories and unknown ids', async () => {
  const engine = await startEngine(8);
  const dir = tempDir();
  await assert.rejects(engine.putChunk({ as: 'a', path: writeRandomFile(dir, 'big', MAX_CHUNK_SIZE + 1) }), refusal('too-large'));
  await assert.rejects(engine.putChunk({ as: 'a', path: join(dir, 'nope') }), refusal('not-found'));
  await assert.rejects(engine.putFile({ as: 'a', path: join(dir, 'nope') }), refusal('not-found'));
  mkdirSync(join(dir, 'folder'));
  await assert.rejects(engine.putFile({ as: 'a', path: join(dir, 'folder') }), refusal('bad-request'));
  await assert.rejects(engine.getFile({ as: 'a', id: '0'.repeat(32), out: join(dir, 'o') }), refusal('not-found'));
  await assert.rejects(engine.removeFile({ as: 'a', id: '0'.repeat(32) }), refusal('not-found'));
  await assert.rejects(engine.chunkInfo({ name: '0'.repeat(64) }), refusal('not-found'));
  await assert.rejects(engine.stopVault({ id: 'ffffffff' }), refusal('not-found'));
  await nothingStored(engine);

  // Another client's file id is unknown to this client.
  const file = await engine.putFile({ as: 'owner', path: writeRandomFile(dir, 'mine', 5000) });
  await assert.rejects(engine.getFile({ as: 'thief', id: file.id, out: join(dir, 'o') }), refusal('not-found'));
  await assert.rejects(engine.removeFile({ as: 'thief', id: file.id }), refusal('not-found'));
});

test('a chunk whose bytes do not match its signed name is refused', async () => {
  const engine = await startEngine(8);
  const { identity, groups } = rawClient(engine);
  const bytes = randomBytes(1000);
  const request = signRequest(identity, 'put', sha256(randomBytes(1000)), bytes.length);
  await assert.rejects(groups.ask(identity.name, { type: 'client.put', request, bytes }), refusal('bad-hash'));
  await nothingStored(engine);
});

test('bad signatures, impostors and replays are refused', async () => {
  const engine = await startEngine(8);
  const { identity, groups } = rawClient(engine);
  const bytes = randomBytes(2000);
  const name = sha256(bytes);

  const flipped = signRequest(identity, 'put', name, bytes.length);
  flipped.signature[0]! ^= 1;
  await assert.rejects(groups.ask(identity.name, { type: 'client.put', request: flipped, bytes }), refusal('bad-signature'));

  // Mallory signs with her key but names Alice as the client.
  const mallory = createIdentity();
  const impostor = signRequest(mallory, 'put', name, bytes.length);
  identity.name.copy(impostor.payload, 1);
  impostor.signature = mallory.sign(impostor.payload);
  await assert.rejects(groups.ask(identity.name, { type: 'client.put', request: impostor, bytes }), refusal('bad-signature'));
  await nothingStored(engine);

  const request = signRequest(identity, 'put', name, bytes.length);
  assert.equal((await groups.ask(identity.name, { type: 'client.put', request, bytes })).refcount, 1);
  await assert.rejects(groups.ask(identity.name, { type: 'client.put', request, bytes }), refusal('conflict', /replayed/));
  assert.equal((await groups.ask(identity.name, { type: 'cm.refcount', client: identity.name, chunk: name })).refcount, 1);
});

test('no single vault can forge a group decision', async () => {
  const engine = await startEngine(12);
  const { name } = await engine.putChunk({ as: 'victim', path: writeRandomFile(tempDir(), 'c', 3000) });
  const chunk = fromHex(name);
  const victim = sha256(randomBytes(32));
  const dataManagers = engine.network.net.closest(chunk, GROUP_SIZE);
  const clientManagers = engine.network.net.closest(victim, GROUP_SIZE);
  // Receivers allow one extra place for churn in flight, so an outsider is beyond the first five.
  const nearby = engine.network.net.closest(victim, GROUP_SIZE + 1);
  const outsider = engine.network.running().find((v) => !nearby.some((m) => m.equals(v.name)))!;
  const forged = { type: 'dm.delete' as const, client: victim, requestId: 'forged', chunk };

  // A vault outside the client's manager group is not heard at all.
  await assert.rejects(engine.network.transportFor(outsider.name).request(dataManagers[0]!, forged), refusal('unauthorized'));
  // One real member alone is not a quorum: nothing happens.
  const insider = engine.network.transportFor(clientManagers[0]!);
  void Promise.all(dataManagers.map((m) => insider.request(m, forged))).catch(() => undefined);
  await new Promise((r) => setTimeout(r, 200));
  assert.equal((await engine.chunkInfo({ name })).subscribers, 1);
  assert.equal(vaultsHoldingOnDisk(engine.dataDir, name).length, 4);
});

test('a file that changes while it is being stored is refused and leaves nothing behind', async () => {
  const engine = await startEngine(8);
  const dir = tempDir();
  const path = writeRandomFile(dir, 'moving.bin', 6 * 1024 * 1024);
  const stop = engine.onEvent((e) => {
    if (e.type === 'file.progress' && e.done > 0) truncateSync(path, 1000);
  });
  await assert.rejects(engine.putFile({ as: 'a', path }), refusal('conflict', /changed/));
  stop();
  assert.deepEqual(await engine.listFiles({ as: 'a' }), []);
  await nothingStored(engine);
});

test('a holder serving bad bytes is skipped, reported, and replaced', async () => {
  const engine = await startEngine(12);
  const dir = tempDir();
  const path = writeRandomFile(dir, 'precious.bin', 100_000);
  const file = await engine.putFile({ as: 'a', path });
  const chunk = file.chunks[0]!;
  const [first] = (await engine.chunkInfo({ name: chunk })).holders;
  writeFileSync(chunkPath(engine.dataDir, first!.vault, chunk), randomBytes(100)); // bit rot on the first holder

  const out = join(dir, 'out.bin');
  await engine.getFile({ as: 'a', id: file.id, out });
  assert.ok(readFileSync(out).equals(readFileSync(path)));
  assert.ok((await engine.events({})).some((e) => e.type === 'holder.bad' && e.vault === first!.vault && e.chunk === chunk));
  await eventually(async () => {
    const holders = (await engine.chunkInfo({ name: chunk })).holders;
    return holders.length === 4 && !holders.some((h) => h.vault === first!.vault);
  }, 'bad holder replaced');
  assert.equal((await engine.listVaults({})).find((v) => v.id === first!.vault)!.rank, -1);
  assert.equal(vaultsHoldingOnDisk(engine.dataDir, chunk).length, 4);
  assert.ok(!vaultsHoldingOnDisk(engine.dataDir, chunk).includes(first!.vault), 'corrupt copy kept');
});

test('a vault never holds more than it donates', async () => {
  const engine = await startEngine(8);
  const tiny = await engine.addVault({ donated: 1000 });
  assert.equal(tiny.donated, 1000);
  const dir = tempDir();
  for (let i = 0; i < 12; i++) await engine.putChunk({ as: 'a', path: writeRandomFile(dir, `c${i}`, 5000) });
  const after = (await engine.listVaults({})).find((v) => v.id === tiny.id)!;
  assert.equal(after.used, 0);
  assert.equal(after.chunks, 0);
});

test('read-only calls and refused deletes do not create client identities', async () => {
  const engine = await startEngine(6);
  const { name } = await engine.putChunk({ as: 'owner', path: writeRandomFile(tempDir(), 'c', 3000) });
  assert.deepEqual(await engine.listFiles({ as: 'typo' }), []);
  assert.equal((await engine.chunkInfo({ name, as: 'typo' })).refcount, 0);
  await assert.rejects(engine.removeChunk({ as: 'stranger', name }), refusal('non-owner', /non-owner/));
  assert.deepEqual((await engine.status({})).clients, ['owner']);
  assert.ok((await engine.events({})).some((e) => e.type === 'delete.refused' && e.client === 'stranger'));
});

test('a malicious holder that serves wrong bytes is skipped and replaced', async () => {
  const engine = await startEngine(12);
  const dir = tempDir();
  const path = writeRandomFile(dir, 'doc.bin', 60_000);
  const file = await engine.putFile({ as: 'a', path });
  const chunk = file.chunks[1]!;
  const liar = (await engine.chunkInfo({ name: chunk })).holders[0]!.vault;
  // This vault's storage node answers every read with garbage, skipping its own hash check.
  engine.network.vault(liar)!.storageNode.onGet = async () => ({ bytes: randomBytes(1000) });

  const out = join(dir, 'out.bin');
  await engine.getFile({ as: 'a', id: file.id, out });
  assert.ok(readFileSync(out).equals(readFileSync(path)));
  assert.ok((await engine.events({})).some((e) => e.type === 'holder.bad' && e.vault === liar && e.chunk === chunk));
  await eventually(async () => !(await engine.chunkInfo({ name: chunk })).holders.some((h) => h.vault === liar), 'liar dropped');
  assert.equal((await engine.chunkInfo({ name: chunk })).holders.length, 4);
});

test('one manager cannot redirect a group decision by varying its copy of the message', async () => {
  const engine = await startEngine(12);
  const { identity, groups } = rawClient(engine);
  const [one, two] = [randomBytes(1500), randomBytes(1500)];
  for (const bytes of [one, two]) {
    await groups.ask(identity.name, { type: 'client.put', request: signRequest(identity, 'put', sha256(bytes), bytes.length), bytes });
  }
  const [a, b, c] = engine.network.net.closest(identity.name, GROUP_SIZE);
  const deleteOf = (chunk: Buffer) => ({ type: 'dm.delete' as const, client: identity.name, requestId: 'same-request', chunk });
  // Two honest members ask to delete chunk one; the third, arriving last, names chunk two instead.
  for (const [sender, chunk] of [[a!, one], [b!, one], [c!, two]] as const) {
    const transport = engine.network.transportFor(sender);
    for (const manager of engine.network.net.closest(sha256(chunk), GROUP_SIZE)) void transport.request(manager, deleteOf(sha256(chunk))).catch(() => undefined);
  }
  await new Promise((r) => setTimeout(r, 200));
  for (const bytes of [one, two]) assert.equal((await engine.chunkInfo({ name: sha256(bytes).toString('hex') })).subscribers, 1);
});
