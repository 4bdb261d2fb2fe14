/** Bad input from callers, clients and vaults gets a clear error and changes nothing. */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseParams } from '../electron/api/contract.ts';
import { signRequest } from '../electron/engine/clientRequest.ts';
import { systemClock } from '../electron/engine/clock.ts';
import { GROUP_SIZE, MAX_CHUNK_SIZE, REQUEST_WINDOW_MS } from '../electron/engine/constants.ts';
import type { Engine } from '../electron/engine/engine.ts';
import type { LocalNetwork } from '../electron/engine/network.ts';
import { isSafeVaultError, type ErrorCode } from '../electron/api/errors.ts';
import { Groups } from '../electron/engine/group.ts';
import { createIdentity } from '../electron/engine/identity.ts';
import { sha256, toHex } from '../electron/engine/names.ts';
import { chunkPath, eventually, startEngine, tempDir, vaultsHoldingOnDisk, writeRandomFile } from './helpers.ts';

const refusal = (code: ErrorCode, pattern?: RegExp) => (e: unknown) =>
  isSafeVaultError(e) && e.code === code && !e.message.includes('\n') && (!pattern || pattern.test(e.message));

/** Every vault's account comes back to empty: what a refused store had placed is released (holders report it as they sweep). */
async function nothingStored(engine: Engine) {
  const holding = async () => (await engine.listVaults({})).filter((vault) => vault.used !== 0).map((vault) => `${vault.id.slice(0, 8)}: ${vault.used}`);
  await eventually(async () => (await holding()).length === 0, 'every vault holds nothing').catch(async (error: Error) => {
    throw new Error(`${error.message}; still held: ${(await holding()).join(', ')}`);
  });
}

/** A client outside the engine, talking to the network directly, as a malicious one would. */
function rawClient(engine: Engine<LocalNetwork>) {
  const identity = createIdentity();
  const network = engine.network.impersonate(identity.name);
  const manager = () => engine.network.closest(identity.name, 1)[0]!;
  /** Uploads `bytes` to the vault closest to them, as a client does before a put. */
  const stage = async (bytes: Buffer) => {
    const stagedAt = engine.network.closest(sha256(bytes), 1)[0]!;
    await network.request(stagedAt, { type: 'chunk.stage', chunk: sha256(bytes), bytes });
    return stagedAt;
  };
  return { identity, network, manager, stage, groups: new Groups(network) };
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

test('a put of a chunk that was never uploaded, or whose size is wrong, is refused and stores nothing', async () => {
  const engine = await startEngine(8);
  const { identity, network, manager, stage } = rawClient(engine);
  const bytes = randomBytes(1000);
  const stagedAt = await stage(bytes);
  // Signed for other bytes than the ones uploaded: the data managers find no upload of that chunk.
  const other = signRequest(identity, 'put', sha256(randomBytes(1000)), bytes.length, systemClock);
  await assert.rejects(network.request(manager(), { type: 'client.put', request: other, stagedAt }), refusal('not-found', /not uploaded/));
  const wrongSize = signRequest(identity, 'put', sha256(bytes), bytes.length + 1, systemClock);
  await assert.rejects(network.request(manager(), { type: 'client.put', request: wrongSize, stagedAt }), refusal('bad-request', /size/));
  await nothingStored(engine);
});

test('bad signatures, impostors and replays are refused; a repeated request counts once', async () => {
  const engine = await startEngine(8);
  const { identity, network, manager, stage } = rawClient(engine);
  const bytes = randomBytes(2000);
  const name = sha256(bytes);
  const stagedAt = await stage(bytes);

  const flipped = signRequest(identity, 'put', name, bytes.length, systemClock);
  flipped.signature[0]! ^= 1;
  await assert.rejects(network.request(manager(), { type: 'client.put', request: flipped, stagedAt }), refusal('bad-signature'));

  // Mallory signs with her key but names Alice as the client.
  const mallory = createIdentity();
  const impostor = signRequest(mallory, 'put', name, bytes.length, systemClock);
  identity.name.copy(impostor.payload, 1);
  impostor.signature = mallory.sign(impostor.payload);
  await assert.rejects(network.request(manager(), { type: 'client.put', request: impostor, stagedAt }), refusal('bad-signature'));
  await nothingStored(engine);

  // The same signed request again (a retry, or a replay) gets the stored answer: it counts once.
  const request = signRequest(identity, 'put', name, bytes.length, systemClock);
  assert.equal((await network.request(manager(), { type: 'client.put', request, stagedAt })).refcount, 1);
  const members = engine.network.closest(identity.name, GROUP_SIZE);
  for (const member of members) assert.equal((await network.request(member, { type: 'client.put', request, stagedAt })).refcount, 1);
  const refcount = await network.request(members[1]!, { type: 'cm.refcount', client: identity.name, chunk: name });
  assert.equal(refcount.refcount, 1);
  assert.equal((await engine.chunkInfo({ name: name.toString('hex') })).subscribers, 1);

  // A request from outside the replay window is refused.
  const stale = signRequest(identity, 'put', name, bytes.length, { ...systemClock, now: () => Date.now() - 2 * REQUEST_WINDOW_MS });
  await assert.rejects(network.request(manager(), { type: 'client.put', request: stale, stagedAt }), refusal('bad-request', /too old/));
});

test('no single vault can forge a group decision', async () => {
  const engine = await startEngine(16);
  const { identity: owner, network, manager, stage } = rawClient(engine);
  const bytes = randomBytes(3000);
  const chunk = sha256(bytes);
  const put = signRequest(owner, 'put', chunk, bytes.length, systemClock);
  await network.request(manager(), { type: 'client.put', request: put, stagedAt: await stage(bytes) });
  const name = toHex(chunk);
  const dataManagers = engine.network.closest(chunk, GROUP_SIZE);
  const clientManagers = engine.network.closest(owner.name, GROUP_SIZE);
  const nearby = engine.network.closest(owner.name, GROUP_SIZE + 2);
  // Receivers allow two places of slack for views that lag, so an outsider is beyond the first six of both groups
  // (16 vaults: there always is one).
  const nearChunk = engine.network.closest(chunk, GROUP_SIZE + 2);
  const outsider = engine.network.running().find((v) => ![...nearby, ...nearChunk].some((m) => m.equals(v.name)))!;

  // A member of the owner's manager group cannot pass down what its group did not decide: the data manager checks with a quorum.
  const insider = engine.network.impersonate(clientManagers[0]!);
  const madeUp = randomBytes(32);
  await assert.rejects(insider.request(dataManagers[0]!, { type: 'dm.delete', client: owner.name, chunk, op: madeUp }), refusal('unavailable', /does not confirm/));
  await assert.rejects(insider.request(dataManagers[0]!, { type: 'dm.put', client: owner.name, chunk, op: madeUp, stagedAt: null }), refusal('unavailable', /does not confirm/));
  // The put its group did decide counts once, however often it is passed down again.
  const again = await insider.request(dataManagers[1]!, { type: 'dm.put', client: owner.name, chunk, op: sha256(put.payload), stagedAt: null });
  assert.equal(again.subscribers, 1);
  // A vault outside the client's manager group is not heard.
  await assert.rejects(engine.network.impersonate(outsider.name).request(dataManagers[0]!, { type: 'dm.delete', client: owner.name, chunk, op: madeUp }), refusal('unavailable', /not among that client's managers/));
  // A state announced by one member is not installed: members install only what they accepted.
  const commit = { type: 'rec.commit' as const, persona: 'data_manager' as const, key: chunk, value: { version: 99, value: null, ops: [] } };
  const member = engine.network.impersonate(dataManagers[1]!);
  assert.deepEqual(await member.request(dataManagers[0]!, commit), { installed: false });
  await assert.rejects(engine.network.impersonate(outsider.name).request(dataManagers[0]!, commit), refusal('unauthorized'));

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
  // The bad holder is told to check its copy with the group, which no longer lists it: it deletes it.
  await eventually(() => !vaultsHoldingOnDisk(engine.dataDir, chunk).includes(first!.vault), 'the corrupt copy deleted');
  assert.equal(vaultsHoldingOnDisk(engine.dataDir, chunk).length, 4);
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
  engine.network.vault(liar)!.storageNode.onGet = () => ({ bytes: randomBytes(1000) });

  const out = join(dir, 'out.bin');
  await engine.getFile({ as: 'a', id: file.id, out });
  assert.ok(readFileSync(out).equals(readFileSync(path)));
  assert.ok((await engine.events({})).some((e) => e.type === 'holder.bad' && e.vault === liar && e.chunk === chunk));
  await eventually(async () => !(await engine.chunkInfo({ name: chunk })).holders.some((h) => h.vault === liar), 'liar dropped');
  assert.equal((await engine.chunkInfo({ name: chunk })).holders.length, 4);
});

test('a vault storing bytes that do not match their name refuses them', async () => {
  const engine = await startEngine(8);
  const bytes = randomBytes(1200);
  const chunk = sha256(randomBytes(1200));
  const [manager, holder] = engine.network.closest(chunk, 2);
  const store = { type: 'node.store' as const, chunk, bytes, copy: false, base: 0 };
  await assert.rejects(engine.network.impersonate(manager!).request(holder!, store), refusal('bad-hash'));
  // An upload under a name its bytes do not hash to is refused too, and nothing is staged under either name.
  const staging = engine.network.vault(holder!.toString('hex'))!;
  await assert.rejects(engine.network.impersonate(createIdentity().name).request(holder!, { type: 'chunk.stage', chunk, bytes }), refusal('bad-hash'));
  assert.equal(staging.storageNode.staged(chunk), undefined);
  assert.equal(staging.storageNode.staged(sha256(bytes)), undefined);
  await nothingStored(engine);
});
