/**
 * Soak test, run with `npm run soak` (not part of `npm test`: see the README's known limits).
 * Concurrent puts and deletes by several clients while vaults are stopped, killed and restarted;
 * afterwards the network must agree with what every client was told.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { test } from 'node:test';
import { MIN_HOLDERS } from '../../electron/engine/constants.ts';
import { isSafeVaultError } from '../../electron/api/errors.ts';
import { Groups } from '../../electron/engine/group.ts';
import { createIdentity } from '../../electron/engine/identity.ts';
import { sha256, toHex } from '../../electron/engine/names.ts';
import { StorageClient } from '../../electron/engine/client/storageClient.ts';
import { startEngine } from '../helpers.ts';

test('random concurrent stores and deletes under churn keep every invariant', { timeout: 120_000 }, async () => {
  const engine = await startEngine(14);
  const net = engine.network.net;
  const clients = Array.from({ length: 4 }, (_, i) => {
    const identity = createIdentity();
    const transport = net.transportFor(identity.name);
    return new StorageClient(`c${i}`, identity, { groups: new Groups(net, transport), routing: net, transport, events: { emit: () => undefined } as never });
  });
  const chunks = Array.from({ length: 5 }, () => randomBytes(2000 + Math.floor(Math.random() * 3000)));
  const names = chunks.map((c) => sha256(c));
  // What each client was told its reference count is; NaN once an answer was an error (outcome unknown).
  const told = clients.map(() => names.map(() => 0));
  const wrongRefusals: string[] = [];

  const operate = async () => {
    const ci = Math.floor(Math.random() * clients.length);
    const ki = Math.floor(Math.random() * chunks.length);
    const row = told[ci]!;
    if (Math.random() < 0.55) {
      await clients[ci]!.putChunk(chunks[ki]!).then((r) => (row[ki] = r.refcount), () => (row[ki] = NaN));
    } else {
      await clients[ci]!.deleteChunk(names[ki]!).then(
        (r) => (row[ki] = r.refcount),
        (e) => {
          if (!isSafeVaultError(e) || e.code !== 'non-owner') row[ki] = NaN;
          else if (row[ki]! > 0) wrongRefusals.push(`c${ci} refused as non-owner of chunk ${ki} with refcount ${row[ki]}`);
        },
      );
    }
  };

  let done = false;
  const churn = (async () => {
    const away: string[] = [];
    while (!done) {
      await new Promise((r) => setTimeout(r, 30 + Math.random() * 60));
      const running = engine.network.running();
      if (away.length > 0 && (Math.random() < 0.5 || running.length <= 10)) await engine.startVault({ id: away.splice(Math.floor(Math.random() * away.length), 1)[0]! });
      else if (running.length > 10) {
        const { id } = running[Math.floor(Math.random() * running.length)]!;
        away.push(id);
        await (Math.random() < 0.5 ? engine.stopVault({ id }) : engine.killVault({ id }));
      }
    }
  })();
  await Promise.all(Array.from({ length: 8 }, async () => {
    for (let i = 0; i < 15; i++) await operate();
  }));
  done = true;
  await churn;
  await engine.network.settled();

  assert.deepEqual(wrongRefusals, []);
  for (let ki = 0; ki < names.length; ki++) {
    const name = names[ki]!;
    let owners = 0;
    for (let ci = 0; ci < clients.length; ci++) {
      const refcount = await clients[ci]!.refcount(name);
      if (!Number.isNaN(told[ci]![ki])) assert.equal(refcount, told[ci]![ki], `client c${ci}, chunk ${ki}: told ${told[ci]![ki]}, network says ${refcount}`);
      if (refcount > 0) owners++;
    }
    const record = await engine.network.chunkRecord(name);
    const onDisk = engine.network.running().filter((v) => existsSync(v.storageNode.pathOf(name))).map((v) => v.id);
    if (!record) {
      assert.equal(owners, 0, `chunk ${ki} has owners but no record`);
      assert.deepEqual(onDisk, [], `chunk ${ki} has no record but bytes on disk`);
      continue;
    }
    assert.equal(record.subscribers, owners, `chunk ${ki}: ${record.subscribers} subscribers, ${owners} owners`);
    const online = record.holders.filter((h) => net.isOnline(h)).map(toHex);
    assert.ok(online.length >= MIN_HOLDERS, `chunk ${ki}: ${online.length} online holders`);
    assert.deepEqual([...onDisk].sort(), [...online].sort(), `chunk ${ki}: bytes on disk differ from the online holders`);
  }
});
