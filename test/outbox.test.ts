/**
 * What a client's manager group passes down to a chunk's data_manager group (a first reference, a last
 * release) is an entry in the client's record, decided before it goes down: if the member handling the
 * request gives up or dies half way, the group's audit settles the entry, so the two groups agree.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { test } from 'node:test';
import { signRequest } from '../electron/engine/clientRequest.ts';
import { StorageClient } from '../electron/engine/client/storageClient.ts';
import { EventBus } from '../electron/engine/events.ts';
import { AUDIT_INTERVAL_MS, GROUP_SIZE, OP_DEADLINE_MS, SWEEP_RECHECK_MS } from '../electron/engine/constants.ts';
import type { LocalNetwork } from '../electron/engine/network.ts';
import { sha256, type Name } from '../electron/engine/names.ts';
import { seededIdentity } from './sim/simulation.ts';
import type { VirtualClock } from './sim/virtualClock.ts';
import { virtualNetwork } from './helpers.ts';

/** Past a request's deadline and two audits after it. */
const PAST_DEADLINE_MS = OP_DEADLINE_MS + 2 * AUDIT_INTERVAL_MS;

/** An owner and a chunk drawn from the clock's generator, so a test replays exactly. */
function setup(clock: VirtualClock, network: LocalNetwork) {
  const owner = seededIdentity(clock);
  const client = network.networkOf(owner.name);
  const bytes = clock.bytes(2000);
  const chunk = sha256(bytes);
  const managers = network.closest(owner.name, GROUP_SIZE);
  const put = (stagedAt: Name) => ({ type: 'client.put' as const, request: signRequest(owner, 'put', chunk, bytes.length, clock), stagedAt });
  const stage = async () => {
    const stagedAt = network.closest(chunk, 1)[0]!;
    await clock.drive(client.request(stagedAt, { type: 'chunk.stage', chunk, bytes }));
    return stagedAt;
  };
  const refcounts = () => network.running().filter((v) => managers.some((m) => m.equals(v.name))).map((v) => v.storageClientManager.refcount(owner.name, chunk));
  return { owner, client, bytes, chunk, managers, put, stage, refcounts };
}

test('a first reference whose bytes never arrive is refused for good once its request expires, and the group forgets it', async () => {
  const { clock, network, close } = await virtualNetwork(11, 10, 3000);
  const { client, chunk, managers, put, stage, refcounts } = setup(clock, network);
  // Put without uploading first: the group decides the reference, the data managers find no bytes.
  await assert.rejects(clock.drive(client.request(managers[0]!, put(network.closest(chunk, 1)[0]!))), /not-found|was not uploaded/);
  assert.deepEqual(refcounts(), [1, 1, 1, 1], 'the reference stays pending while the client may still retry');
  assert.equal(await clock.drive(network.chunkRecord(chunk)), null);

  await clock.pass(PAST_DEADLINE_MS);
  assert.deepEqual(refcounts(), [0, 0, 0, 0], 'an expired first reference goes');
  assert.equal(await clock.drive(network.chunkRecord(chunk)), null);
  // A new request stores the chunk as if nothing had happened.
  const stored = await clock.drive(client.request(managers[1]!, put(await stage())));
  assert.deepEqual([stored.refcount, stored.subscribers, stored.holders.length], [1, 1, 4]);
  close();
});

test('a first reference whose manager dies before passing it down, and whose client never asks again, is refused by the group\'s audit once its deadline has passed: nobody was told it counted', async () => {
  const { clock, network, close } = await virtualNetwork(12, 10, 3000);
  const first = setup(clock, network);
  // Another owner stores the chunk first, so the second owner's reference needs no bytes to count.
  const other = seededIdentity(clock);
  const otherClient = network.networkOf(other.name);
  const stagedAt = await first.stage();
  await clock.drive(otherClient.request(network.closest(other.name, 1)[0]!, { type: 'client.put', request: signRequest(other, 'put', first.chunk, 2000, clock), stagedAt }));
  assert.equal((await clock.drive(network.chunkRecord(first.chunk)))?.subscribers, 1);

  // The first owner's put goes to one manager, which dies as soon as it has the group's decision.
  const handler = network.running().find((v) => v.name.equals(first.managers[0]!))!;
  void first.client.request(handler.name, first.put(stagedAt)).catch(() => undefined);
  await clock.drive(until(clock, () => handler.storageClientManager.refcount(first.owner.name, first.chunk) === 1));
  await clock.drive(network.killVault(handler.id));
  assert.equal((await clock.drive(network.chunkRecord(first.chunk)))?.subscribers, 1, 'not passed down yet');

  await clock.pass(PAST_DEADLINE_MS);
  assert.deepEqual(first.refcounts(), [0, 0, 0], 'the surviving managers drop the reference');
  assert.equal((await clock.drive(network.chunkRecord(first.chunk)))?.subscribers, 1, 'and the data managers never counted it, although the chunk is stored');
  close();
});

test("a last release whose manager dies before passing it down, and whose client never asks again, is refused once its deadline has passed: the reference comes back", async () => {
  const { clock, network, close } = await virtualNetwork(14, 10, 3000);
  const { owner, client, bytes, chunk, managers, put, stage, refcounts } = setup(clock, network);
  await clock.drive(client.request(managers[1]!, put(await stage())));
  assert.equal((await clock.drive(network.chunkRecord(chunk)))?.subscribers, 1);

  // The delete goes to one manager, which dies as soon as it has the group's decision.
  const handler = network.running().find((v) => v.name.equals(managers[0]!))!;
  const signedAt = clock.now();
  void client.request(handler.name, { type: 'client.delete', request: signRequest(owner, 'delete', chunk, 0, clock) }).catch(() => undefined);
  await clock.drive(until(clock, () => handler.storageClientManager.refcount(owner.name, chunk) === 0));
  await clock.drive(network.killVault(handler.id));

  // A millisecond past the deadline, before an audit settles the entry, the owner's next put finds it: the release is
  // refused, and the put counts on top of the reference given back.
  await clock.pass(signedAt + OP_DEADLINE_MS + 1 - clock.now());
  const deletesBefore = network.hub.stats().byType['dm.delete']?.messages ?? 0;
  const again = await clock.drive(new StorageClient('owner', owner, client, new EventBus()).putChunk(bytes));
  // The release is given back by a decision of its own, not folded into the put's (its members would refuse a count moving by two, and
  // the put would retry until the audit: 44 asks here). Each try of the put before that decision lands asks once: one or two
  // (none only if an audit, every 30 s, happened to settle it within the put's first milliseconds).
  const asks = (network.hub.stats().byType['dm.delete']?.messages ?? 0) - deletesBefore;
  assert.ok(asks <= 3, `the data managers were asked about the release ${asks} times`);
  assert.deepEqual([again.refcount, again.subscribers], [2, 1], 'the reply tells where the chunk is, not what the refused release said');
  assert.ok(again.holders.length >= 4, `holders: ${again.holders.length}`);
  await clock.pass(2 * AUDIT_INTERVAL_MS);
  assert.deepEqual(refcounts(), [2, 2, 2], 'the surviving managers gave the reference back');
  assert.equal((await clock.drive(network.chunkRecord(chunk)))?.subscribers, 1, 'and the data managers never counted the release');
  close();
});

test("a delete after a last release the data managers counted, whose entry its dead manager never cleared, is refused as non-owner at once, and the group forgets the record", async () => {
  const { clock, network, close } = await virtualNetwork(14, 10, 3000);
  const { owner, client, chunk, managers, put, stage, refcounts } = setup(clock, network);
  await clock.drive(client.request(managers[1]!, put(await stage())));
  // The release goes to one manager, which dies once the data managers have counted it, before it clears its entry.
  const handler = network.running().find((v) => v.name.equals(managers[0]!))!;
  void client.request(handler.name, { type: 'client.delete', request: signRequest(owner, 'delete', chunk, 0, clock) }).catch(() => undefined);
  // Counted: the record went with its last subscriber.
  const counted = () => network.running().every((v) => !v.dataManager.chunks.get(chunk));
  await clock.drive(until(clock, () => refcounts().includes(0) && counted()));
  await clock.drive(network.killVault(handler.id));
  // The owner deletes again at another manager: it settles the entry (counted), finds no reference, and that refusal is decided.
  const started = clock.now();
  await assert.rejects(
    clock.drive(client.request(managers[1]!, { type: 'client.delete', request: signRequest(owner, 'delete', chunk, 0, clock) })),
    (error: unknown) => error instanceof Error && /non-owner/.test(error.message),
  );
  assert.ok(clock.now() - started < 5000, `refused after ${clock.now() - started} ms`);
  await clock.pass(2 * AUDIT_INTERVAL_MS);
  assert.deepEqual(refcounts(), [0, 0, 0], 'no record left with the surviving managers');
  close();
});

test('copies placed for a first reference that was never decided are swept once the data managers refuse it', async () => {
  const { clock, network, close } = await virtualNetwork(13, 12, 3000);
  const { client, chunk, managers, put, stage, refcounts } = setup(clock, network);
  const stagedAt = await stage();
  // The data manager placing the first copies and the client manager handling the request both die mid-way.
  const [placer, handler] = [network.closest(chunk, 1)[0]!, managers[0]!].map((name) => network.running().find((v) => v.name.equals(name))!);
  void client.request(handler!.name, put(stagedAt)).catch(() => undefined);
  const onDisk = () => network.running().filter((v) => existsSync(v.storageNode.pathOf(chunk))).map((v) => v.id);
  await clock.drive(until(clock, () => onDisk().some((id) => id !== placer!.id)));
  await clock.drive(Promise.all([network.killVault(placer!.id), network.killVault(handler!.id)]));
  assert.ok(onDisk().length > 0, 'copies were placed');

  await clock.pass(PAST_DEADLINE_MS + SWEEP_RECHECK_MS);
  assert.ok(refcounts().length >= 2 && refcounts().every((r) => r === 0), `the surviving managers forgot the reference: ${refcounts()}`);
  assert.equal(await clock.drive(network.chunkRecord(chunk)), null);
  assert.deepEqual(onDisk(), [], 'no vault keeps bytes nobody owns');
  close();
});

/** Resolves once `condition` holds, checked every virtual millisecond. */
function until(clock: VirtualClock, condition: () => boolean): Promise<void> {
  return new Promise((resolve) => {
    const check = () => (condition() ? resolve() : clock.after(1, check));
    check();
  });
}
