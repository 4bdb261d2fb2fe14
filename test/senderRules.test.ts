/**
 * The MESSAGES table's sender rules, as the receiving vault enforces them: for every message type
 * whose rule restricts who may send it, a vault that may not is refused with a clear error and
 * changes nothing, and one that may is answered.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { fromWireError, isSafeVaultError, type ErrorCode } from '../electron/api/errors.ts';
import { GROUP_SIZE } from '../electron/engine/constants.ts';
import { NEAR_SLACK } from '../electron/engine/group.ts';
import { MESSAGES, type MessageOf, type MessageType, type Reply } from '../electron/engine/messages.ts';
import { closest, sha256, type Name } from '../electron/engine/names.ts';
import type { Vault } from '../electron/engine/vault.ts';
import { clientManagerRow, virtualNetwork } from './helpers.ts';

type Net = Awaited<ReturnType<typeof virtualNetwork>>;

/**
 * One restricted message type: the vault it goes to, a message a refused sender sends and one an
 * allowed sender sends, the refusal expected, what must not have changed, and what an accepted one answers.
 */
interface Case<T extends MessageType> {
  to: Vault;
  /** `refusal`: the error (or, in rec.steps, each step's); none where the rule passes over what it does not allow. */
  refused: { from: Name; message: MessageOf<T>; refusal?: { code: ErrorCode; says: RegExp } };
  /** Checked after the refusal: nothing the refused message could have changed did. */
  unchanged: () => Promise<void> | void;
  allowed: { from: Name; message: MessageOf<T>; answer: (reply: Reply<T>) => void };
}

const RESTRICTED = ['claims', 'each-step', 'each-record'];
const hex = (name: Name) => name.toString('hex').slice(0, 12);
const ballot = (round: number, proposer: Name) => Buffer.concat([Buffer.from([round >>> 24, (round >>> 16) & 255, (round >>> 8) & 255, round & 255]), proposer]);

function vaultOf(net: Net, name: Name): Vault {
  return net.network.vault(name.toString('hex'))!;
}

/** A running vault outside the group of `target` (and its NEAR_SLACK places of slack), other than `not`. */
function outsider(net: Net, target: Name, not: Name[] = [], exclude?: Name): Name {
  const near = closest(target, net.network.running().map((v) => v.name), GROUP_SIZE + NEAR_SLACK, exclude);
  return net.network.running().find((v) => ![...near, ...not].some((m) => m.equals(v.name)))!.name;
}

/** A storage_client_manager record key, its group's closest member (the receiver) and the next (an allowed sender). */
function record(net: Net) {
  const client = randomBytes(32);
  const key = Buffer.concat([client, randomBytes(32)]);
  const [receiver, member] = net.network.closest(client, 2);
  return { key, to: vaultOf(net, receiver!), member: member!, stranger: outsider(net, client) };
}

/** A prepare from a member answers as for a record nobody promised, accepted or committed anything for. */
async function untouched(net: Net, rec: ReturnType<typeof record>): Promise<void> {
  const probe = { type: 'rec.prepare' as const, persona: 'storage_client_manager' as const, key: rec.key, slot: 1, ballot: ballot(100, rec.member) };
  const reply = await net.clock.drive(net.network.impersonate(rec.member).request(rec.to.name, probe));
  assert.deepEqual({ promised: reply.promised, accepted: reply.accepted, committed: reply.committed }, { promised: true, accepted: null, committed: null });
  assert.equal(rec.to.replicas.state(rec.to.storageClientManager, rec.key).version, 0);
}

/** Every message type whose rule restricts its sender has a case here: a new one without fails the table test. */
type BatchStep = 'rec.prepareMany' | 'rec.acceptMany' | 'rec.commitMany';

/** A batch step about one record: a stranger's, at the highest round, is refused; a member's, at round 200, gets `answer`. */
function batchCase<T extends BatchStep>(net: Net, message: (rec: ReturnType<typeof record>, from: Name, round: number) => MessageOf<T>, answer: (reply: Reply<T>) => void): Case<T> {
  const rec = record(net);
  const type = message(rec, rec.member, 200).type.replace('.', '\\.');
  return {
    to: rec.to,
    refused: { from: rec.stranger, message: message(rec, rec.stranger, 2 ** 31 - 1), refusal: { code: 'unauthorized', says: new RegExp(`may not send ${type}: it is not in that record's group`) } },
    unchanged: () => untouched(net, rec),
    allowed: { from: rec.member, message: message(rec, rec.member, 200), answer },
  };
}

const CASES: { [T in MessageType]?: (net: Net) => Case<T> } = {
  'node.store': (net) => {
    const bytes = randomBytes(5000);
    const chunk = sha256(bytes);
    const [manager, holder] = net.network.closest(chunk, 2);
    const to = vaultOf(net, holder!);
    const message = { type: 'node.store' as const, chunk, bytes, copy: false, base: 0 };
    return {
      to,
      refused: { from: outsider(net, chunk), message, refusal: { code: 'unauthorized', says: /may not send node\.store: it is not among the managers of chunk/ } },
      unchanged: () => assert.deepEqual(to.storageNode.usage(), { count: 0, bytes: 0 }),
      allowed: { from: manager!, message, answer: (reply) => assert.deepEqual(reply, { added: true }) },
    };
  },
  // Each order is judged as a node.store, and refused on its own, in the reply.
  'node.storeMany': (net) => {
    const bytes = randomBytes(5000);
    const chunk = sha256(bytes);
    const [holder, manager] = net.network.closest(chunk, 2);
    const to = vaultOf(net, holder!);
    to.storageNode.onStage({ type: 'chunk.stage', chunk, bytes });
    const message = { type: 'node.storeMany' as const, orders: [{ chunk, copy: false, base: 0 }] };
    return {
      to,
      refused: { from: outsider(net, chunk), message, refusal: { code: 'unauthorized', says: /may not send node\.store: it is not among the managers of chunk/ } },
      unchanged: () => assert.deepEqual(to.storageNode.usage(), { count: 0, bytes: 0 }),
      allowed: { from: manager!, message, answer: (reply) => (assert.deepEqual(reply, { replies: [{ reply: { added: true } }] }), assert.equal(to.storageNode.usage().count, 1)) },
    };
  },
  'snm.register': (net) => {
    const node = net.network.running()[0]!.name;
    const to = vaultOf(net, closest(node, net.network.running().map((v) => v.name), 1, node)[0]!);
    const stranger = net.network.running().find((v) => !closest(v.name, net.network.running().map((w) => w.name), GROUP_SIZE + 1, v.name).some((m) => m.equals(to.name)))!;
    const message = (donated: number) => ({ type: 'snm.register' as const, op: randomBytes(32), donated });
    const before = to.storageNodeManager.account(stranger.name);
    return {
      to,
      refused: { from: stranger.name, message: message(7), refusal: { code: 'unavailable', says: /this vault does not take snm\.register: it is not among the managers of vault/ } },
      unchanged: () => assert.deepEqual(to.storageNodeManager.account(stranger.name), before),
      allowed: { from: node, message: message(12_345), answer: (reply) => (assert.deepEqual(reply, { donated: 12_345 }), assert.equal(to.storageNodeManager.account(node)?.donated, 12_345)) },
    };
  },
  'snm.report': (net) => {
    const node = net.network.running()[0]!.name;
    const to = vaultOf(net, closest(node, net.network.running().map((v) => v.name), 1, node)[0]!);
    const chunk = randomBytes(32);
    const report = { type: 'snm.report' as const, op: randomBytes(32), node, changes: [{ chunk, size: 1000, change: 'stored' as const }] };
    // A data manager of the chunk may report it lost, never stored: only the node knows what it stored.
    const dataManager = net.network.closest(chunk, 3).find((m) => !m.equals(node))!;
    const before = to.storageNodeManager.account(node);
    return {
      to,
      refused: { from: dataManager, message: report, refusal: { code: 'unauthorized', says: new RegExp(`may not send snm\\.report: it is not vault ${hex(node)}, the only one that reports what it stored`) } },
      unchanged: () => assert.deepEqual(to.storageNodeManager.account(node), before),
      allowed: { from: node, message: report, answer: () => assert.equal(to.storageNodeManager.account(node)?.storedBytes, (before?.storedBytes ?? 0) + 1000) },
    };
  },
  'rec.prepare': (net) => {
    const rec = record(net);
    const prepare = (round: number, from: Name) => ({ type: 'rec.prepare' as const, persona: 'storage_client_manager' as const, key: rec.key, slot: 1, ballot: ballot(round, from) });
    return {
      to: rec.to,
      refused: { from: rec.stranger, message: prepare(2 ** 31 - 1, rec.stranger), refusal: { code: 'unauthorized', says: /may not send rec\.prepare: it is not in that record's group/ } },
      unchanged: () => untouched(net, rec),
      allowed: { from: rec.member, message: prepare(200, rec.member), answer: (reply) => assert.equal(reply.promised, true) },
    };
  },
  'rec.accept': (net) => {
    const rec = record(net);
    const accept = (round: number, from: Name) => ({ type: 'rec.accept' as const, persona: 'storage_client_manager' as const, key: rec.key, slot: 1, ballot: ballot(round, from), value: { version: 1, value: clientManagerRow(1, 10, true), ops: [] } });
    return {
      to: rec.to,
      refused: { from: rec.stranger, message: accept(2 ** 31 - 1, rec.stranger), refusal: { code: 'unauthorized', says: /may not send rec\.accept: it is not in that record's group/ } },
      unchanged: () => untouched(net, rec),
      allowed: { from: rec.member, message: accept(200, rec.member), answer: (reply) => assert.equal(reply.accepted, true) },
    };
  },
  'rec.commit': (net) => {
    const rec = record(net);
    const commit = { type: 'rec.commit' as const, persona: 'storage_client_manager' as const, key: rec.key, value: { version: 1, value: clientManagerRow(1, 10, true), ops: [] } };
    return {
      to: rec.to,
      refused: { from: rec.stranger, message: commit, refusal: { code: 'unauthorized', says: /may not send rec\.commit: it is not in that record's group/ } },
      unchanged: () => untouched(net, rec),
      // Heard, not installed: members install only a state they accepted.
      allowed: { from: rec.member, message: commit, answer: (reply) => assert.deepEqual(reply, { installed: false }) },
    };
  },
  'rec.steps': (net) => {
    const rec = record(net);
    const steps = (round: number, from: Name) => ({
      type: 'rec.steps' as const,
      steps: [{ type: 'rec.prepare' as const, persona: 'storage_client_manager' as const, key: rec.key, slot: 1, ballot: ballot(round, from) }],
    });
    return {
      to: rec.to,
      // Each step is refused on its own, in the reply: the batch as a whole is answered.
      refused: { from: rec.stranger, message: steps(2 ** 31 - 1, rec.stranger), refusal: { code: 'unauthorized', says: /may not send rec\.prepare: it is not in that record's group/ } },
      unchanged: () => untouched(net, rec),
      allowed: { from: rec.member, message: steps(200, rec.member), answer: ({ replies: [only] }) => assert.equal(only && 'reply' in only && 'promised' in only.reply && only.reply.promised, true) },
    };
  },
  // A batch's records are refused one by one, in the reply, as rec.steps' steps are.
  'rec.prepareMany': (net) =>
    batchCase(net, (rec, from, round) => ({ type: 'rec.prepareMany', persona: 'storage_client_manager', ballot: ballot(round, from), slots: [{ key: rec.key, slot: 1 }] }), ({ replies: [only] }) =>
      assert.equal(only, null, 'promised: the usual answer'),
    ),
  'rec.acceptMany': (net) =>
    batchCase(
      net,
      (rec, from, round) => ({
        type: 'rec.acceptMany',
        persona: 'storage_client_manager',
        ballot: ballot(round, from),
        values: [{ key: rec.key, value: { version: 1, value: clientManagerRow(1, 10, true), ops: [] } }],
      }),
      ({ replies: [only] }) => assert.equal(only, null, 'accepted: the usual answer'),
    ),
  // Heard, not installed: members install only a value they accepted at that ballot.
  'rec.commitMany': (net) =>
    batchCase(net, (rec, from) => ({ type: 'rec.commitMany', persona: 'storage_client_manager', ballot: ballot(300, from), keys: [rec.key] }), ({ replies: [only] }) =>
      assert.deepEqual(only, { reply: { installed: false } }),
    ),
  'rec.behind': (net) => {
    const rec = record(net);
    // A record whose group (slack included) `rec.to` is not in: it does not take hints about it.
    const running = net.network.running().map((v) => v.name);
    let far: Buffer;
    do far = Buffer.concat([randomBytes(32), randomBytes(32)]);
    while (closest(far.subarray(0, 32), running, GROUP_SIZE + NEAR_SLACK).some((m) => m.equals(rec.to.name)));
    const behind = (key: Buffer) => ({ type: 'rec.behind' as const, persona: 'storage_client_manager' as const, key });
    return {
      to: rec.to,
      refused: { from: rec.member, message: behind(far), refusal: { code: 'unavailable', says: /this vault does not take rec\.behind: it is not in that record's group/ } },
      unchanged: () => assert.equal(rec.to.replicas.state(rec.to.storageClientManager, far).version, 0),
      // Anyone may tell a member it is behind: it asks its group itself (nobody holds this record, so it stays at 0).
      allowed: { from: rec.stranger, message: behind(rec.key), answer: (reply) => assert.deepEqual(reply, { version: 0 }) },
    };
  },
  'rec.state': (net) => {
    const rec = record(net);
    const ask = { type: 'rec.state' as const, persona: 'storage_client_manager' as const, key: rec.key };
    return {
      to: rec.to,
      refused: { from: rec.stranger, message: ask, refusal: { code: 'unauthorized', says: /may not send rec\.state: it is not in that record's group/ } },
      unchanged: () => untouched(net, rec),
      allowed: { from: rec.member, message: ask, answer: (reply) => assert.equal(reply.committed.version, 0) },
    };
  },
  'rec.transfer': (net) => {
    const rec = record(net);
    const transfer = { type: 'rec.transfer' as const, persona: 'storage_client_manager' as const, records: [{ key: rec.key, state: { version: 3, value: clientManagerRow(2, 10), ops: [] } }] };
    return {
      to: rec.to,
      // Records from outside their group are passed over, not refused: a batch may hold some a lagging view misplaced.
      refused: { from: rec.stranger, message: transfer },
      unchanged: () => assert.equal(rec.to.replicas.state(rec.to.storageClientManager, rec.key).version, 0),
      allowed: { from: rec.member, message: transfer, answer: (reply) => (assert.deepEqual(reply, { adopted: 1, declined: [] }), assert.equal(rec.to.storageClientManager.refcount(rec.key.subarray(0, 32), rec.key.subarray(32)), 2)) },
    };
  },
};

test('every message type has a sender rule, a quorum key, and a case here if its rule restricts the sender', () => {
  for (const [type, spec] of Object.entries(MESSAGES)) {
    assert.ok(spec.sender.says.length > 0, `${type} says who may send it`);
    assert.equal(typeof spec.quorum, 'function', `${type} has a quorum key`);
    assert.equal(RESTRICTED.includes(spec.sender.kind), type in CASES, `${type}: a ${spec.sender.kind} rule ${type in CASES ? 'has no restriction to test' : 'needs a case here'}`);
  }
});

test('a message from a vault its rule does not allow is refused and changes nothing; from one it allows, it is answered', async (t) => {
  const net = await virtualNetwork(7, 16);
  t.after(net.close);
  for (const [type, make] of Object.entries(CASES) as [MessageType, (net: Net) => Case<MessageType>][]) {
    await t.test(type, async () => {
      const { to, refused, unchanged, allowed } = make(net);
      const sent = net.clock.drive(net.network.impersonate(refused.from).request(to.name, refused.message));
      const { kind } = MESSAGES[type].sender;
      /** One line, with the code and words the case expects. */
      const refusedAsExpected = (e: unknown) => isSafeVaultError(e) && e.code === refused.refusal!.code && refused.refusal!.says.test(e.message) && !e.message.includes('\n');
      if (kind === 'claims') {
        await assert.rejects(sent, refusedAsExpected);
      } else if (type !== 'rec.transfer') {
        const { replies } = (await sent) as Reply<'rec.steps'>;
        assert.ok(replies.every((r) => 'refused' in r && refusedAsExpected(fromWireError(r.refused, 'a malformed refusal'))), JSON.stringify(replies));
      } else {
        assert.deepEqual(await sent, { adopted: 0, declined: [0] });
      }
      await unchanged();
      allowed.answer(await net.clock.drive(net.network.impersonate(allowed.from).request(to.name, allowed.message)));
    });
  }
});
