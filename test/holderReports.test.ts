/** A data_manager's reports of a holder pruned or lost reach the node's managers however long they stay unreachable. */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { SafeVaultError } from '../electron/api/errors.ts';
import { GROUP_SIZE, MAX_HOLDERS } from '../electron/engine/constants.ts';
import { toHex } from '../electron/engine/names.ts';
import { virtualNetwork } from './helpers.ts';

/** A data_manager record of one subscriber on `holders`. */
function recordValue(holders: Buffer[]): Buffer {
  const head = Buffer.alloc(12);
  head.writeUInt32BE(1, 0);
  head.writeUInt32BE(1000, 4);
  head.writeUInt32BE(holders.length, 8);
  return Buffer.concat([head, ...holders]);
}

test("a pruned holder's rank goes down once, even when its managers cannot be reached for a while", async () => {
  const { clock, network, close } = await virtualNetwork(5, 12);
  const chunk = randomBytes(32);
  const holders = network.closest(chunk, 12).slice(0, MAX_HOLDERS + 1);
  for (const member of network.closest(chunk, GROUP_SIZE)) {
    const vault = network.vault(toHex(member))!;
    vault.replicas.install(vault.dataManager, chunk, { version: 1, value: recordValue(holders), ops: [] });
  }
  // The bottom holder is pruned; its managers refuse every report for longer than one attempt lasts.
  const pruned = holders.at(-1)!;
  let reachable = false;
  for (const manager of network.closest(pruned, GROUP_SIZE + 2).filter((m) => !m.equals(pruned))) {
    const vault = network.vault(toHex(manager))!;
    const receive = vault.receive.bind(vault);
    vault.receive = (from, message) =>
      !reachable && message.type === 'snm.report' ? Promise.reject(new SafeVaultError('unavailable', 'lost on the way')) : receive(from, message);
  }
  const leader = network.vault(toHex(network.closest(chunk, 1)[0]!))!;
  await clock.drive(leader.dataManager.review(chunk));
  assert.equal((await clock.drive(network.chunkRecord(chunk)))!.holders.length, MAX_HOLDERS);
  await clock.pass(30_000);
  assert.equal((await clock.drive(network.info(toHex(pruned)))).rank, 0, 'no report got through yet');
  reachable = true;
  await clock.pass(120_000);
  assert.equal((await clock.drive(network.info(toHex(pruned)))).rank, -1);
  close();
});
