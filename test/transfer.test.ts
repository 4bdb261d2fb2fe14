/**
 * Account transfer at a membership change examines only the records whose close group can have
 * changed (a few name ranges around the vault that came or went, read through the tables' indexes),
 * and still hands every one of them to the new member.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { GROUP_SIZE } from '../electron/engine/constants.ts';
import { NEAR_SLACK } from '../electron/engine/group.ts';
import { closest, fromHex, inRange, rangesNear, toHex, type Name } from '../electron/engine/names.ts';
import type { LocalNetwork } from '../electron/engine/network.ts';
import type { Vault } from '../electron/engine/vault.ts';
import { SafeVaultError } from '../electron/api/errors.ts';
import { startEngine, virtualNetwork } from './helpers.ts';

const RECORDS = 3000;
const has = (names: Name[], name: Name) => names.some((n) => n.equals(name));

/** A data_manager record value: subscribers, size, no holders (the churn handling has nothing to review). */
function recordValue(size: number): Buffer {
  const value = Buffer.alloc(12);
  value.writeUInt32BE(1, 0);
  value.writeUInt32BE(size, 4);
  return value;
}

test('rangesNear covers every target whose group can include the vault, and little else', () => {
  const members = Array.from({ length: 64 }, () => randomBytes(32));
  const vault = members[0]!;
  const ranges = rangesNear(vault, members, GROUP_SIZE + NEAR_SLACK);
  let covered = 0;
  for (let i = 0; i < 5000; i++) {
    const target = randomBytes(32);
    const inside = ranges.some((r) => inRange(target, r));
    if (inside) covered++;
    // Also with one member left out, as a node's own managers are chosen.
    for (const exclude of [undefined, members[1]!]) {
      if (has(closest(target, members, GROUP_SIZE + NEAR_SLACK, exclude), vault)) assert.ok(inside, 'a target whose group includes the vault is in a range');
    }
  }
  // Only targets whose 7 closest include the vault (6, and one more for a left-out member): about 7/64 of them.
  assert.ok(covered <= 5000 / 3, `the ranges hold ${covered} of 5000 random targets`);
});

test('churn: each vault examines only the records in the ranges that changed, and every record reaches its new members', async () => {
  const engine = await startEngine(32);
  const network = engine.network;
  const online = network.hub.online();
  // Records spread over the name space, each on its group's members, as the network would hold them.
  const names = Array.from({ length: RECORDS }, () => randomBytes(32));
  for (const name of names) {
    for (const member of closest(name, online, GROUP_SIZE)) {
      const vault = network.vault(member.toString('hex'))!;
      vault.replicas.install(vault.dataManager, name, { version: 1, value: recordValue(1000), ops: [] });
    }
  }
  const held = RECORDS * GROUP_SIZE;

  /**
   * After `vault` came or went (`members`: the view it was in), each vault examined every record
   * whose group (with slack) changed, and no record whose 7 closest do not include `vault`
   * (`holding`: the membership its records follow), besides at most one node account per vault.
   */
  const checkWork = (vault: Name, members: Name[], holding: Name[], what: string) => {
    let examined = 0;
    for (const v of network.running()) {
      const mine = names.filter((name) => has(closest(name, holding, GROUP_SIZE), v.name));
      const changed = mine.filter((name) => has(closest(name, members, GROUP_SIZE + NEAR_SLACK), vault));
      const near = mine.filter((name) => has(closest(name, members, GROUP_SIZE + NEAR_SLACK + 1), vault));
      const { examined: seen } = v.lastTransfer;
      assert.ok(seen >= changed.length, `${what}: a vault examined ${seen} records, fewer than the ${changed.length} whose group changed`);
      assert.ok(seen <= near.length + members.length, `${what}: a vault examined ${seen} records, more than the ${near.length} near the change`);
      examined += seen;
    }
    // A scan examines every record held; with 32 vaults the ranges hold about 7/32 of them.
    assert.ok(examined < held / 2, `${what}: ${examined} of ${held} records examined in all: ranges, not a scan`);
  };
  const holdsEveryRecordOfItsGroups = (vault: Name, members: Name[]) => {
    const v = network.vault(vault.toString('hex'))!;
    const expected = names.filter((name) => has(closest(name, members, GROUP_SIZE), vault));
    assert.ok(expected.length > 0);
    for (const name of expected) assert.ok(v.dataManager.chunks.get(name), 'a new member holds every record of its groups');
  };

  const leaving = online[5]!;
  const before = [...online];
  await network.stopVault(leaving.toString('hex'));
  await network.settled();
  const afterLeave = network.hub.online();
  checkWork(leaving, before, before, 'a vault left');
  // Every vault that took the leaving vault's place in a group has that group's records.
  for (const v of afterLeave) holdsEveryRecordOfItsGroups(v, afterLeave);

  const joined = fromHex((await network.add()).id);
  await network.settled();
  const afterJoin = network.hub.online();
  checkWork(joined, afterJoin, afterLeave, 'a vault joined');
  holdsEveryRecordOfItsGroups(joined, afterJoin);
});

/** Makes `vault` refuse rec.transfer as if each were lost on the way, until the returned function is called. */
function loseTransfersTo(vault: Vault): () => void {
  const receive = vault.receive.bind(vault);
  let losing = true;
  vault.receive = (from, message) =>
    losing && message.type === 'rec.transfer' ? Promise.reject(new SafeVaultError('unavailable', 'lost on the way')) : receive(from, message);
  return () => (losing = false);
}

/** `names` as data_manager records on the members of their groups in `network`, as a network would hold them. */
function holdRecords(network: LocalNetwork, names: Name[]): void {
  for (const name of names) {
    for (const member of network.closest(name, GROUP_SIZE)) {
      const vault = network.vault(toHex(member))!;
      vault.replicas.install(vault.dataManager, name, { version: 1, value: recordValue(1000), ops: [] });
    }
  }
}

test('a transfer a new member did not acknowledge is sent again until it is', async () => {
  const { clock, network, close } = await virtualNetwork(11, 10);
  const names = Array.from({ length: 400 }, () => randomBytes(32));
  holdRecords(network, names);
  // The vault joins (synchronously up to its view change), and every transfer to it is lost for a while.
  const joining = network.add();
  const newcomer = network.running().at(-1)!;
  const stopLosing = loseTransfersTo(newcomer);
  await clock.drive(joining);
  const online = network.hub.online();
  const owed = names.filter((name) => has(closest(name, online, GROUP_SIZE), newcomer.name));
  assert.ok(owed.length > 0);
  assert.ok(owed.every((name) => !newcomer.dataManager.chunks.get(name)), 'nothing reached the new member yet');
  await clock.pass(20_000);
  stopLosing();
  await clock.pass(60_000);
  for (const name of owed) assert.ok(newcomer.dataManager.chunks.get(name), 'the new member holds every record of its groups');
  close();
});

test('a member pushed out of a group keeps a record until the new member it handed it to confirmed', async () => {
  const { clock, network, close } = await virtualNetwork(12, 12);
  const key = randomBytes(32);
  // The four vaults closest to the record go, so the next four hold it; then the four come back one by one.
  const [j1, j2, j3, j4, m1, m2, m3] = network.closest(key, 12);
  for (const j of [j1, j2, j3, j4]) await clock.drive(network.stopVault(toHex(j!)));
  holdRecords(network, [key]);
  const third = network.vault(toHex(m3!))!;
  // j1 loses every transfer: m1, m2 and m3 handed it the record when it came back, none confirmed.
  const returning = network.startVault(toHex(j1!));
  const stopLosing = loseTransfersTo(network.vault(toHex(j1!))!);
  await clock.drive(returning);
  for (const j of [j2, j3, j4]) await clock.drive(network.startVault(toHex(j!)));
  // m3 is now eighth closest, past the group and its slack: it would forget the record, but j1 has not confirmed it.
  assert.ok(!network.vault(toHex(j1!))!.dataManager.chunks.get(key));
  assert.ok(third.dataManager.chunks.get(key), 'm3 keeps the record while its handover is unconfirmed');
  stopLosing();
  await clock.pass(60_000);
  assert.ok(network.vault(toHex(j1!))!.dataManager.chunks.get(key), 'j1 got the record in the end');
  assert.ok(!third.dataManager.chunks.get(key), 'm3 forgot it once j1 confirmed');
  assert.ok(network.vault(toHex(m1!))!.dataManager.chunks.get(key) && network.vault(toHex(m2!))!.dataManager.chunks.get(key));
  close();
});
