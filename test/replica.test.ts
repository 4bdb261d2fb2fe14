/** One decision per record version (replica.ts): concurrent proposers, half-made decisions, operation ids, versioned adoption. */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { AUDIT_INTERVAL_MS, DECISION_DEADLINE_MS, GROUP_SIZE, OP_DEADLINE_MS, OP_MEMORY_MS, PROMISE_MEMORY_MS, UNFINISHED_DECISION_MS } from '../electron/engine/constants.ts';
import { sleep } from '../electron/engine/clock.ts';
import { openDatabase } from '../electron/engine/db.ts';
import { EventBus } from '../electron/engine/events.ts';
import { Groups } from '../electron/engine/group.ts';
import { LocalNetwork } from '../electron/engine/network.ts';
import { sha256, toHex } from '../electron/engine/names.ts';
import { canonical, decodeCanonical, type WireValue } from '../electron/engine/wire/codec.ts';
import { isSafeVaultError, SafeVaultError } from '../electron/api/errors.ts';
import type { Vault } from '../electron/engine/vault.ts';
import { VirtualClock } from './sim/virtualClock.ts';
import { clientManagerRow, tempDir, virtualNetwork } from './helpers.ts';

/** A reference-count record of a 9-byte chunk; `pending`: a first reference (see clientManagerRow). */
const row = (refcount: number, pending = false) => clientManagerRow(refcount, 9, pending);

async function group() {
  const { clock, network, dir, close } = await virtualNetwork(42, 8);
  const client = randomBytes(32);
  const key = Buffer.concat([client, randomBytes(32)]);
  const members = network.closest(client, GROUP_SIZE).map((m) => network.vault(toHex(m))!);
  const states = () => members.map((v) => v.replicas.state(v.storageClientManager, key));
  return { clock, network, dir, key, members, states, close };
}

/** One more reference, as a put does: the reply is the count before it. */
const decide = (vault: Vault, key: Buffer, op: string) =>
  vault.replicas.decide(vault.storageClientManager, key, sha256(Buffer.from(op)), async (current) => {
    const before = current ? current.readUInt32BE(0) : 0;
    return { value: row(before + 1, before === 0), reply: before };
  });

test('two members deciding at once: both operations land, one version each, and every member agrees', async () => {
  const g = await group();
  const [a, b] = g.members;
  const replies = await g.clock.drive(Promise.all([decide(a!, g.key, 'op-a'), decide(b!, g.key, 'op-b')]));
  // One went first and saw nothing; the other was decided on top of it and saw its count.
  assert.deepEqual(replies.sort(), [0, 1]);
  const last = row(2);
  await g.clock.pass(1000);
  const states = g.states();
  const agreed = states.filter((s) => s.version === 2);
  assert.ok(agreed.length >= 3, `a quorum holds version 2: ${states.map((s) => s.version)}`);
  for (const state of agreed) assert.ok(state.value!.equals(last));
  assert.equal(agreed[0]!.ops.length, 2, 'both operations are remembered with their replies');
  g.close();
});

test('a repeated operation gets its stored reply and changes nothing', async () => {
  const g = await group();
  const [a, , c] = g.members;
  assert.equal(await g.clock.drive(decide(a!, g.key, 'op-1')), 0);
  assert.equal(await g.clock.drive(decide(a!, g.key, 'op-2')), 1);
  // The same operation again, even from another member: the stored reply, no new version.
  assert.equal(await g.clock.drive(decide(c!, g.key, 'op-1')), 0);
  await g.clock.pass(1000);
  assert.ok(g.states().filter((s) => s.version === 2 && s.value!.equals(row(2))).length >= 3);
  g.close();
});

test('remembered operations kept a row each, as before replica tables version 4, are moved to one row per record at start, in order', async () => {
  const g = await group();
  const [a, b] = g.members;
  assert.equal(await g.clock.drive(decide(a!, g.key, 'op-1')), 0);
  assert.equal(await g.clock.drive(decide(a!, g.key, 'op-2')), 1);
  await g.clock.pass(1000);
  const remembered = b!.replicas.state(b!.storageClientManager, g.key).ops;
  assert.equal(remembered.length, 2);
  await g.clock.drive(g.network.killVault(b!.id));
  // The file as version 3 kept it: rec_op, a row per operation.
  const file = new Database(join(g.dir, 'vaults', b!.id, 'vault.sqlite'));
  const { at } = file.prepare('SELECT at FROM rec_ops WHERE key = ?').get(g.key) as { at: number };
  file.exec(`DROP TABLE rec_ops; UPDATE schema_version SET version = 3 WHERE owner = 'replica';
    CREATE TABLE rec_op (persona TEXT NOT NULL, key BLOB NOT NULL, op BLOB NOT NULL, reply BLOB NOT NULL, seq INTEGER NOT NULL, at INTEGER NOT NULL,
      PRIMARY KEY (persona, key, op)) WITHOUT ROWID, STRICT;`);
  const insert = file.prepare('INSERT INTO rec_op (persona, key, op, reply, seq, at) VALUES (?, ?, ?, ?, ?, ?)');
  remembered.forEach(({ op, reply }, seq) => insert.run('storage_client_manager', g.key, op, reply, seq, at));
  file.close();
  const [again] = await g.clock.drive(Promise.all([g.network.startVault(b!.id)]));
  const b2 = g.network.vault(again!.id)!;
  assert.deepEqual(b2.replicas.state(b2.storageClientManager, g.key).ops, remembered);
  assert.equal(countOnDisk(g.dir, b2, "SELECT count(*) FROM sqlite_master WHERE name = 'rec_op'"), 0, 'the old table is gone');
  // A repeated operation still gets its stored reply there.
  assert.equal(await g.clock.drive(decide(b2, g.key, 'op-1')), 0);
  g.close();
});

/** Rows `sql` counts for `key` in a vault's file, read as a new process would see it. */
function countOnDisk(dir: string, vault: Vault, sql: string, key?: Buffer): number {
  const file = new Database(join(dir, 'vaults', vault.id, 'vault.sqlite'), { readonly: true });
  try {
    return file.prepare(sql).pluck().get(...(key ? [key] : [])) as number;
  } finally {
    file.close();
  }
}

test("a record's remembered operations leave the vaults' disks once past their memory (the audit forgets them), and the record stays", async () => {
  const g = await group();
  const [a] = g.members;
  assert.equal(await g.clock.drive(decide(a!, g.key, 'op-1')), 0);
  await g.clock.pass(1000);
  const decided = g.states();
  const ops = () => g.members.map((v) => countOnDisk(g.dir, v, 'SELECT count(*) FROM rec_ops WHERE key = ?', g.key));
  assert.ok(ops().filter((n) => n === 1).length >= 3, `a quorum remembers the operation: ${ops()}`);
  await g.clock.pass(OP_MEMORY_MS + 2 * AUDIT_INTERVAL_MS);
  assert.deepEqual(ops(), [0, 0, 0, 0]);
  assert.deepEqual(g.states(), decided.map((s) => ({ ...s, ops: [] })), 'the records themselves are untouched');
  g.close();
});

test("the promises a decision leaves with its two witnesses are forgotten after PROMISE_MEMORY_MS; an accepted value is kept until it is finished", async () => {
  const g = await group();
  const [a, b] = g.members;
  const witnesses = g.network.closest(g.key.subarray(0, 32), GROUP_SIZE + 2).slice(GROUP_SIZE).map((w) => g.network.vault(toHex(w))!);
  assert.equal(await g.clock.drive(decide(a!, g.key, 'op-1')), 0);
  await g.clock.pass(1000);
  const decided = g.states();
  const slots = (vaults: Vault[], key = g.key) => vaults.map((v) => countOnDisk(g.dir, v, 'SELECT count(*) FROM rec_slot WHERE key = ?', key));
  assert.deepEqual(slots(witnesses), [1, 1], 'each witness keeps the promise it made');
  assert.deepEqual(slots(g.members), [0, 0, 0, 0], 'the members cleared theirs when they installed the state');
  // `b` also holds a value it accepted for a record of another group, which it cannot finish itself.
  let client = randomBytes(32);
  while (g.network.closest(client, GROUP_SIZE).some((m) => m.equals(b!.name))) client = randomBytes(32);
  const elsewhere = Buffer.concat([client, randomBytes(32)]);
  const ballot = Buffer.concat([Buffer.from([0, 0, 0, 1]), a!.name]);
  const value = { version: 1, value: row(1, true), ops: [{ op: sha256(Buffer.from('op-far')), reply: Buffer.from([0]) }] };
  assert.equal(b!.replicas.onPrepare({ type: 'rec.prepare', persona: 'storage_client_manager', key: elsewhere, slot: 1, ballot }).promised, true);
  assert.equal(b!.replicas.onAccept({ type: 'rec.accept', persona: 'storage_client_manager', key: elsewhere, slot: 1, ballot, value }).accepted, true);
  await g.clock.pass(PROMISE_MEMORY_MS + 2 * AUDIT_INTERVAL_MS);
  assert.deepEqual(slots(witnesses), [0, 0]);
  assert.deepEqual(slots([b!], elsewhere), [1], 'an accepted value is never forgotten by time');
  assert.deepEqual(g.states(), decided.map((s) => ({ ...s, ops: [] })));
  g.close();
});

test('a proposer whose change outlasts DECISION_DEADLINE_MS gives up before asking anyone to accept: nothing is decided', async () => {
  const g = await group();
  const [a] = g.members;
  const slow = a!.replicas.decide(a!.storageClientManager, g.key, sha256(Buffer.from('op-slow')), async () => {
    await sleep(g.clock, DECISION_DEADLINE_MS + 1000);
    return { value: row(1, true), reply: 0 };
  });
  await assert.rejects(g.clock.drive(slow), (error) => isSafeVaultError(error) && error.code === 'unavailable');
  const accepted = g.members.map((v) => countOnDisk(g.dir, v, 'SELECT count(*) FROM rec_slot WHERE key = ? AND value IS NOT NULL', g.key));
  assert.deepEqual(accepted, [0, 0, 0, 0], 'no member was asked to accept');
  assert.deepEqual(g.states().map((s) => s.version), [0, 0, 0, 0]);
  g.close();
});

test('a half-made decision is finished before the next one: nothing a quorum accepted is lost', async () => {
  const g = await group();
  const [a, b, c, d] = g.members;
  // `a` got a quorum to accept version 1 and died before committing it.
  const ballot = Buffer.concat([Buffer.from([0, 0, 0, 1]), a!.name]);
  const halfMade = { version: 1, value: row(1, true), ops: [{ op: sha256(Buffer.from('op-lost')), reply: Buffer.from([0]) }] };
  for (const v of [a!, b!, c!]) {
    assert.equal(v.replicas.onPrepare({ type: 'rec.prepare', persona: 'storage_client_manager', key: g.key, slot: 1, ballot }).promised, true);
    assert.equal(v.replicas.onAccept({ type: 'rec.accept', persona: 'storage_client_manager', key: g.key, slot: 1, ballot, value: halfMade }).accepted, true);
  }
  // `d` proposes its own operation: it must first finish version 1, then decide its own as version 2 on top of it.
  assert.equal(await g.clock.drive(decide(d!, g.key, 'op-d')), 1);
  const state = d!.replicas.state(d!.storageClientManager, g.key);
  assert.equal(state.version, 2);
  assert.deepEqual(state.ops.map((o) => o.op.toString('hex')), [sha256(Buffer.from('op-lost')), sha256(Buffer.from('op-d'))].map((h) => h.toString('hex')));
  g.close();
});

test('a decision whose commit never arrived is finished by the members that accepted it, with no new operation', async () => {
  const g = await group();
  const [a, b, c, d] = g.members;
  assert.equal(await g.clock.drive(decide(a!, g.key, 'op-put')), 0);
  await g.clock.pass(1000);
  // `a` had every member accept a delete (version 2), answered its client, and died before any commit went out.
  const ballot = Buffer.concat([Buffer.from([0xff, 0, 0, 0]), a!.name]);
  const deleted = { version: 2, value: null, ops: [...a!.replicas.state(a!.storageClientManager, g.key).ops, { op: sha256(Buffer.from('op-delete')), reply: Buffer.from([0]) }] };
  for (const v of [b!, c!, d!]) {
    assert.equal(v.replicas.onPrepare({ type: 'rec.prepare', persona: 'storage_client_manager', key: g.key, slot: 2, ballot }).promised, true);
    assert.equal(v.replicas.onAccept({ type: 'rec.accept', persona: 'storage_client_manager', key: g.key, slot: 2, ballot, value: deleted }).accepted, true);
  }
  await g.clock.drive(g.network.killVault(a!.id));
  const live = [b!, c!, d!];
  const versions = () => live.map((v) => v.replicas.state(v.storageClientManager, g.key).version);
  // Too soon: a proposer may still be on its way to committing it.
  assert.equal(await g.clock.drive(b!.replicas.finishUnfinished()), 0);
  assert.deepEqual(versions(), [1, 1, 1]);
  await g.clock.pass(UNFINISHED_DECISION_MS + 1000);
  assert.equal(await g.clock.drive(b!.replicas.finishUnfinished()), 1);
  await g.clock.pass(1000);
  // The delete is what the group shows now; nothing else was decided on the way.
  for (const v of live) assert.deepEqual(v.replicas.state(v.storageClientManager, g.key), { version: 2, value: null, ops: deleted.ops });
  assert.equal(await g.clock.drive(c!.replicas.finishUnfinished()), 0, 'nothing is left to finish');
  g.close();
});

test("members accept only a step their own record allows: a count moves by one, a record's size never", async () => {
  const g = await group();
  const [a, b] = g.members;
  assert.equal(await g.clock.drive(decide(a!, g.key, 'op-1')), 0);
  await g.clock.pass(1000);
  const accept = (value: Buffer | null) => {
    const ballot = Buffer.concat([Buffer.from([0xff, 0, 0, 0]), a!.name]);
    const op = { op: sha256(value ?? Buffer.alloc(0)), reply: Buffer.from([0]) };
    return () => b!.replicas.onAccept({ type: 'rec.accept', persona: 'storage_client_manager', key: g.key, slot: 2, ballot, value: { version: 2, value, ops: [op] } });
  };
  const refused = (e: unknown) => isSafeVaultError(e) && e.code === 'conflict';
  assert.throws(accept(row(5)), refused);
  assert.throws(accept(Buffer.from([0, 0, 0, 2, 0, 0, 0, 1])), refused, 'the size changed');
  assert.equal(b!.replicas.state(b!.storageClientManager, g.key).version, 1);
  assert.equal(accept(row(2))().accepted, true);
  assert.equal(accept(null)().accepted, true, 'a first reference the data managers refused removes the record');
  g.close();
});

test('members accept new holders only near the chunk in their own view: never a vault they have not seen, nor one far away', async () => {
  const clock = new VirtualClock(7);
  const dir = tempDir();
  const db = openDatabase(join(dir, 'app.sqlite'));
  const network = new LocalNetwork(join(dir, 'vaults'), db, new EventBus(), { clock });
  await clock.drive(network.start(40));
  const chunk = randomBytes(32);
  const member = network.vault(toHex(network.closest(chunk, 1)[0]!))!;
  const everyone = network.closest(chunk, 40);
  /** A data_manager record of one subscriber on `holders`, offered to the member as the chunk's first version. */
  const offer = (holders: Buffer[]) => () => {
    const head = Buffer.alloc(12);
    head.writeUInt32BE(1, 0);
    head.writeUInt32BE(9, 4);
    head.writeUInt32BE(holders.length, 8);
    const ballot = Buffer.concat([Buffer.from([0xff, 0, 0, 0]), member.name]);
    const value = { version: 1, value: Buffer.concat([head, ...holders]), ops: [{ op: randomBytes(32), reply: Buffer.from([0]) }] };
    return member.replicas.onAccept({ type: 'rec.accept', persona: 'data_manager', key: chunk, slot: 1, ballot, value });
  };
  const refused = (e: unknown) => isSafeVaultError(e) && e.code === 'conflict';
  assert.throws(offer([...everyone.slice(0, 3), randomBytes(32)]), refused, 'a vault this member never saw');
  assert.throws(offer([...everyone.slice(0, 3), everyone[39]!]), refused, 'the vault farthest from the chunk of 40');
  assert.equal(member.replicas.state(member.dataManager, chunk).version, 0);
  // A holder that has since gone still counts as seen: a decision accepted before it left can be finished.
  network.hub.vanish(everyone[3]!);
  await clock.pass(1000);
  assert.equal(offer(everyone.slice(0, 4))().accepted, true);
  network.close();
  db.close();
});

test('states only move forward: an older state is never adopted, and a deletion stays deleted', async () => {
  const g = await group();
  const [a] = g.members;
  const book = a!.storageClientManager;
  assert.equal(a!.replicas.install(book, g.key, { version: 3, value: row(3), ops: [] }), true);
  assert.equal(a!.replicas.install(book, g.key, { version: 2, value: row(2), ops: [] }), false);
  assert.equal(a!.replicas.install(book, g.key, { version: 4, value: null, ops: [] }), true);
  // A vault returning with the live record it had before the delete cannot bring it back.
  assert.equal(a!.replicas.install(book, g.key, { version: 3, value: row(3), ops: [] }), false);
  assert.deepEqual(a!.replicas.state(book, g.key), { version: 4, value: null, ops: [] });
  // A newer state brings a record back, and its tombstone goes: a transfer finds the record once, not a deletion beside it.
  assert.equal(a!.replicas.install(book, g.key, { version: 5, value: row(1), ops: [] }), true);
  const client = g.key.subarray(0, 32);
  const held = [...a!.replicas.records(book, { from: client, to: client }, (key) => key.equals(g.key) || undefined)];
  assert.deepEqual(held.map(({ state }) => state), [{ version: 5, value: row(1), ops: [] }]);
  g.close();
});

test("a node's report of a disk change stays queued until its managers acknowledge it: the account always catches up with the disk", async () => {
  const g = await group();
  const [node] = g.members;
  const bytes = randomBytes(1000);
  const chunk = sha256(bytes);
  const links = g.network.hub.conditions;
  // Every message is lost for longer than any delivery keeps trying.
  g.network.hub.conditions = { ...links, loss: 1 };
  node!.storageNode.onStore({ type: 'node.store', chunk, bytes, copy: false, base: 0 });
  await g.clock.pass(OP_DEADLINE_MS + 60_000);
  g.network.hub.conditions = links;
  const accounts = () => g.network.closest(node!.name, GROUP_SIZE + 1).filter((m) => !m.equals(node!.name)).map((m) => g.network.vault(toHex(m))!.storageNodeManager.account(node!.name)?.storedBytes ?? 0);
  assert.ok(accounts().every((bytes) => bytes === 0), 'nothing could be delivered yet');
  await g.clock.drive(node!.storageNode.deliverReports());
  await g.clock.pass(1000);
  assert.ok(accounts().filter((bytes) => bytes === 1000).length >= 3, `a quorum of managers counts the chunk: ${accounts()}`);
  g.close();
});


test('decisions on several records at once travel as rec.steps: fewer frames, each step answered on its own', async () => {
  const g = await group();
  const [a, b] = g.members;
  const client = g.key.subarray(0, 32);
  const keys = Array.from({ length: 6 }, () => Buffer.concat([client, randomBytes(32)]));
  const decisionFrames = (stats: ReturnType<typeof g.network.hub.stats>) =>
    ['rec.prepare', 'rec.accept', 'rec.commit', 'rec.steps'].reduce((n, type) => n + (stats.byType[type]?.messages ?? 0), 0);
  let before = g.network.hub.stats();
  assert.equal(await g.clock.drive(decide(a!, keys[0]!, 'op-alone')), 0);
  const alone = decisionFrames(g.network.hub.stats()) - decisionFrames(before);
  before = g.network.hub.stats();
  const replies = await g.clock.drive(Promise.all(keys.slice(1).map((key, i) => decide(a!, key, `op-${i}`))));
  const after = g.network.hub.stats();
  assert.deepEqual(replies, [0, 0, 0, 0, 0]);
  assert.ok((after.byType['rec.steps']?.messages ?? 0) > (before.byType['rec.steps']?.messages ?? 0), 'steps were batched');
  assert.ok(decisionFrames(after) - decisionFrames(before) <= alone, `five decisions at once took ${decisionFrames(after) - decisionFrames(before)} frames, one alone ${alone}`);
  await g.clock.pass(1000);
  for (const key of keys) assert.ok(g.members.filter((v) => v.replicas.state(v.storageClientManager, key).version === 1).length >= 3);

  // One refused step refuses only itself: the promise beside it holds, and an outsider is refused step by step.
  const ballot = Buffer.concat([Buffer.from([0xff, 0, 0, 0]), a!.name]);
  const key = keys[0]!;
  const op = { op: sha256(Buffer.from('op-x')), reply: Buffer.from([0]) };
  const steps = [
    { type: 'rec.prepare' as const, persona: 'storage_client_manager' as const, key: keys[1]!, slot: 2, ballot },
    { type: 'rec.accept' as const, persona: 'storage_client_manager' as const, key, slot: 2, ballot, value: { version: 2, value: row(7), ops: [op] } },
  ];
  const { replies: answers } = await g.clock.drive(g.network.impersonate(a!.name).request(b!.name, { type: 'rec.steps', steps }));
  assert.equal('reply' in answers[0]! && 'promised' in answers[0].reply && answers[0].reply.promised, true);
  assert.equal('refused' in answers[1]! && answers[1].refused.code, 'conflict');
  const outsider = g.network.running().find((v) => !g.network.closest(client, GROUP_SIZE + 2).some((m) => m.equals(v.name)))!;
  const { replies: outsiders } = await g.clock.drive(g.network.impersonate(outsider.name).request(b!.name, { type: 'rec.steps', steps }));
  assert.deepEqual(outsiders.map((r) => 'refused' in r && r.refused.code), ['unauthorized', 'unauthorized']);
  g.close();
});

/** One more reference on each record of a batch, as a churn review changes many records at once. */
const decideBatch = (vault: Vault, keys: Buffer[]) =>
  vault.replicas.decideMany(vault.storageClientManager, keys, async (_key, current) => row((current?.readUInt32BE(0) ?? 0) + 1, !current));
const batchFrames = (stats: { byType: Record<string, { messages: number } | undefined> }) =>
  ['rec.prepareMany', 'rec.acceptMany', 'rec.commitMany'].reduce((n, type) => n + (stats.byType[type]?.messages ?? 0), 0);

test('a batch of decisions goes as one message per member and step; each record is decided for its own slot, and one a member holds an accepted value for is left to decide alone', async () => {
  const g = await group();
  const [a, b, c] = g.members;
  const client = g.key.subarray(0, 32);
  const keys = Array.from({ length: 40 }, () => Buffer.concat([client, randomBytes(32)]));
  // keys[0] has a value b and c accepted for slot 1 whose commit never came: the batch must not decide past it.
  const ballot = Buffer.concat([Buffer.from([0x10, 0, 0, 0]), a!.name]);
  const pending = { version: 1, value: row(1, true), ops: [] };
  for (const v of [b!, c!]) {
    v.replicas.onPrepare({ type: 'rec.prepare', persona: 'storage_client_manager', key: keys[0]!, slot: 1, ballot });
    assert.equal(v.replicas.onAccept({ type: 'rec.accept', persona: 'storage_client_manager', key: keys[0]!, slot: 1, ballot, value: pending }).accepted, true);
  }
  // keys[1] had an operation decided on its own: the batch keeps it, and remembers none of its own.
  assert.equal(await g.clock.drive(decide(a!, keys[1]!, 'before')), 0);
  await g.clock.pass(1000);
  const before = g.network.hub.stats();
  const { decided, left } = await g.clock.drive(decideBatch(a!, keys));
  const frames = batchFrames(g.network.hub.stats()) - batchFrames(before);
  assert.deepEqual(left.map(toHex), [toHex(keys[0]!)]);
  assert.deepEqual(decided.map(toHex).sort(), keys.slice(1).map(toHex).sort());
  // Prepare to the five other witnesses, accept and commit to the three other members: 11 messages for 39 records.
  assert.ok(frames <= 11, `${frames} batch messages`);
  assert.equal((g.network.hub.stats().byType['rec.prepare']?.messages ?? 0) - (before.byType['rec.prepare']?.messages ?? 0), 0, 'no record went alone');
  await g.clock.pass(1000);
  for (const [n, key] of keys.slice(1).entries()) {
    const states = g.members.map((v) => v.replicas.state(v.storageClientManager, key));
    const expected = n === 0 ? 2 : 1;
    assert.ok(states.filter((s) => s.version === expected && s.value?.readUInt32BE(0) === expected).length >= 3, 'a quorum installed each record');
    assert.deepEqual(states[0]!.ops.map((o) => toHex(o.op)), n === 0 ? [toHex(sha256(Buffer.from('before')))] : []);
  }
  const opsRows = g.members.map((v) => keys.slice(1).map((key) => countOnDisk(g.dir, v, 'SELECT count(*) FROM rec_ops WHERE key = ?', key)));
  assert.deepEqual(opsRows, g.members.map(() => keys.slice(1).map((_, n) => (n === 0 ? 1 : 0))), "no member wrote a row of operations for the batch's records");
  // Left alone, keys[0] is finished first (the value b and c accepted), then changed: one reference, then two.
  assert.equal(await g.clock.drive(decide(a!, keys[0]!, 'alone')), 1);
  assert.equal(a!.replicas.state(a!.storageClientManager, keys[0]!).version, 2);
  // A record whose change is undefined (nothing to do) is neither decided nor left; a group's few records are left to go alone.
  const some = keys.slice(2, 6);
  assert.deepEqual(await g.clock.drive(a!.replicas.decideMany(a!.storageClientManager, some, async () => undefined)), { decided: [], left: [] });
  assert.equal(a!.replicas.state(a!.storageClientManager, keys[2]!).version, 1);
  const few = await g.clock.drive(a!.replicas.decideMany(a!.storageClientManager, some.slice(0, 3), async () => undefined));
  assert.deepEqual(few.left.map(toHex), some.slice(0, 3).map(toHex));
  g.close();
});

test("a batch's proposer votes only where the other members fall one short: not at all while they all answer, and for every record once one does not answer", async () => {
  const g = await group();
  const [a, b, c, d] = g.members;
  const client = g.key.subarray(0, 32);
  const keys = () => Array.from({ length: 8 }, () => Buffer.concat([client, randomBytes(32)]));
  let ownVotes = 0;
  for (const step of ['onPrepareMany', 'onAcceptMany'] as const) {
    const vote = a!.replicas[step] as (msg: never) => unknown;
    a!.replicas[step] = ((msg: never) => (ownVotes++, vote(msg))) as never;
  }
  const first = await g.clock.drive(decideBatch(a!, keys()));
  assert.equal(first.decided.length, 8);
  assert.equal(ownVotes, 0, 'three other members promised and accepted: the proposer did not');
  // d answers no batch step now (as a member whose disk fails would not).
  for (const step of ['onPrepareMany', 'onAcceptMany', 'onCommitMany'] as const) {
    d!.replicas[step] = (() => {
      throw new SafeVaultError('unavailable', 'this member answers no batch');
    }) as never;
  }
  const more = keys();
  const second = await g.clock.drive(decideBatch(a!, more));
  assert.deepEqual(second.decided.map(toHex).sort(), more.map(toHex).sort());
  assert.equal(ownVotes, 2, 'its own promise and acceptance, each once for the batch');
  await g.clock.pass(1000);
  for (const key of more) assert.deepEqual([a!, b!, c!].map((v) => v.replicas.state(v.storageClientManager, key).version), [1, 1, 1]);
  g.close();
});

test("a data_manager batch with a malformed key refuses that record alone and answers the others", async () => {
  const g = await group();
  const chunk = randomBytes(32);
  const [from, to] = g.network.closest(chunk, 2);
  const ballot = Buffer.concat([Buffer.from([0x20, 0, 0, 0]), from!]);
  const message = { type: 'rec.prepareMany' as const, persona: 'data_manager' as const, ballot, slots: [{ key: Buffer.alloc(3), slot: 1 }, { key: chunk, slot: 1 }] };
  // Sent as a member of the chunk's group sends it, so the receiver judges each record as it does any peer's.
  const { replies } = await g.clock.drive(g.network.impersonate(from!).request(to!, message));
  assert.ok(replies[0] && 'refused' in replies[0] && replies[0].refused.code === 'bad-request', 'the short key is refused');
  assert.equal(replies[1], null, 'the well-formed one is promised');
  g.close();
});

test("a batch's promises and acceptances, one row per member, outlast a restart: a lower ballot is still refused, and the accepted values are finished", async () => {
  const g = await group();
  const [a, b, c, d] = g.members;
  const client = g.key.subarray(0, 32);
  const keys = Array.from({ length: 3 }, () => Buffer.concat([client, randomBytes(32)]));
  const high = Buffer.concat([Buffer.from([0x20, 0, 0, 0]), a!.name]);
  const low = Buffer.concat([Buffer.from([0x1f, 0, 0, 0]), d!.name]);
  // The first value carries its operation, as a single decision's does; the second none, as a batch's.
  const values = new Map(keys.map((key, i) => [toHex(key), { version: 1, value: row(1, true), ops: i === 0 ? [{ op: sha256(key), reply: Buffer.from([0]) }] : [] }]));
  const value = (key: Buffer) => values.get(toHex(key))!;
  // `a` has b and c promise all three records and accept two of them, and dies before any commit.
  for (const v of [b!, c!]) {
    const { replies } = v.replicas.onPrepareMany({ type: 'rec.prepareMany', persona: 'storage_client_manager', ballot: high, slots: keys.map((key) => ({ key, slot: 1 })) });
    assert.deepEqual(replies, [null, null, null], 'the usual answer, promised, goes as null');
    const accepted = v.replicas.onAcceptMany({ type: 'rec.acceptMany', persona: 'storage_client_manager', ballot: high, values: keys.slice(0, 2).map((key) => ({ key, value: value(key) })) });
    assert.deepEqual(accepted.replies, [null, null], 'the usual answer, accepted, goes as null');
  }
  assert.equal(countOnDisk(g.dir, b!, "SELECT count(*) FROM rec_batch WHERE persona = 'storage_client_manager'"), 1, 'one row for the batch');
  assert.equal(countOnDisk(g.dir, b!, "SELECT count(*) FROM rec_slot WHERE persona = 'storage_client_manager'"), 0, 'no row per record');
  await g.clock.drive(g.network.killVault(a!.id));
  await g.clock.drive(g.network.killVault(b!.id));
  // The page's first slot as an older SafeVault wrote it (a map, not a list): read back the same.
  const file = new Database(join(g.dir, 'vaults', b!.id, 'vault.sqlite'));
  const page = file.prepare<[], { ballot: Buffer; slots: Buffer }>('SELECT ballot, slots FROM rec_batch').get()!;
  const slots = decodeCanonical(page.slots) as WireValue[][];
  const [first, slot, promised, accepted, state] = slots[0]!;
  const older = canonical([{ key: first, slot, promised, ballot: accepted, value: state }, ...slots.slice(1)]);
  file.prepare('UPDATE rec_batch SET slots = ? WHERE ballot = ?').run(older, page.ballot);
  file.close();
  const [again] = await g.clock.drive(Promise.all([g.network.startVault(b!.id)]));
  const b2 = g.network.vault(again!.id)!;
  // The promise holds after the restart: a lower ballot is refused, for the record accepted and the one only promised.
  for (const key of [keys[0]!, keys[2]!]) {
    const reply = b2.replicas.onPrepare({ type: 'rec.prepare', persona: 'storage_client_manager', key, slot: 1, ballot: low });
    assert.equal(reply.promised, false);
    assert.ok(reply.promise?.equals(high));
  }
  // The accepted values are finished by the members that hold them, once their proposer has had its time.
  await g.clock.pass(UNFINISHED_DECISION_MS + 1000);
  assert.equal(await g.clock.drive(b2.replicas.finishUnfinished()), 2);
  await g.clock.pass(1000);
  for (const key of keys.slice(0, 2)) {
    const state = d!.replicas.state(d!.storageClientManager, key);
    assert.deepEqual([state.version, state.value?.readUInt32BE(0), state.ops], [1, 1, value(key).ops]);
  }
  assert.equal(d!.replicas.state(d!.storageClientManager, keys[2]!).version, 0);
  g.close();
});

test("a single decision's promise, kept in its own row, holds after a restart: a lower ballot's prepare and accept are refused", async () => {
  const g = await group();
  const [a, b, , d] = g.members;
  const high = Buffer.concat([Buffer.from([0x20, 0, 0, 0]), a!.name]);
  const low = Buffer.concat([Buffer.from([0x1f, 0, 0, 0]), d!.name]);
  const persona = 'storage_client_manager' as const;
  assert.equal(b!.replicas.onPrepare({ type: 'rec.prepare', persona, key: g.key, slot: 1, ballot: high }).promised, true);
  assert.equal(countOnDisk(g.dir, b!, 'SELECT count(*) FROM rec_slot WHERE key = ?', g.key), 1);
  await g.clock.drive(g.network.killVault(b!.id));
  const [again] = await g.clock.drive(Promise.all([g.network.startVault(b!.id)]));
  const b2 = g.network.vault(again!.id)!;
  const prepared = b2.replicas.onPrepare({ type: 'rec.prepare', persona, key: g.key, slot: 1, ballot: low });
  assert.equal(prepared.promised, false);
  assert.ok(prepared.promise?.equals(high));
  const accepted = b2.replicas.onAccept({ type: 'rec.accept', persona, key: g.key, slot: 1, ballot: low, value: { version: 1, value: row(1, true), ops: [] } });
  assert.equal(accepted.accepted, false);
  g.close();
});

test('a member that accepted a value and missed its commit keeps it through later prepares, so the value outlives its proposer', async () => {
  const setUp = async () => {
    const g = await group();
    const [a, b, c, d] = g.members;
    assert.equal(await g.clock.drive(decide(a!, g.key, 'op-1')), 0);
    await g.clock.pass(1000);
    // `a` has version 2 chosen (b and c accepted it) and committed it itself; its commits to b and c were lost.
    const ballot = Buffer.concat([Buffer.from([0xf0, 0, 0, 0]), a!.name]);
    const v2 = { version: 2, value: row(2), ops: [...a!.replicas.state(a!.storageClientManager, g.key).ops, { op: sha256(Buffer.from('op-2')), reply: Buffer.from([1]) }] };
    for (const v of [b!, c!]) {
      v.replicas.onPrepare({ type: 'rec.prepare', persona: 'storage_client_manager', key: g.key, slot: 2, ballot });
      assert.equal(v.replicas.onAccept({ type: 'rec.accept', persona: 'storage_client_manager', key: g.key, slot: 2, ballot, value: v2 }).accepted, true);
    }
    a!.replicas.install(a!.storageClientManager, g.key, v2);
    return { g, a: a!, b: b!, c: c!, d: d! };
  };

  // `a` asks b and c to promise slot 3: they do not, and keep what they accepted for slot 2.
  let { g, a, b, c, d } = await setUp();
  const later = Buffer.concat([Buffer.from([0xf1, 0, 0, 0]), a.name]);
  for (const v of [b, c]) assert.equal(v.replicas.onPrepare({ type: 'rec.prepare', persona: 'storage_client_manager', key: g.key, slot: 3, ballot: later }).promised, false);
  // `a` dies: d, still at version 1, finishes version 2 before its own operation, which sees a count of 2.
  await g.clock.drive(g.network.killVault(a.id));
  assert.equal(await g.clock.drive(decide(d, g.key, 'op-d')), 2);
  assert.equal(d.replicas.state(d.storageClientManager, g.key).version, 3);
  g.close();

  // With `a` alive, its next decision brings b and c up to its version first, and goes through.
  ({ g, a, b, c } = await setUp());
  assert.equal(await g.clock.drive(decide(a, g.key, 'op-3')), 2);
  await g.clock.pass(1000);
  for (const v of [b, c]) assert.equal(v.replicas.state(v.storageClientManager, g.key).version, 3);
  g.close();
});

test('a step for an earlier slot, from a proposer further behind, never writes over a later slot\'s promise or accepted value', async () => {
  const g = await group();
  const [a, b] = g.members;
  assert.equal(await g.clock.drive(decide(a!, g.key, 'op-1')), 0);
  await g.clock.pass(1000);
  const step = { persona: 'storage_client_manager' as const, key: g.key };
  const ballot = (round: number) => Buffer.concat([Buffer.from([round, 0, 0, 0]), a!.name]);
  // b, at version 1, accepts a value for slot 3 (its proposer had version 2; b cannot judge that step, so it only keeps it).
  const v3 = { version: 3, value: row(3), ops: [{ op: sha256(Buffer.from('op-3')), reply: Buffer.from([2]) }] };
  assert.equal(b!.replicas.onPrepare({ type: 'rec.prepare', ...step, slot: 3, ballot: ballot(0xe0) }).promised, true);
  assert.equal(b!.replicas.onAccept({ type: 'rec.accept', ...step, slot: 3, ballot: ballot(0xe0), value: v3 }).accepted, true);
  // A proposer still at version 1 asks for slot 2, with higher ballots: refused, naming the promise held.
  const prepare2 = b!.replicas.onPrepare({ type: 'rec.prepare', ...step, slot: 2, ballot: ballot(0xe1) });
  assert.deepEqual([prepare2.promised, prepare2.promise], [false, ballot(0xe0)]);
  assert.equal(b!.replicas.onAccept({ type: 'rec.accept', ...step, slot: 2, ballot: ballot(0xe2), value: { version: 2, value: row(2), ops: [] } }).accepted, false);
  // Slot 3's value is still there for the next proposer of slot 3 to finish.
  const prepare3 = b!.replicas.onPrepare({ type: 'rec.prepare', ...step, slot: 3, ballot: ballot(0xe3) });
  assert.deepEqual(prepare3.accepted?.value, v3);
  g.close();
});

test('read-repair: a member that answers a read with an older version is told, and catches up from its group', async () => {
  const g = await group();
  const [a, b, c, d] = g.members;
  const client = g.key.subarray(0, 32);
  const chunk = g.key.subarray(32);
  const book = (v: Vault) => v.storageClientManager;
  for (const v of g.members) v.replicas.install(book(v), g.key, { version: 1, value: row(1), ops: [] });
  const behindFrames = () => g.network.hub.stats().byType['rec.behind']?.messages ?? 0;
  // All agree: a read costs nothing more.
  await g.clock.drive(new Groups(g.network.impersonate(randomBytes(32))).read(client, { type: 'cm.refcount', client, chunk }));
  assert.equal(behindFrames(), 0);
  // `d` missed the commit of version 2.
  for (const v of [a!, b!, c!]) v.replicas.install(book(v), g.key, { version: 2, value: row(2), ops: [] });
  const reply = await g.clock.drive(new Groups(g.network.impersonate(randomBytes(32))).read(client, { type: 'cm.refcount', client, chunk }));
  assert.deepEqual(reply, { version: 2, refcount: 2 });
  await g.clock.pass(1000);
  assert.equal(behindFrames(), 1, 'only the stale member is told');
  assert.deepEqual(d!.replicas.state(book(d!), g.key), { version: 2, value: row(2), ops: [] });
  g.close();
});

test('a member told it is behind adopts only what its group holds: a reader cannot impose a state', async () => {
  const g = await group();
  const [a] = g.members;
  for (const v of g.members) v.replicas.install(v.storageClientManager, g.key, { version: 1, value: row(1), ops: [] });
  const outsider = g.network.impersonate(randomBytes(32));
  assert.deepEqual(await g.clock.drive(outsider.request(a!.name, { type: 'rec.behind', persona: 'storage_client_manager', key: g.key })), { version: 1 });
  assert.deepEqual(a!.replicas.state(a!.storageClientManager, g.key), { version: 1, value: row(1), ops: [] });
  // Nor read what members hold, as only members catching up do.
  await assert.rejects(g.clock.drive(outsider.request(a!.name, { type: 'rec.state', persona: 'storage_client_manager', key: g.key })), (e) => isSafeVaultError(e) && e.code === 'unauthorized');
  g.close();
});
