/**
 * Vault processes for the network tests: each a real `safevault node` child process on libp2p, and
 * a storage client in the test process that joins the same network through one of them.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after } from 'node:test';
import { StorageClient } from '../../electron/engine/client/storageClient.ts';
import { selfDecryptToFile, selfEncryptFile, type DataMap } from '../../electron/engine/client/selfEncryption.ts';
import { EventBus } from '../../electron/engine/events.ts';
import { createIdentity } from '../../electron/engine/identity.ts';
import { Libp2pNetwork } from '../../electron/engine/net/libp2pNetwork.ts';
import { fromHex, sha256, toHex, type Name } from '../../electron/engine/names.ts';
import type { Network, WireStats } from '../../electron/engine/transport.ts';
import { eventually } from '../helpers.ts';
import { invariantFailures, type RunOutcome } from '../sim/invariants.ts';

/** Where cleanups go: the test's `after` hooks, or the benchmark's own list. */
export const hooks = { cleanup: (fn: () => unknown) => after(fn) };

const CLI = join(import.meta.dirname, '../../electron/daemon/cli.ts');

export interface NodeStart {
  listen?: string;
  bootstrap?: string[];
  /** Runs the node through this command (as `ip netns exec NS`), when given. */
  prefix?: string[];
}

/** One `safevault node` process: its ready line, its log lines, and the signals a test sends it. */
export class NodeProcess {
  readonly dir: string;
  readonly child: ChildProcess;
  readonly stderr: string[] = [];
  readonly exited: Promise<number | null>;
  address = '';
  id = '';

  private constructor(dir: string, child: ChildProcess) {
    this.dir = dir;
    this.child = child;
    // 'close', not 'exit': by then every line it wrote has been read.
    this.exited = new Promise((resolve) => child.once('close', (code) => resolve(code)));
    let buffered = '';
    child.stderr!.setEncoding('utf8').on('data', (data: string) => {
      const lines = (buffered + data).split('\n');
      buffered = lines.pop()!;
      this.stderr.push(...lines);
    });
  }

  static async start(dir: string, options: NodeStart = {}): Promise<NodeProcess> {
    const { listen = '/ip4/127.0.0.1/tcp/0', bootstrap = [], prefix = [] } = options;
    const args = [CLI, 'node', '--data-dir', dir, '--listen', listen, '--no-mdns', ...bootstrap.flatMap((b) => ['--bootstrap', b])];
    const [command, ...rest] = [...prefix, process.execPath, ...args];
    const child = spawn(command!, rest, { stdio: ['ignore', 'pipe', 'pipe'] });
    const node = new NodeProcess(dir, child);
    hooks.cleanup(() => node.kill('SIGKILL'));
    const ready = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout!.setEncoding('utf8').on('data', (data: string) => {
        out += data;
        const line = /safevault node ready at (\S+).*\(vault ([0-9a-f]{64})\)/.exec(out);
        if (line) resolve(line[0]);
      });
      void node.exited.then((code) => reject(new Error(`safevault node exited with ${code} before it was ready: ${node.stderr.filter(Boolean).join(' | ')}`)));
    });
    const [, address, id] = /ready at (\S+).*\(vault ([0-9a-f]{64})\)/.exec(ready)!;
    node.address = address!;
    node.id = id!;
    return node;
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** The frame counts the node prints on SIGUSR2. */
  async stats(): Promise<WireStats> {
    const seen = this.stderr.length;
    this.child.kill('SIGUSR2');
    const line = await eventually(() => this.stderr.slice(seen).find((l) => l.startsWith('safevault node stats ')), 'the node reports its stats');
    return JSON.parse(line.slice('safevault node stats '.length)) as WireStats;
  }

  get name(): Name {
    return fromHex(this.id);
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** The listen address to come back on (same port), so the others' redials find it. */
  get listenAddress(): string {
    return this.address.replace(/\/p2p\/.*$/, '');
  }

  kill(signal: NodeJS.Signals): void {
    if (this.alive) this.child.kill(signal);
  }

  /** How many vaults this node's view holds, from its latest membership line. */
  online(): number {
    for (let i = this.stderr.length - 1; i >= 0; i--) {
      const count = /\((\d+) online\)/.exec(this.stderr[i]!);
      if (count) return Number(count[1]);
    }
    return 1;
  }

  /** Whether this vault's disk holds the chunk's bytes. */
  holdsOnDisk(chunk: Name): boolean {
    const hex = toHex(chunk);
    return existsSync(join(this.dir, 'chunks', hex.slice(0, 2), hex));
  }

  /** The chunk files on this vault's disk (a write in progress, `<name>.<pid>.tmp`, is not one yet). */
  diskUsage(): { count: number; bytes: number } {
    const usage = { count: 0, bytes: 0 };
    const root = join(this.dir, 'chunks');
    for (const dir of existsSync(root) ? readdirSync(root) : []) {
      for (const file of readdirSync(join(root, dir))) {
        if (!/^[0-9a-f]{64}$/.test(file)) continue;
        usage.count++;
        usage.bytes += statSync(join(root, dir, file)).size;
      }
    }
    return usage;
  }
}

/**
 * Waits for the exactly-once invariants (test/sim/invariants.ts) to hold on the running `nodes`, as
 * they must once the network is left alone; fails with every one that does not.
 */
export async function assertExact(nodes: NodeProcess[], run: Omit<RunOutcome, 'running' | 'isOnline'>, timeoutMs = 120_000): Promise<void> {
  const running = nodes.filter((n) => n.alive);
  const online = new Set(running.map((n) => n.id));
  const outcome: RunOutcome = {
    ...run,
    running: running.map((n) => ({ id: n.id, name: n.name, holds: (chunk: Name) => n.holdsOnDisk(chunk), usage: () => n.diskUsage() })),
    isOnline: (vault) => online.has(toHex(vault)),
  };
  let failures: string[] = [];
  await eventually(async () => (failures = await invariantFailures(outcome)).length === 0, 'the exactly-once invariants hold', timeoutMs).catch(() => {
    throw new Error(`the exactly-once invariants do not hold:\n${failures.join('\n')}`);
  });
}

const START_BATCH = 4;

/** Starts `count` vault processes: the first starts the network, the rest join through it. */
export async function startNodes(dirOf: (i: number) => string, count: number, formMs = 180_000): Promise<NodeProcess[]> {
  const first = await NodeProcess.start(dirOf(0));
  const nodes = [first];
  // A few at a time: a dozen processes loading libp2p at once starve a 2-core machine.
  for (let i = 1; i < count; i += START_BATCH) {
    // Through the first vault and the latest batch: one bootstrap vault for dozens of joiners is swamped on a busy machine.
    const bootstrap = [first, ...nodes.slice(1).slice(-START_BATCH)].map((n) => n.address);
    const batch = Array.from({ length: Math.min(START_BATCH, count - i) }, (_, j) => NodeProcess.start(dirOf(i + j), { bootstrap }));
    nodes.push(...(await Promise.all(batch)));
  }
  await eventually(() => nodes.every((n) => n.online() === count), `every vault sees all ${count}`, formMs).catch((error: Error) => {
    throw new Error(`${error.message} (they see ${nodes.map((n) => n.online()).join(', ')}): ${nodes.map((n) => n.stderr.filter((l) => !l.includes(' joined ')).join(' | ')).join(' || ')}`);
  });
  return nodes;
}

/** A storage client on the network: joins through `via`, sees the vaults, is in no vault's view. */
export async function joinClient(via: NodeProcess, vaults: number): Promise<{ client: StorageClient; network: Libp2pNetwork }> {
  const identity = createIdentity();
  const network = new Libp2pNetwork(identity, { member: false, bootstrap: [via.address], mdns: false });
  await network.start();
  hooks.cleanup(() => network.stop(false));
  await eventually(() => network.view.online().length === vaults, `the client sees all ${vaults} vaults`, 120_000);
  return { client: new StorageClient('tester', identity, network, new EventBus()), network };
}

export const storeFile = (client: StorageClient, path: string): Promise<DataMap> =>
  selfEncryptFile(path, async (_name, bytes) => {
    await client.putChunk(bytes);
  });

export const fetchFile = (client: StorageClient, map: DataMap, out: string): Promise<number> =>
  selfDecryptToFile(map, (_i, name, open) => client.getChunk(name, open), out);

/** A chunk is safe when at least MIN_HOLDERS of its listed holders are running and really serve its bytes. */
export async function servingHolders(client: StorageClient, network: Network, chunk: Name, running: Set<string>): Promise<number> {
  const record = await client.info(chunk);
  if (!record) return 0;
  let serving = 0;
  for (const holder of record.holders.filter((h) => running.has(toHex(h)))) {
    const served = await network.request(holder, { type: 'node.get', chunk }).catch(() => undefined);
    if (served && sha256(served.bytes).equals(chunk)) serving++;
  }
  return serving;
}
