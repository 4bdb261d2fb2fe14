/** Quorum keys: what identifies "the same message", and the receiving vault answering it once while it is in hand. */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { GROUP_SIZE } from '../electron/engine/constants.ts';
import { parseMessage, quorumKeyOf, type Message } from '../electron/engine/messages.ts';
import { sha256 } from '../electron/engine/names.ts';
import { decodeFrame } from '../electron/engine/wire/codec.ts';
import { requestFrame } from '../electron/engine/wire/frames.ts';
import { virtualNetwork } from './helpers.ts';

test('a quorum key is the same for a message however it travelled, and differs for another operation, placement or type', () => {
  const [op, node, chunk] = [randomBytes(32), randomBytes(32), randomBytes(32)];
  const report: Message = { type: 'snm.report', op, node, changes: [{ chunk, size: 10, change: 'stored' }] };
  assert.equal(quorumKeyOf(parseMessage(decodeFrame(requestFrame(report)).value)), quorumKeyOf(report));
  // A report is its operation on the node's account: the same op for another node is another report.
  assert.notEqual(quorumKeyOf({ ...report, node: randomBytes(32) }), quorumKeyOf(report));
  assert.notEqual(quorumKeyOf({ ...report, op: randomBytes(32) }), quorumKeyOf(report));
  // A store is its chunk and placement: the bytes are named by the chunk, so sent or staged is what counts of them.
  const bytes = randomBytes(100);
  const store: Message = { type: 'node.store', chunk: sha256(bytes), bytes, copy: false, base: 0 };
  assert.notEqual(quorumKeyOf({ ...store, base: 1 }), quorumKeyOf(store));
  assert.notEqual(quorumKeyOf({ ...store, bytes: undefined }), quorumKeyOf(store));
  // A put passed down from another upload is another message: a refusal of one upload (not found there) is not the other's answer.
  const client = randomBytes(32);
  const put: Message = { type: 'dm.put', client, chunk, op, stagedAt: node };
  assert.notEqual(quorumKeyOf({ ...put, stagedAt: null }), quorumKeyOf(put));
  assert.notEqual(quorumKeyOf({ ...put, stagedAt: randomBytes(32) }), quorumKeyOf(put));
  // The same fields under another type are another message.
  const keys = (['dm.info', 'stage.fetch', 'node.get', 'node.sweep'] as const).map((type) => quorumKeyOf({ type, chunk }));
  assert.equal(new Set(keys).size, keys.length);
});

test('the same message from two vaults at once is handled once, and both get its answer', async (t) => {
  const net = await virtualNetwork(11, 12);
  t.after(net.close);
  const bytes = randomBytes(4000);
  const chunk = sha256(bytes);
  const [manager, holder] = net.network.closest(chunk, 2) as [Buffer, Buffer];
  await net.clock.drive(net.network.impersonate(manager).request(holder, { type: 'node.store', chunk, bytes, copy: false, base: 0 }));
  // Both sweeps arrive together; the first is still asking the chunk's group when the second comes.
  net.network.hub.conditions = { ...net.network.hub.conditions, delayMs: [5, 5] };
  const senders = net.network.running().filter((v) => !v.name.equals(holder)).slice(0, 2);
  const reads = () => net.network.hub.stats().byType['dm.info']?.messages ?? 0;
  const before = reads();
  const answers = await net.clock.drive(Promise.all(senders.map((v) => net.network.impersonate(v.name).request(holder, { type: 'node.sweep', chunk }))));
  assert.deepEqual(answers, [{ deleted: false }, { deleted: false }]);
  assert.equal(reads() - before, GROUP_SIZE, "one read of the chunk's group, not one per sender");
});
