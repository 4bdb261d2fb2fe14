/**
 * The data path, counted by the transport: a chunk's bytes cross between vaults only to reach its
 * holders (the client's one upload, then once per holder, not at all to a holder that has the
 * upload), quorum messages carry hashes only, get reads each chunk once, and a large put streams
 * through bounded memory. Counts and bytes, never times.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { MIN_HOLDERS } from '../electron/engine/constants.ts';
import type { WireStats } from '../electron/engine/transport.ts';
import { startEngine, tempDir, writeRandomFile } from './helpers.ts';

const MiB = 1024 * 1024;

/** Messages and bytes per type between two snapshots of the hub's counters. */
function delta(before: WireStats, after: WireStats): WireStats {
  const byType: WireStats['byType'] = {};
  for (const [type, { messages, bytes }] of Object.entries(after.byType)) {
    const was = before.byType[type] ?? { messages: 0, bytes: 0 };
    if (messages > was.messages) byType[type] = { messages: messages - was.messages, bytes: bytes - was.bytes };
  }
  return { messages: after.messages - before.messages, bytes: after.bytes - before.bytes, byType };
}

const count = (stats: WireStats, type: string) => stats.byType[type]?.messages ?? 0;

async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const part of createReadStream(path)) h.update(part as Buffer);
  return h.digest('hex');
}

test('a multi-MiB file: bytes travel once per holder, quorum messages carry hashes, get is byte-identical', async (t) => {
  const engine = await startEngine();
  const dir = tempDir();
  const src = writeRandomFile(dir, 'in.bin', 6 * MiB + 12345);
  const hub = engine.network.hub;

  const beforePut = hub.stats();
  const file = await engine.putFile({ as: 'ann', path: src });
  const put = delta(beforePut, hub.stats());
  const chunks = file.chunks.length;
  assert.equal(chunks, 7);
  // Random bytes don't deflate: each stored chunk is its plaintext plus the flag byte.
  const storedBytes = file.size + chunks;

  // One upload per chunk, one store order per holder, no fetch of the upload by another vault.
  assert.equal(count(put, 'chunk.stage'), chunks);
  assert.equal(count(put, 'node.store'), MIN_HOLDERS * chunks);
  assert.equal(count(put, 'stage.fetch'), 0);
  const bulk = new Set(['chunk.stage', 'node.store']);
  const stageBytes = put.byType['chunk.stage']!.bytes;
  assert.ok(stageBytes >= storedBytes && stageBytes < storedBytes * 1.01, `the upload carries each chunk once (${stageBytes} for ${storedBytes})`);
  // The vault holding the upload keeps it without being sent it again: at most one copy per other holder.
  assert.ok(put.byType['node.store']!.bytes < (MIN_HOLDERS - 1) * storedBytes * 1.01 + MIN_HOLDERS * chunks * 1024, 'node.store carries at most one copy per holder that lacks it');
  for (const [type, { messages, bytes }] of Object.entries(put.byType)) {
    // Everything else (quorum rounds, accounts, reports, replies) carries names and counts, not chunk bytes.
    if (!bulk.has(type)) assert.ok(bytes / messages < 8 * 1024, `${type}: ${bytes} bytes in ${messages} messages`);
  }
  const perStoredByte = put.bytes / storedBytes;
  t.diagnostic(`${put.messages / chunks} messages and ${perStoredByte.toFixed(2)} bytes between vaults per stored byte, per chunk`);
  assert.ok(perStoredByte <= 5, `bytes between vaults per stored byte: ${perStoredByte.toFixed(2)}`);

  const out = join(dir, 'out.bin');
  const beforeGet = hub.stats();
  await engine.getFile({ as: 'ann', id: file.id, out });
  const get = delta(beforeGet, hub.stats());
  assert.equal(await sha256File(out), await sha256File(src));
  // Each chunk's bytes come once, from its first holder; the record lookups are small.
  assert.equal(count(get, 'node.get'), chunks);
  assert.ok(get.bytes < storedBytes * 1.05, `get moved ${get.bytes} bytes for ${storedBytes}`);
});

test("a holder leaves: each repair copy's bytes cross once, from a holder straight to the new one, never through the data manager", async () => {
  const engine = await startEngine();
  const file = await engine.putFile({ as: 'ann', path: writeRandomFile(tempDir(), 'in.bin', 3 * MiB) });
  const storedBytes = file.size + file.chunks.length;
  const holdersOf = async (chunk: string) => (await engine.chunkInfo({ name: chunk })).holders.filter((h) => h.online).map((h) => h.vault);
  // The vault holding the most of the file's chunks leaves.
  const held = new Map<string, number>();
  for (const chunk of file.chunks) for (const vault of await holdersOf(chunk)) held.set(vault, (held.get(vault) ?? 0) + 1);
  const [leaving, copies] = [...held].sort((a, b) => b[1] - a[1])[0]!;
  const before = engine.network.hub.stats();
  await engine.stopVault({ id: leaving });
  await engine.network.settled();
  const repair = delta(before, engine.network.hub.stats());
  for (const chunk of file.chunks) assert.equal((await holdersOf(chunk)).length, MIN_HOLDERS);
  // One fetch per copy made (the bytes in its reply), and store orders that carry names only (alone, or several to one node together).
  assert.equal(count(repair, 'node.get'), copies);
  const copyBytes = repair.byType['node.get:reply']!.bytes;
  assert.ok(copyBytes > (storedBytes / file.chunks.length) * copies * 0.5, `the copies' bytes: ${copyBytes}`);
  const orders = ['node.store', 'node.storeMany'].map((type) => repair.byType[type] ?? { messages: 0, bytes: 0 });
  assert.ok(orders[0]!.messages + orders[1]!.messages <= copies);
  assert.ok(orders[0]!.bytes + orders[1]!.bytes < copies * 1024, `store orders: ${orders[0]!.bytes + orders[1]!.bytes} bytes`);
  assert.ok(repair.bytes < copyBytes * 1.1 + 64 * 1024, `the repair moved ${repair.bytes} bytes for ${copyBytes} of copies`);
});

test("a holder of many chunks leaves: a review batch's store orders to one new holder go as one node.storeMany, each copy still fetched once", async () => {
  // Seven vaults: once one leaves, every chunk's group is the same six, so each vault reviews its chunks in batches.
  const engine = await startEngine(7);
  const dir = tempDir();
  const src = writeRandomFile(dir, 'in.bin', 48 * MiB);
  const file = await engine.putFile({ as: 'ann', path: src });
  const holdersOf = async (chunk: string) => (await engine.chunkInfo({ name: chunk })).holders.filter((h) => h.online).map((h) => h.vault);
  const leaving = engine.network.running()[0]!.id;
  let copies = 0;
  for (const chunk of file.chunks) if ((await holdersOf(chunk)).includes(leaving)) copies++;
  const before = engine.network.hub.stats();
  await engine.stopVault({ id: leaving });
  await engine.network.settled();
  const repair = delta(before, engine.network.hub.stats());
  for (const chunk of file.chunks) assert.equal((await holdersOf(chunk)).length, MIN_HOLDERS);
  assert.equal(count(repair, 'node.get'), copies, 'one fetch per copy');
  assert.ok(count(repair, 'node.storeMany') > 0, 'orders went together');
  const storeMessages = count(repair, 'node.store') + count(repair, 'node.storeMany');
  // One order a message, as before, would be `copies` messages; a batch's orders share them (about four or five orders a message here).
  assert.ok(storeMessages * 2 <= copies, `${storeMessages} store messages for ${copies} copies`);
  const out = join(dir, 'out.bin');
  await engine.getFile({ as: 'ann', id: file.id, out });
  assert.equal(await sha256File(out), await sha256File(src));
});

test('a 384 MiB put streams: resident memory grows by less than the file, so it is never held whole', async (t) => {
  const engine = await startEngine();
  const dir = tempDir();
  const size = 384 * MiB;
  // Written a block at a time, so the test itself never holds the file either.
  const src = join(dir, 'big.bin');
  const fh = await open(src, 'w');
  for (let at = 0; at < size; at += 4 * MiB) await fh.write(randomBytes(4 * MiB));
  await fh.close();
  const expected = await sha256File(src);

  const baseline = process.memoryUsage().rss;
  let peak = baseline;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
  let file;
  try {
    file = await engine.putFile({ as: 'big', path: src });
  } finally {
    clearInterval(sampler);
  }
  peak = Math.max(peak, process.memoryUsage().rss);
  const growth = peak - baseline;
  t.diagnostic(`resident memory: ${(baseline / MiB).toFixed(0)} MiB before, ${(peak / MiB).toFixed(0)} MiB at the peak`);
  // Holding the file whole would take at least its size more. The chunks in flight, the vaults'
  // caches and garbage not yet collected also grow resident memory (about 220 MiB here, GC lag
  // included), so the file is made large enough for the difference to be clear.
  assert.ok(growth < size, `resident memory grew by ${(growth / MiB).toFixed(0)} MiB during a ${size / MiB} MiB put`);
  assert.equal(file.size, size);

  const out = join(dir, 'big.out');
  await engine.getFile({ as: 'big', id: file.id, out });
  assert.equal(await sha256File(out), expected);
});
