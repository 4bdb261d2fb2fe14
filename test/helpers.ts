/** Shared test scaffolding: temp data dirs, real engines, and looking at what is really on disk. */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, readdirSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { openEngine, type Engine } from '../electron/engine/engine.ts';
import { LocalNetwork } from '../electron/engine/network.ts';
import { startVirtualNetwork } from './sim/virtualNetwork.ts';

/** `vaults` started on a seeded virtual clock in a temporary dir (see startVirtualNetwork). */
export const virtualNetwork = (seed: number, vaults: number, timeoutMs = 2000) => startVirtualNetwork(tempDir(), seed, vaults, timeoutMs);

export function tempDir(prefix = 'safevault-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export async function startEngine(vaults = 12, dataDir = tempDir()): Promise<Engine<LocalNetwork>> {
  const engine = await openEngine({ dataDir, vaults });
  after(() => engine.close());
  return asLocal(engine);
}

/** An engine running a local network (a new data dir's mode), for tests that look inside it (the hub, impersonation). */
export function asLocal(engine: Engine): Engine<LocalNetwork> {
  if (!(engine.network instanceof LocalNetwork)) throw new Error('this engine runs a joined network, not a local one');
  return engine as Engine<LocalNetwork>;
}

export function writeRandomFile(dir: string, name: string, size: number): string {
  const path = join(dir, name);
  writeFileSync(path, randomBytes(size));
  return path;
}

/** Ids of the vaults whose disk holds the chunk's file. */
export function vaultsHoldingOnDisk(dataDir: string, chunk: string): string[] {
  const root = join(dataDir, 'vaults');
  return readdirSync(root).filter((id) => existsSync(join(root, id, 'chunks', chunk.slice(0, 2), chunk)));
}

export function chunkPath(dataDir: string, vault: string, chunk: string): string {
  return join(dataDir, 'vaults', vault, 'chunks', chunk.slice(0, 2), chunk);
}

/** Polls `check` until it returns a truthy value (churn handling runs in the background). */
export async function eventually<T>(check: () => T | Promise<T>, what: string, timeoutMs = 10_000): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** The CLI's entry, run as `safevault` is. */
export const CLI = join(import.meta.dirname, '..', 'electron', 'daemon', 'cli.ts');

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `safevault ...args --data-dir <dataDir>` with Node 24 (process.execPath), never throwing. */
export async function runCli(dataDir: string, ...args: string[]): Promise<CliRun> {
  const child = spawn(process.execPath, [CLI, ...args, '--data-dir', dataDir], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (part) => (stdout += part));
  child.stderr.on('data', (part) => (stderr += part));
  const [code] = await once(child, 'close');
  return { code, stdout, stderr };
}

/**
 * A storage_client_manager record as its book encodes it: refcount and size, and with `pending` a
 * first reference on its way down (an outbox entry, due in the far future).
 */
export const clientManagerRow = (refcount: number, size: number, pending = false): Buffer =>
  Buffer.concat([Buffer.from([0, 0, 0, refcount, 0, 0, 0, size]), pending ? Buffer.concat([Buffer.from([0]), Buffer.alloc(32, 7), Buffer.alloc(8, 0x7f)]) : Buffer.alloc(0)]);
