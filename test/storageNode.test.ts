/**
 * A storage node's puts race each other: stores are answered once their file is written on libuv's
 * threads (the engine's background writes), and other messages are handled meanwhile. Real vaults,
 * real SQLite files, real chunk files.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import fsPromises from 'node:fs/promises';
import { syncBuiltinESMExports } from 'node:module';
import { join } from 'node:path';
import { test } from 'node:test';
import { isSafeVaultError, type ErrorCode } from '../electron/api/errors.ts';
import type { Engine } from '../electron/engine/engine.ts';
import type { LocalNetwork } from '../electron/engine/network.ts';
import { sha256, toHex, type Name } from '../electron/engine/names.ts';
import type { Vault } from '../electron/engine/vault.ts';
import { startEngine } from './helpers.ts';

/** Every file under a vault's chunk folder (temp files included), as paths below it. */
function filesOnDisk(engine: Engine, vault: Vault): string[] {
  const root = join(engine.dataDir, 'vaults', vault.id, 'chunks');
  if (!existsSync(root)) return [];
  return readdirSync(root).flatMap((dir) => readdirSync(join(root, dir)).map((file) => `${dir}/${file}`));
}

/** A `node.store` of `bytes` to `holder` for a placement on version `base`, sent through the hub (the codec both ways) by the chunk's closest vault, as its data_manager would. */
function storeAt(engine: Engine<LocalNetwork>, holder: Vault, bytes: Buffer, base = 0): { chunk: Name; sent: Promise<unknown> } {
  const network = engine.network;
  const chunk = sha256(bytes);
  const manager = network.closest(chunk, 2).find((name) => !name.equals(holder.name))!;
  const sent = network.impersonate(manager).request(holder.name, { type: 'node.store', chunk, bytes, copy: false, base });
  return { chunk, sent };
}

/** A vault's account as its storage_node_manager group holds it, once every change it queued was reported. */
async function account(engine: Engine<LocalNetwork>, vault: Vault): Promise<{ used: number; chunks: number }> {
  await vault.storageNode.deliverReports();
  const { used, chunks } = await engine.network.info(vault.id);
  return { used, chunks };
}

test('two stores of one chunk at once on one node: one file, one chunk counted, one report, both answered', async () => {
  const engine = await startEngine(8);
  const holder = engine.network.running()[0]!;
  assert.deepEqual(holder.storageNode.usage(), { count: 0, bytes: 0 });
  const bytes = randomBytes(200_000);
  // Sent in one go: with no link delay the hub delivers both in this turn's microtasks, so the second
  // reaches the node while the first's file is still being written on a libuv thread. Two placements
  // (the same one twice would share one answer: see the vault's messages in hand).
  const first = storeAt(engine, holder, bytes, 0);
  const second = storeAt(engine, holder, bytes, 1);
  const hex = toHex(first.chunk);
  const replies = await Promise.all([first.sent, second.sent]);
  assert.deepEqual(replies, [{ added: true }, { added: false }]);

  assert.deepEqual(holder.storageNode.usage(), { count: 1, bytes: bytes.length });
  assert.deepEqual(filesOnDisk(engine, holder), [`${hex.slice(0, 2)}/${hex}`]); // no second copy, no temp file left
  assert.ok(holder.storageNode.staged(first.chunk)!.equals(bytes));
  // The node's account heard of the chunk once: one report of one stored chunk, not two.
  assert.deepEqual(await account(engine, holder), { used: bytes.length, chunks: 1 });

  // A third store, after the fact, is the plain "already held" case and changes nothing.
  assert.deepEqual(await storeAt(engine, holder, bytes).sent, { added: false });
  assert.deepEqual(holder.storageNode.usage(), { count: 1, bytes: bytes.length });
  assert.deepEqual(await account(engine, holder), { used: bytes.length, chunks: 1 });
});

test('two chunks racing for the last free space: exactly one is stored, the other refused with no-space', async () => {
  const engine = await startEngine(8);
  const holder = engine.network.running()[0]!;
  const small = randomBytes(150_000);
  const large = randomBytes(200_000);
  // Room for either chunk, not both.
  const donated = 300_000;
  await engine.network.setDonated(holder.id, donated);
  assert.equal(holder.storageNode.donated, donated);

  // Both reach the node before either file is written (see the test above).
  const stores = [storeAt(engine, holder, small), storeAt(engine, holder, large)];
  const outcomes = await Promise.allSettled(stores.map((s) => s.sent));
  const usage = holder.storageNode.usage();
  assert.ok(usage.bytes <= donated, `${usage.bytes} bytes held of ${donated} donated`);

  const accepted = outcomes.flatMap((o, i) => (o.status === 'fulfilled' ? [i] : []));
  assert.equal(accepted.length, 1, `outcomes: ${outcomes.map((o) => o.status).join(', ')}`);
  const [won] = accepted as [number];
  const lost = 1 - won;
  assert.deepEqual((outcomes[won] as PromiseFulfilledResult<unknown>).value, { added: true });
  const refusal = (outcomes[lost] as PromiseRejectedResult).reason;
  assert.ok(isSafeVaultError(refusal) && refusal.code === 'no-space', String(refusal));

  const wonBytes = [small, large][won]!;
  const wonHex = toHex(stores[won]!.chunk);
  assert.deepEqual(usage, { count: 1, bytes: wonBytes.length });
  assert.deepEqual(filesOnDisk(engine, holder), [`${wonHex.slice(0, 2)}/${wonHex}`]); // the refused chunk left no file, not even a temp one
  assert.deepEqual(await account(engine, holder), { used: wonBytes.length, chunks: 1 });

  // The space really is taken: the loser sent again on its own is still refused.
  await assert.rejects(storeAt(engine, holder, [small, large][lost]!).sent, (e) => isSafeVaultError(e) && e.code === 'no-space');
  assert.deepEqual(holder.storageNode.usage(), { count: 1, bytes: wonBytes.length });
});

test('a store judged just as another write completes sees its room as taken: never over the donation, never written twice', async () => {
  const engine = await startEngine(8);
  const holder = engine.network.running()[0]!;
  const donated = 300_000;
  await engine.network.setDonated(holder.id, donated);
  const first = randomBytes(150_000);
  const other = randomBytes(200_000);
  const store = (bytes: Buffer) => {
    const chunk = sha256(bytes);
    return holder.storageNode.onStore({ type: 'node.store', chunk, bytes, copy: false, base: 0 });
  };
  /** What each store tried in the microtasks after the first file's rename: judged at once ('taken' or a refusal's code), or its outcome. */
  const outcomes: Promise<string>[] = [];
  const attempt = (bytes: Buffer): Promise<string> => {
    try {
      const reply = store(bytes);
      return Promise.resolve(reply).then((r) => (r.added ? 'added' : 'held'), (e: { code?: ErrorCode }) => `${e.code}`);
    } catch (e) {
      return Promise.resolve(`${(e as { code?: ErrorCode }).code}`);
    }
  };
  // The first file's rename is the end of its write. From the moment it completes, each of the next
  // microtasks judges another store, as a message delivered in that same turn would be: one of them
  // lands between any two steps of the first store's completion.
  const rename = fsPromises.rename;
  let armed = true;
  let ticks: Promise<void> | undefined;
  fsPromises.rename = (async (...args: Parameters<typeof rename>) => {
    await rename(...args);
    if (!armed) return;
    armed = false;
    ticks = Promise.resolve();
    for (let i = 0; i < 12; i++) {
      ticks = ticks.then(() => {
        outcomes.push(attempt(i % 2 ? first : other));
      });
    }
  }) as typeof rename;
  syncBuiltinESMExports();
  try {
    assert.deepEqual(await store(first), { added: true });
  } finally {
    fsPromises.rename = rename;
    syncBuiltinESMExports();
  }
  assert.ok(ticks, 'the write went through fs/promises rename');
  // Every tick has run, then every store one started has finished.
  await ticks;
  const seen = await Promise.all(outcomes);
  assert.equal(seen.length, 12);
  // The other chunk never fits next to the first; the first is written and counted once.
  assert.deepEqual(seen.filter((_, i) => i % 2 === 0), Array(6).fill('no-space'));
  assert.deepEqual(seen.filter((_, i) => i % 2 === 1), Array(6).fill('held'));
  assert.deepEqual(holder.storageNode.usage(), { count: 1, bytes: first.length });
  const hex = toHex(sha256(first));
  assert.deepEqual(filesOnDisk(engine, holder), [`${hex.slice(0, 2)}/${hex}`]);
  assert.deepEqual(await account(engine, holder), { used: first.length, chunks: 1 });
});

test("a repair's copy is fetched by the new holder straight from the holders named, and checked: one serving other bytes is passed over; with none intact, nothing is stored", async () => {
  const engine = await startEngine(8);
  const [good, corrupt, fresh, other, empty] = engine.network.running();
  const bytes = randomBytes(100_000);
  const { chunk, sent } = storeAt(engine, good!, bytes);
  await sent;
  await storeAt(engine, corrupt!, bytes).sent;
  const onDisk = corrupt!.storageNode.pathOf(chunk);
  writeFileSync(onDisk, Buffer.alloc(bytes.length, 7)); // the same size, other bytes
  const manager = engine.network.closest(chunk, 3).find((name) => ![fresh!.name, other!.name].some((v) => v.equals(name)))!;
  const repair = (to: Vault, from: Name[]) => engine.network.impersonate(manager).request(to.name, { type: 'node.store', chunk, from, copy: true, base: 1 });

  // The vault that does not hold it and the corrupt copy are passed over; the good holder's bytes are stored.
  assert.deepEqual(await repair(fresh!, [empty!.name, corrupt!.name, good!.name]), { added: true });
  assert.ok(readFileSync(fresh!.storageNode.pathOf(chunk)).equals(bytes));
  assert.deepEqual(fresh!.storageNode.usage(), { count: 1, bytes: bytes.length });
  // No holder named serves it intact: refused, and nothing is stored.
  await assert.rejects(repair(other!, [empty!.name, corrupt!.name]), (e: unknown) => isSafeVaultError(e) && e.code === 'unavailable' && /served its bytes intact/.test(e.message));
  assert.deepEqual(other!.storageNode.usage(), { count: 0, bytes: 0 });
  assert.deepEqual(filesOnDisk(engine, other!), []);
});
