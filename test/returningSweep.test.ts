/**
 * A vault back from time away sweeps the bytes of a chunk deleted meanwhile, although it learns the
 * network one vault at a time (as over libp2p): it must not take what a partial view tells it for
 * the chunk's group's word, nor count a check that settled nothing as done for ten minutes.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { StorageClient } from '../electron/engine/client/storageClient.ts';
import { GROUP_SIZE, SWEEP_RECHECK_MS } from '../electron/engine/constants.ts';
import { openDatabase } from '../electron/engine/db.ts';
import { EventBus } from '../electron/engine/events.ts';
import { toHex } from '../electron/engine/names.ts';
import { LocalNetwork } from '../electron/engine/network.ts';
import { seededIdentity } from './sim/simulation.ts';
import { VirtualClock } from './sim/virtualClock.ts';
import { tempDir, vaultsHoldingOnDisk } from './helpers.ts';

/** Each seed is a different set of vault names and learning orders (1 and 8 failed on the sweep that took any answer as the group's). */
const SEEDS = [1, 2, 8];

/** A 12-vault network on a virtual clock with one chunk stored; `scenario` runs on it, and everything is closed after. */
async function withStoredChunk(seed: number, scenario: (on: { clock: VirtualClock; dir: string; network: LocalNetwork; client: StorageClient; name: Buffer }) => Promise<void>): Promise<void> {
  const clock = new VirtualClock(seed);
  const dir = tempDir();
  const db = openDatabase(join(dir, 'app.sqlite'));
  const network = new LocalNetwork(join(dir, 'vaults'), db, new EventBus(), { clock, newIdentity: () => seededIdentity(clock) });
  try {
    await clock.drive(network.start(12));
    const identity = seededIdentity(clock);
    const client = new StorageClient('c', identity, network.networkOf(identity.name), new EventBus());
    const { name } = await clock.drive(client.putChunk(clock.bytes(5000)));
    await scenario({ clock, dir, network, client, name });
  } finally {
    network.close();
    db.close();
  }
}

/** Two minutes of virtual time, far below the ten-minute recheck a check wrongly counted as done would wait for, until no vault has the bytes. */
async function untilSwept(clock: VirtualClock, dir: string, name: Buffer): Promise<void> {
  assert.ok(2 * 60_000 < SWEEP_RECHECK_MS);
  const deadline = clock.now() + 2 * 60_000;
  while (vaultsHoldingOnDisk(dir, toHex(name)).length > 0 && clock.now() < deadline) await clock.pass(1000);
}

for (const seed of SEEDS) {
  test(`seed ${seed}: a holder outside the group killed, its chunk deleted, back learning the network vault by vault: the bytes are swept`, () =>
    withStoredChunk(seed, async ({ clock, dir, network, client, name }) => {
      const holders = async () => (await clock.drive(network.chunkRecord(name)))!.holders.map(toHex);
      // A holder outside the chunk's group: a copy made while a holder was away, kept when it came back.
      const [first] = await holders();
      await clock.drive(network.killVault(first!));
      await clock.drive(network.startVault(first!));
      const group = network.closest(name, GROUP_SIZE).map(toHex);
      const outsider = (await holders()).find((h) => !group.includes(h));
      assert.ok(outsider, 'a holder outside the group');

      await clock.drive(network.killVault(outsider));
      assert.equal((await clock.drive(client.deleteChunk(name))).deleted, true);
      assert.deepEqual(vaultsHoldingOnDisk(dir, toHex(name)), [outsider], 'only the vault that was away still has the bytes');

      // It comes back knowing nobody, and meets the others one a second.
      network.hub.conditions = { ...network.hub.conditions, learnEachMs: 1000 };
      await clock.drive(network.startVault(outsider));
      await untilSwept(clock, dir, name);
      assert.deepEqual(vaultsHoldingOnDisk(dir, toHex(name)), [], 'the returning vault swept the deleted bytes');
      assert.equal(await clock.drive(network.chunkRecord(name)), null, 'the chunk stays deleted');
    }));
}

test('a vault cut off from the rest (its link down, still running) while its chunk is deleted sweeps the bytes when the link is back', () =>
  withStoredChunk(3, async ({ clock, dir, network, client, name }) => {
    const [holder] = (await clock.drive(network.chunkRecord(name)))!.holders;
    network.hub.cutOff(holder!);
    // The others see it go (failed pings), it sees them all go; then the chunk is deleted without it.
    await clock.pass(5000);
    assert.equal((await clock.drive(client.deleteChunk(name))).deleted, true);
    await clock.pass(60_000);
    assert.deepEqual(vaultsHoldingOnDisk(dir, toHex(name)), [toHex(holder!)], 'only the cut-off vault still has the bytes');

    network.hub.reconnect(holder!);
    await untilSwept(clock, dir, name);
    assert.deepEqual(vaultsHoldingOnDisk(dir, toHex(name)), [], 'the reconnected vault swept the deleted bytes, well before its ten-minute recheck');
    assert.equal(await clock.drive(network.chunkRecord(name)), null, 'the chunk stays deleted');
  }));
