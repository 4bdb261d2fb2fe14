/**
 * End-to-end scaffolding: a real daemon (the CLI, as a user starts it) over a temp data dir, Debian's
 * Chromium through playwright-core, and polling for conditions instead of sleeping.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium, type Browser } from 'playwright-core';

export const root = resolve(import.meta.dirname, '..', '..');

export interface Daemon {
  url: string;
  token: string;
  dataDir: string;
  /** The URL the daemon prints: it opens the window already authorised. */
  windowUrl: string;
  stop(options?: { keepData?: boolean }): Promise<void>;
}

/** Polls `check` until it returns a truthy value; the last error or falsy value is in the timeout message. */
export async function eventually<T>(check: () => T | Promise<T>, what: string, timeoutMs = 20_000): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value) return value;
      last = value;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what} (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A new daemon on a fresh data dir, or (given `dataDir`) a restart that takes back its remembered port and token. */
export async function startDaemon(vaults = 12, restartIn?: string): Promise<Daemon> {
  const dataDir = restartIn ?? (await mkdtemp(join(tmpdir(), 'safevault-e2e-')));
  const port = restartIn ? [] : ['--port', '0'];
  const child: ChildProcess = spawn(process.execPath, ['electron/daemon/cli.ts', 'daemon', '--data-dir', dataDir, '--vaults', String(vaults), ...port], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (b) => (output += b));
  child.stderr!.on('data', (b) => (output += b));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const info = await eventually(() => {
    if (child.exitCode !== null) throw new Error(`the daemon exited: ${output}`);
    const file = join(dataDir, 'daemon.json');
    return existsSync(file) && /ready/.test(output) ? (JSON.parse(readFileSync(file, 'utf8')) as { url: string; token: string }) : null;
  }, 'the daemon to start', 60_000);
  return {
    ...info,
    dataDir,
    windowUrl: `${info.url}/#token=${info.token}`,
    async stop({ keepData = false } = {}) {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await exited;
      }
      if (!keepData) await rm(dataDir, { recursive: true, force: true });
    },
  };
}

export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
}
