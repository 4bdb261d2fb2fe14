/**
 * A rogue peer on the frame protocol: garbage, an oversize length, an unknown codec version, an
 * unsigned client request, a forged group decision and a replayed signed request. The vault
 * processes drop and log the garbage, refuse (and log) the forgeries, count the replay once, and
 * neither crash nor change state.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { noise } from '@chainsafe/libp2p-noise';
import { yamux } from '@chainsafe/libp2p-yamux';
import { generateKeyPair } from '@libp2p/crypto/keys';
import { identify } from '@libp2p/identify';
import { tcp } from '@libp2p/tcp';
import { byteStream, lpStream } from '@libp2p/utils';
import { multiaddr } from '@multiformats/multiaddr';
import { createLibp2p } from 'libp2p';
import { signRequest } from '../../electron/engine/clientRequest.ts';
import { systemClock } from '../../electron/engine/clock.ts';
import { GROUP_SIZE } from '../../electron/engine/constants.ts';
import { Groups } from '../../electron/engine/group.ts';
import type { MessageOf, MessageType } from '../../electron/engine/messages.ts';
import { FRAME_PROTOCOL, nameOfPeer } from '../../electron/engine/net/libp2pNetwork.ts';
import { sha256, toHex } from '../../electron/engine/names.ts';
import { MAX_FRAME_BYTES } from '../../electron/engine/wire/codec.ts';
import { readReply, requestFrame } from '../../electron/engine/wire/frames.ts';
import { eventually, tempDir } from '../helpers.ts';
import { joinClient, type NodeProcess, startNodes } from './nodes.ts';

const VAULTS = 6;

/** A bare libp2p node that speaks the frame protocol by hand, with a key of its own. */
async function rogue() {
  const node = await createLibp2p({
    privateKey: await generateKeyPair('Ed25519'),
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: { identify: identify() },
  });
  after(() => node.stop());
  const open = (vault: NodeProcess) => node.dialProtocol(multiaddr(vault.address), FRAME_PROTOCOL);
  return {
    node,
    id: node.peerId.toString(),
    /** Sends one length-prefixed frame and reads the answer, if any. */
    async exchange(vault: NodeProcess, frame: Uint8Array): Promise<Uint8Array | undefined> {
      const lp = lpStream(await open(vault), { maxDataLength: MAX_FRAME_BYTES });
      await lp.write(frame);
      return lp.read().then((r) => r.subarray(), () => undefined);
    },
    /** A length prefix claiming more than MAX_FRAME_BYTES, and a little of the body. */
    async oversize(vault: NodeProcess): Promise<void> {
      const bytes = byteStream(await open(vault));
      const prefix: number[] = [];
      for (let n = MAX_FRAME_BYTES + 1; n >= 0x80; n = Math.floor(n / 0x80)) prefix.push((n % 0x80) | 0x80);
      prefix.push(Math.floor((MAX_FRAME_BYTES + 1) / 0x80 ** prefix.length));
      await bytes.write(Buffer.concat([Buffer.from(prefix), randomBytes(1024)]));
      await bytes.read().catch(() => undefined);
    },
    connectedTo: (vault: NodeProcess) => node.getConnections().some((c) => nameOfPeer(c.remotePeer)?.equals(vault.name)),
  };
}

const ask = <T extends MessageType>(r: Awaited<ReturnType<typeof rogue>>, vault: NodeProcess, message: MessageOf<T>) =>
  r.exchange(vault, requestFrame(message)).then((reply) => readReply(message.type, reply!, vault.id.slice(0, 12)));

test('a rogue peer: garbage dropped and logged, forgeries refused, a replay counted once; no crash, no state change', { timeout: 240_000 }, async () => {
  const root = tempDir('safevault-rogue-');
  const nodes = await startNodes((i) => join(root, `v${i}`), VAULTS);
  const { client, network } = await joinClient(nodes[0]!, VAULTS);
  const byId = new Map(nodes.map((n) => [n.id, n]));

  // A chunk stored by hand, so the test holds the signed request a rogue could capture and replay.
  const bytes = randomBytes(10_000);
  const chunk = sha256(bytes);
  const request = signRequest(client.identity, 'put', chunk, bytes.length, systemClock);
  const stagedAt = network.view.closest(chunk, 1)[0]!;
  await network.request(stagedAt, { type: 'chunk.stage', chunk, bytes });
  const stored = await new Groups(network).askMember(client.identity.name, { type: 'client.put', request, stagedAt });
  assert.equal(stored.refcount, 1);
  const snapshot = async () => ({ record: await client.info(chunk), refcount: await client.refcount(chunk) });
  const before = await snapshot();

  const manager = byId.get(toHex(network.view.closest(client.identity.name, GROUP_SIZE)[0]!))!;
  const dropped = async (why: RegExp, attack: (r: Awaited<ReturnType<typeof rogue>>) => Promise<unknown>) => {
    const r = await rogue();
    await attack(r);
    await eventually(() => manager.stderr.some((l) => l.includes(`dropped peer ${r.id}`) && why.test(l)), `the vault logs dropping the rogue for ${why}`);
    await eventually(() => !r.connectedTo(manager), 'the rogue is disconnected');
  };
  await dropped(/malformed frame/, (r) => r.exchange(manager, randomBytes(200)));
  await dropped(/unknown version 9/, (r) => {
    const frame = requestFrame({ type: 'cm.refcount', client: client.identity.name, chunk });
    frame[0] = 9;
    return r.exchange(manager, frame);
  });
  await dropped(/unreadable frame/, (r) => r.oversize(manager));
  await dropped(/malformed frame|unknown message type/, (r) => r.exchange(manager, requestFrame({ type: 'no.such' } as never)));

  const r = await rogue();
  // Unsigned: the signature is zeros.
  const unsigned = { ...signRequest(client.identity, 'put', chunk, bytes.length, systemClock), signature: Buffer.alloc(64) };
  await assert.rejects(ask(r, manager, { type: 'client.put', request: unsigned, stagedAt }), /signature does not verify/);
  // Forged: a decision for the client's record from a peer outside its group.
  const key = Buffer.concat([client.identity.name, chunk]);
  await assert.rejects(ask(r, manager, { type: 'rec.commit', persona: 'storage_client_manager', key, value: { version: 99, value: null, ops: [] } }), /not in that record's group/);
  await eventually(() => manager.stderr.some((l) => l.includes(`refused client.put from peer ${r.id}`)), 'the unsigned request is logged');
  await eventually(() => manager.stderr.some((l) => l.includes(`refused rec.commit from peer ${r.id}`)), 'the forged decision is logged');
  // Replayed: the captured signed request again, to a member of its group: the same answer, counted once.
  const replayed = await ask(r, manager, { type: 'client.put', request, stagedAt });
  assert.equal(replayed.refcount, 1);

  assert.ok(nodes.every((n) => n.alive), 'no vault crashed');
  assert.deepEqual(await snapshot(), before, 'nothing changed');
  assert.ok(nodes.every((n) => n.online() === VAULTS), 'no vault lost a member');
});
