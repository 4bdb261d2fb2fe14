/** The data_manager RFC's churn rules, and account transfer, on a real local network. */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { test } from 'node:test';
import { GROUP_SIZE, MAX_HOLDERS, MIN_HOLDERS } from '../electron/engine/constants.ts';
import type { Engine } from '../electron/engine/engine.ts';
import { isSafeVaultError } from '../electron/api/errors.ts';
import { fromHex, toHex } from '../electron/engine/names.ts';
import { chunkPath, eventually, startEngine, tempDir, vaultsHoldingOnDisk, writeRandomFile } from './helpers.ts';

async function storeOne(engine: Engine, as = 'user1') {
  const { name } = await engine.putChunk({ as, path: writeRandomFile(tempDir(), 'c.bin', 10_000) });
  return name;
}

const holdersOf = async (engine: Engine, name: string) => (await engine.chunkInfo({ name })).holders;
const onlineHolders = async (engine: Engine, name: string) => (await holdersOf(engine, name)).filter((h) => h.online).map((h) => h.vault);

test('a holder leaves: the chunk is back to 4 online holders, with a new copy on disk', async () => {
  const engine = await startEngine(12);
  const name = await storeOne(engine);
  const [leaving] = await onlineHolders(engine, name);
  await engine.stopVault({ id: leaving! });
  await engine.network.settled();

  const holders = await holdersOf(engine, name);
  const online = holders.filter((h) => h.online).map((h) => h.vault);
  assert.equal(online.length, MIN_HOLDERS);
  assert.ok(!online.includes(leaving!));
  // The departed holder stays listed (offline), below the new copy, which went to the top.
  assert.equal(holders.length, 5);
  assert.equal(holders[0]!.online, true);
  assert.ok(holders.some((h) => h.vault === leaving && !h.online));
  for (const vault of online) assert.ok(existsSync(chunkPath(engine.dataDir, vault, name)), `no bytes on ${vault}`);
  assert.ok((await engine.events({})).some((e) => e.type === 'copy.made' && e.chunk === name && e.vault === holders[0]!.vault));
});

test('a killed holder (no goodbye) is noticed and replaced too', async () => {
  const engine = await startEngine(12);
  const name = await storeOne(engine);
  const [victim] = await onlineHolders(engine, name);
  await engine.killVault({ id: victim! });
  await eventually(async () => (await onlineHolders(engine, name)).length === MIN_HOLDERS && !(await onlineHolders(engine, name)).includes(victim!), 'replacement copy');
  assert.ok((await engine.events({})).some((e) => e.type === 'vault.left' && e.vault === victim && !e.graceful));
});

test('a holder that returns goes to the top of the list', async () => {
  const engine = await startEngine(12);
  const name = await storeOne(engine);
  const holder = (await onlineHolders(engine, name))[2]!;
  await engine.stopVault({ id: holder });
  await engine.network.settled();
  assert.notEqual((await holdersOf(engine, name))[0]!.vault, holder);
  await engine.startVault({ id: holder });
  await engine.network.settled();
  const holders = await holdersOf(engine, name);
  assert.equal(holders[0]!.vault, holder);
  assert.equal(holders[0]!.online, true);
  assert.equal(holders.length, 5);
});

test('the ninth holder is pruned: downranked, and its bytes deleted when it returns', async () => {
  const engine = await startEngine(12);
  const name = await storeOne(engine);
  const original = await onlineHolders(engine, name);
  // Each departure adds a new copy at the top, pushing the departed holders down the list.
  for (const vault of original) {
    await engine.stopVault({ id: vault });
    await engine.network.settled();
  }
  let holders = await holdersOf(engine, name);
  assert.equal(holders.length, MAX_HOLDERS);
  const bottom = holders[MAX_HOLDERS - 1]!.vault;
  assert.equal(bottom, original[3]);
  // One more departure: a ninth entry, so the bottom one is pruned.
  await engine.stopVault({ id: holders[0]!.vault });
  await engine.network.settled();
  holders = await holdersOf(engine, name);
  assert.equal(holders.length, MAX_HOLDERS);
  assert.ok(!holders.some((h) => h.vault === bottom), 'ninth holder still listed');
  assert.equal((await engine.listVaults({})).find((v) => v.id === bottom)!.rank, -1);
  assert.ok(existsSync(chunkPath(engine.dataDir, bottom, name)), 'bytes were on the pruned holder while it was away');

  // It comes back: the delete that waited for it is delivered, and the bytes really go.
  await engine.startVault({ id: bottom });
  await engine.network.settled();
  await eventually(() => !existsSync(chunkPath(engine.dataDir, bottom, name)), 'pruned bytes deleted');
  assert.ok(!(await holdersOf(engine, name)).some((h) => h.vault === bottom));
  assert.ok((await engine.events({})).some((e) => e.type === 'holder.pruned' && e.vault === bottom));
  // And every vault still listed online really holds the chunk.
  for (const vault of await onlineHolders(engine, name)) assert.ok(vaultsHoldingOnDisk(engine.dataDir, name).includes(vault));
});

test('account transfer: a record moves to the vault newly closest when a manager leaves', async () => {
  const engine = await startEngine(12);
  const name = await storeOne(engine);
  const chunk = fromHex(name);
  const managersBefore = engine.network.closest(chunk, GROUP_SIZE).map(toHex);
  const fifth = engine.network.closest(chunk, GROUP_SIZE + 1).map(toHex)[GROUP_SIZE]!;
  assert.equal(engine.network.vault(fifth)!.dataManager.chunks.get(chunk), undefined);

  await engine.stopVault({ id: managersBefore[0]! });
  await engine.network.settled();
  const record = engine.network.vault(fifth)!.dataManager.chunks.get(chunk);
  assert.ok(record, 'new member did not receive the record');
  assert.equal(record.subscribers, 1);
  assert.ok((await engine.events({})).some((e) => e.type === 'account.transferred' && e.vault === fifth));
  // The group still answers with a quorum: a second owner is counted.
  assert.equal((await engine.putChunk({ as: 'user2', path: writeRandomFileSame(engine, name) })).subscribers, 2);
});

test('a deleted record never comes back with a manager that was away', async () => {
  const engine = await startEngine(12);
  const name = await storeOne(engine);
  const chunk = fromHex(name);
  const away = toHex(engine.network.closest(chunk, GROUP_SIZE)[0]!);
  await engine.stopVault({ id: away });
  await engine.network.settled();
  await engine.removeChunk({ as: 'user1', name });
  await engine.startVault({ id: away });
  await engine.network.settled();
  await eventually(() => engine.network.vault(away)!.dataManager.chunks.get(chunk) === undefined, 'stale record dropped');
  await assert.rejects(engine.chunkInfo({ name }), (e) => isSafeVaultError(e) && e.code === 'not-found');
  // A holder that was away too sweeps the bytes on its return, on the group's word.
  await eventually(() => vaultsHoldingOnDisk(engine.dataDir, name).length === 0, 'no bytes left on any disk');
});

/** The bytes of an already stored chunk, found on any holder's disk, as a fresh file. */
function writeRandomFileSame(engine: Engine, name: string): string {
  const [vault] = vaultsHoldingOnDisk(engine.dataDir, name);
  return chunkPath(engine.dataDir, vault!, name);
}
