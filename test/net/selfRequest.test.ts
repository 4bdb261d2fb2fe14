/** A vault is often among the vaults its own messages go to: over libp2p it answers itself, through the codec. */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, test } from 'node:test';
import { createIdentity } from '../../electron/engine/identity.ts';
import type { Message } from '../../electron/engine/messages.ts';
import { Libp2pNetwork } from '../../electron/engine/net/libp2pNetwork.ts';
import type { Name } from '../../electron/engine/names.ts';

test("a vault's request to itself is answered by its own receiver, decoded and checked like any reply", { timeout: 60_000 }, async () => {
  const network = new Libp2pNetwork(createIdentity(), { listen: ['/ip4/127.0.0.1/tcp/0'], mdns: false });
  const seen: { from: Name; message: Message }[] = [];
  const bytes = randomBytes(64);
  await network.start({
    receive: async (from, message) => {
      seen.push({ from, message });
      return message.type === 'node.get' ? { bytes } : { nonsense: true };
    },
  });
  after(() => network.stop(false));
  const chunk = randomBytes(32);
  const reply = await network.request(network.self, { type: 'node.get', chunk });
  assert.ok(reply.bytes.equals(bytes));
  assert.ok(seen[0]!.from.equals(network.self) && seen[0]!.message.type === 'node.get' && Buffer.from(seen[0]!.message.chunk).equals(chunk), 'the receiver got the message, decoded, from this vault');
  await assert.rejects(network.request(network.self, { type: 'dm.info', chunk }), /reply/i, 'a reply that does not fit its message is refused, as from any vault');
});
