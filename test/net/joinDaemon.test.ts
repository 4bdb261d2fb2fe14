/**
 * The daemon joins a real network instead of running a local one: three `safevault node` processes
 * on 127.0.0.1, and a daemon told to join them (`safevault join`). Its one vault becomes the fourth
 * of the network; its client stores and fetches a file there, and its peers are the nodes, with their
 * addresses, ping latencies and connection times. Bad addresses change nothing; pausing leaves with a
 * goodbye and resuming joins again; `safevault local` goes back to the local network it had.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { createServer, type AddressInfo } from 'node:net';
import { after, test } from 'node:test';
import { connect } from '../../electron/daemon/client.ts';
import { MIN_HOLDERS } from '../../electron/engine/constants.ts';
import { openDatabase } from '../../electron/engine/db.ts';
import { openEngine } from '../../electron/engine/engine.ts';
import { SettingsBook } from '../../electron/engine/settings.ts';
import { CLI, eventually, runCli, tempDir, writeRandomFile } from '../helpers.ts';
import { hooks, startNodes } from './nodes.ts';

// With the daemon's own vault, a network of exactly four: every vault is a holder of every chunk, and
// a data_manager places a copy on itself (a request to itself over libp2p).
const NODES = 3;

const cli = runCli;

async function startDaemon(dataDir: string) {
  const child = spawn(process.execPath, [CLI, 'daemon', '--data-dir', dataDir, '--vaults', '4'], { stdio: ['ignore', 'pipe', 'pipe'] });
  hooks.cleanup(() => child.exitCode === null && child.signalCode === null && child.kill('SIGKILL'));
  const stderr: string[] = [];
  child.stderr.setEncoding('utf8').on('data', (part: string) => stderr.push(...part.split('\n').filter(Boolean)));
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const exited = once(child, 'exit').then(([code]) => {
    throw new Error(`the daemon exited (${code}) before it was ready: ${stderr.join(' | ')}`);
  });
  assert.match(String((await Promise.race([lines.next(), exited])).value), /^safevault daemon ready at /);
  return { child, stderr };
}

test(`a daemon joins a network of ${NODES} safevault node processes: stores and fetches a file there, lists its peers, pauses and resumes, goes back to local`, { timeout: 300_000 }, async (t) => {
  const root = tempDir('safevault-join-');
  const nodes = await startNodes((i) => join(root, `v${i}`), NODES);
  const dataDir = join(root, 'daemon');
  const daemon = await startDaemon(dataDir);
  const api = await connect(dataDir);
  const localVaults = (await api.listVaults({})).map((v) => v.id);
  assert.equal(localVaults.length, 4);

  // A typo is one clear line and changes nothing; so is an address that cannot be listened on (the local network comes back).
  const bad = await cli(dataDir, 'join', '--bootstrap', '/ip4/127.0.0.1/tcpx/1');
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /^safevault: bootstrap address "\/ip4\/127\.0\.0\.1\/tcpx\/1" is not a multiaddr \(.*\)\n$/);
  await assert.rejects(api.setSettings({ mode: 'network', listen: 'not an address' }), /listen address "not an address" is not a multiaddr/);
  const taken = await cli(dataDir, 'join', '--bootstrap', nodes[0]!.address, '--listen', nodes[0]!.listenAddress, '--no-mdns');
  assert.equal(taken.code, 1);
  assert.match(taken.stderr, /^safevault: could not listen on \/ip4\/127\.0\.0\.1\/tcp\/\d+: .*\n$/);
  const settings = await api.getSettings({});
  assert.equal(settings.mode, 'local');
  assert.deepEqual(settings.bootstrap, []);
  assert.deepEqual((await api.listVaults({})).map((v) => v.id), localVaults, 'the local network is back');
  assert.deepEqual(await api.peers({}), { mode: 'local', addresses: [], peers: [] });
  // Joining settings saved while local leave the local network running: no restart.
  const restarts = async () => (await api.logs({ limit: 10_000 })).filter((l) => l.message.startsWith('restarting the network')).length;
  const restartsBefore = await restarts();
  await api.setSettings({ bootstrap: [nodes[0]!.address], mdns: false });
  assert.equal(await restarts(), restartsBefore);
  assert.deepEqual((await api.listVaults({})).map((v) => v.id), localVaults);

  const joined = await cli(dataDir, 'join', '--bootstrap', nodes[0]!.address, '--listen', '/ip4/127.0.0.1/tcp/0', '--no-mdns', '--json');
  assert.equal(joined.code, 0, joined.stderr);
  assert.deepEqual(JSON.parse(joined.stdout).bootstrap, [nodes[0]!.address]);
  const own = (await api.myVault({})).id;
  assert.ok(!localVaults.includes(own), 'its own vault on the network is a vault of its own, not one of the local network');

  const nodeIds = nodes.map((n) => n.id).sort();
  const peers = await eventually(async () => {
    const p = await api.peers({});
    const online = p.peers.filter((peer) => peer.online && peer.latencyMs !== undefined);
    return online.length === NODES ? p : undefined;
  }, `the daemon's vault is connected to all ${NODES} nodes and has pinged them`, 120_000);
  assert.equal(peers.mode, 'network');
  assert.equal(peers.problem, undefined);
  assert.match(peers.addresses[0]!, /^\/ip4\/127\.0\.0\.1\/tcp\/\d+\/p2p\/12D3KooW\w+$/);
  assert.deepEqual(peers.peers.map((p) => p.vault).sort(), nodeIds);
  for (const peer of peers.peers) {
    const node = nodes.find((n) => n.id === peer.vault)!;
    assert.ok(node.address.endsWith(`/p2p/${peer.peer}`), 'the peer id is the node’s');
    assert.ok(peer.addresses.some((a) => /^\/ip4\/127\.0\.0\.1\/tcp\/\d+/.test(a)), `an address for ${peer.vault}: ${peer.addresses}`);
    assert.ok(peer.latencyMs! >= 0 && peer.connectedSince! > 0 && peer.connectedSince! <= Date.now());
  }
  const human = await cli(dataDir, 'peers');
  assert.match(human.stdout, /^listening on \/ip4\/127\.0\.0\.1\/tcp\/\d+\/p2p\/\w+\nVAULT +ONLINE +ADDRESS +LATENCY +CONNECTED SINCE\n/);
  assert.equal(human.stdout.trimEnd().split('\n').length, 2 + NODES);

  await eventually(async () => (await api.listVaults({})).filter((v) => v.online).length === NODES + 1, 'every vault of the network in the list, online', 60_000);
  const vaults = await api.listVaults({});
  assert.deepEqual(vaults.map((v) => v.id).sort(), [own, ...nodeIds].sort());

  const source = writeRandomFile(root, 'photo.bin', 400_000);
  const file = await api.putFile({ as: 'alice', path: source });
  t.diagnostic(`stored ${file.chunks.length} chunks on the joined network`);
  const first = await api.chunkInfo({ name: file.chunks[0]!, as: 'alice' });
  assert.equal(first.refcount, 1);
  t.diagnostic(`first chunk placed on ${first.holders.length} holders`);
  // A network of four that has just met may place a copy short (an account not yet readable); the audit tops it up.
  const info = await eventually(async () => {
    const now = await api.chunkInfo({ name: file.chunks[0]!, as: 'alice' });
    return now.holders.filter((h) => h.online).length >= MIN_HOLDERS ? now : undefined;
  }, `the chunk on ${MIN_HOLDERS} vaults of the network`, 60_000).catch(async (error: Error) => {
    throw new Error(`${error.message}: ${JSON.stringify(await api.chunkInfo({ name: file.chunks[0]!, as: 'alice' }))}; vaults ${JSON.stringify(await api.listVaults({}))}; own ${own}; the nodes see ${nodes.map((n) => n.online()).join(', ')}: ${nodes.map((n) => n.id.slice(0, 8) + ': ' + n.stderr.join(' | ')).join(' || ')}`);
  });
  assert.ok(info.holders.every((h) => [own, ...nodeIds].includes(h.vault)));
  const out = join(root, 'back.bin');
  await api.getFile({ as: 'alice', id: file.id, out });
  assert.ok(readFileSync(out).equals(readFileSync(source)), 'byte-identical from the network');

  // Pause: the own vault leaves with a goodbye; resume: it joins again and the file still comes back.
  const goodbyes = (n: (typeof nodes)[number]) => n.stderr.filter((l) => l.includes(`vault ${own.slice(0, 12)} said goodbye`)).length;
  assert.equal((await api.setPaused({ paused: true })).paused, true);
  await eventually(() => nodes.every((n) => goodbyes(n) === 1), 'the nodes hear its goodbye');
  assert.deepEqual(await api.peers({}), { mode: 'network', addresses: [], peers: [], problem: 'your vault is paused' });
  assert.equal((await api.setPaused({ paused: false })).paused, false);
  await eventually(async () => (await api.peers({})).peers.filter((p) => p.online).length === NODES, 'back among the nodes', 60_000);
  await api.getFile({ as: 'alice', id: file.id, out });
  assert.ok(readFileSync(out).equals(readFileSync(source)), 'byte-identical after the pause');

  // Back to a local network: the joined vault says goodbye to the nodes.
  const local = await cli(dataDir, 'local', '--json');
  assert.equal(local.code, 0, local.stderr);
  assert.equal(JSON.parse(local.stdout).mode, 'local');
  await eventually(() => nodes.every((n) => goodbyes(n) === 2), 'the nodes hear its goodbye');
  assert.deepEqual((await api.listVaults({})).map((v) => v.id), localVaults);

  daemon.child.kill('SIGTERM');
  const [code] = await once(daemon.child, 'exit');
  assert.equal(code, 0, daemon.stderr.join('\n'));
});

test('an engine set to join whose listen address is taken still opens, says why, and Settings can take it back to a local network', { timeout: 120_000 }, async () => {
  const dataDir = tempDir('safevault-join-');
  const engine = await openEngine({ dataDir, vaults: 4 });
  const localVaults = (await engine.listVaults({})).map((v) => v.id);
  await engine.setSettings({ bootstrap: [], mdns: false });
  await engine.close();
  // Someone else holds the port the settings name.
  const squatter = createServer();
  await new Promise<void>((resolve) => squatter.listen(0, '127.0.0.1', resolve));
  after(() => squatter.close());
  const { port } = squatter.address() as AddressInfo;
  const db = openDatabase(join(dataDir, 'app.sqlite'));
  new SettingsBook(db).update({ mode: 'network', listen: `/ip4/127.0.0.1/tcp/${port}` });
  db.close();

  const reopened = await openEngine({ dataDir, vaults: 4 });
  after(() => reopened.close());
  const peers = await reopened.peers({});
  assert.equal(peers.mode, 'network');
  assert.match(peers.problem!, new RegExp(`^could not listen on /ip4/127\\.0\\.0\\.1/tcp/${port}: `));
  assert.equal((await reopened.getSettings({})).listen, `/ip4/127.0.0.1/tcp/${port}`, 'Settings still open');
  assert.ok((await reopened.logs({ level: 'error' })).some((l) => l.message.startsWith('not on the network: could not listen on')));
  await reopened.setSettings({ mode: 'local' });
  assert.deepEqual((await reopened.listVaults({})).map((v) => v.id), localVaults, 'the local network it had');
  assert.deepEqual(await reopened.peers({}), { mode: 'local', addresses: [], peers: [] });
});
