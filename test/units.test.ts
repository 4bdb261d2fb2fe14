/** Units for the rules the personas are built on: names, quorum, signed requests, compact records. */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { test } from 'node:test';
import { signRequest, verifyRequest } from '../electron/engine/clientRequest.ts';
import { REQUEST_WINDOW_MS } from '../electron/engine/constants.ts';
import { openDatabase } from '../electron/engine/db.ts';
import { isSafeVaultError } from '../electron/api/errors.ts';
import { quorumOf } from '../electron/engine/group.ts';
import { createIdentity, loadIdentity, verifySignature } from '../electron/engine/identity.ts';
import { KeyedLock } from '../electron/engine/keyedLock.ts';
import { closest, compareDistance, sha256 } from '../electron/engine/names.ts';
import { DataManagerRecords } from '../electron/engine/personas/dataManagerRecords.ts';
import { QuorumCollector } from '../electron/engine/quorum.ts';
import { tempDir } from './helpers.ts';

const name = (first: number) => Buffer.alloc(32, 0).fill(first, 0, 1);

test('XOR closeness: closest() agrees with sorting by distance and honours exclude', () => {
  const target = randomBytes(32);
  const names = Array.from({ length: 50 }, () => randomBytes(32));
  const sorted = [...names].sort((a, b) => compareDistance(target, a, b));
  assert.deepEqual(closest(target, names, 4), sorted.slice(0, 4));
  assert.deepEqual(closest(target, names, 4, sorted[0]), sorted.slice(1, 5));
  assert.deepEqual(closest(target, names.slice(0, 2), 4).length, 2);
  assert.ok(compareDistance(name(0), name(1), name(2)) < 0);
  assert.ok(compareDistance(name(3), name(2), name(1)) < 0); // 3^2=1 < 3^1=2
});

test('quorum: 3 of 4, or a majority of a smaller group', () => {
  assert.deepEqual([1, 2, 3, 4, 5].map(quorumOf), [1, 2, 2, 3, 3]);
});

test('QuorumCollector acts once, on the threshold-th distinct sender, and answers late copies', async () => {
  const quorum = new QuorumCollector(1000);
  let acted = 0;
  const act = async () => ++acted;
  const copies = [quorum.submit('m', 'a', 3, act), quorum.submit('m', 'a', 3, act), quorum.submit('m', 'b', 3, act)];
  await new Promise((r) => setTimeout(r, 10));
  assert.equal(acted, 0, 'acted without a quorum (a repeated sender counted twice)');
  copies.push(quorum.submit('m', 'c', 3, act), quorum.submit('m', 'd', 3, act));
  assert.deepEqual(await Promise.all(copies), [1, 1, 1, 1, 1]);
  // The same sender again after the round acted: a new operation.
  const again = [quorum.submit('m', 'a', 3, act), quorum.submit('m', 'b', 3, act), quorum.submit('m', 'c', 3, act)];
  assert.deepEqual(await Promise.all(again), [2, 2, 2]);
  // Copies with different content never add up; without a quorum the round times out.
  const short = new QuorumCollector(30);
  const unavailable = (e: unknown) => isSafeVaultError(e) && e.code === 'unavailable';
  await Promise.all([
    assert.rejects(short.submit('x1', 'a', 2, act), unavailable),
    assert.rejects(short.submit('x2', 'b', 2, act), unavailable),
  ]);
  assert.equal(acted, 2);
});

test('KeyedLock serialises work per key but not across keys', async () => {
  const lock = new KeyedLock();
  const order: string[] = [];
  const slow = (tag: string, ms: number) => async () => {
    order.push(`${tag}+`);
    await new Promise((r) => setTimeout(r, ms));
    order.push(`${tag}-`);
  };
  await Promise.all([lock.run('k', slow('a', 20)), lock.run('k', slow('b', 1)), lock.run('other', slow('c', 1))]);
  assert.ok(order.indexOf('a-') < order.indexOf('b+'), order.join(' '));
  assert.ok(order.indexOf('c+') < order.indexOf('a-'), order.join(' '));
});

test('identities and signed requests', () => {
  const alice = createIdentity();
  assert.ok(loadIdentity(alice.secret).name.equals(alice.name));
  const chunk = sha256(Buffer.from('x'));
  const request = signRequest(alice, 'delete', chunk, 0);
  const decoded = verifyRequest(request);
  assert.equal(decoded.op, 'delete');
  assert.ok(decoded.client.equals(alice.name) && decoded.chunk.equals(chunk));
  assert.ok(!verifySignature(alice.publicKey, Buffer.from('other'), request.signature));
  assert.ok(!verifySignature(Buffer.alloc(3), request.payload, request.signature));
  assert.throws(() => verifyRequest(request, Date.now() + 2 * REQUEST_WINDOW_MS), (e) => isSafeVaultError(e) && e.code === 'bad-request');
  assert.throws(() => verifyRequest({ ...request, payload: request.payload.subarray(1) }), (e) => isSafeVaultError(e) && e.code === 'bad-request');
  const tampered = Buffer.from(request.payload);
  tampered[40]! ^= 1;
  assert.throws(() => verifyRequest({ ...request, payload: tampered }), (e) => isSafeVaultError(e) && e.code === 'bad-signature');
});

test('data_manager records: ordered holders, holder index, key collisions refused, persisted', () => {
  const path = join(tempDir(), 'dm.sqlite');
  let db = openDatabase(path);
  let records = new DataManagerRecords(db);
  const vaults = Array.from({ length: 6 }, () => randomBytes(32));
  const chunks = Array.from({ length: 300 }, () => randomBytes(32));
  chunks.forEach((chunk, i) => records.put(chunk, { subscribers: 1, size: 100 + i, holders: [0, 1, 2, 3].map((k) => vaults[(i + k) % 6]!) }));
  const heldBy0 = chunks.filter((_, i) => [0, 1, 2, 3].some((k) => (i + k) % 6 === 0));
  assert.deepEqual(records.chunksHeldBy(vaults[0]!).map((c) => c.toString('hex')).sort(), heldBy0.map((c) => c.toString('hex')).sort());

  // Reorder and replace holders: the index follows.
  const c = chunks[0]!;
  records.put(c, { subscribers: 2, size: 100, holders: [vaults[5]!, vaults[0]!, vaults[1]!] });
  assert.deepEqual(records.get(c), { subscribers: 2, size: 100, holders: [vaults[5]!, vaults[0]!, vaults[1]!] });
  assert.ok(records.chunksHeldBy(vaults[5]!).some((x) => x.equals(c)));
  assert.ok(!records.chunksHeldBy(vaults[2]!).some((x) => x.equals(c)));

  // A different chunk sharing the 8-byte key is refused, not mixed in.
  const twin = Buffer.concat([c.subarray(0, 8), randomBytes(24)]);
  assert.throws(() => records.put(twin, { subscribers: 1, size: 1, holders: [] }), (e) => isSafeVaultError(e) && e.code === 'conflict');
  assert.equal(records.get(twin), undefined);

  records.delete(chunks[1]!);
  assert.equal(records.get(chunks[1]!), undefined);
  assert.ok(!records.chunksHeldBy(vaults[1]!).some((x) => x.equals(chunks[1]!)));
  db.close();

  db = openDatabase(path);
  records = new DataManagerRecords(db);
  assert.equal(records.count(), 299);
  assert.deepEqual(records.get(c)!.holders, [vaults[5]!, vaults[0]!, vaults[1]!]);
  assert.equal([...records.all()].length, 299);
  db.close();
});
