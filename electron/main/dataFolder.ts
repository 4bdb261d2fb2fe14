/**
 * Moving the data folder (app.sqlite, the sealed key, every vault's database and chunks) to a place the
 * user picks. The target is checked before anything stops; the copy is verified file by file (SHA-256 of
 * what was read against what landed) before the setting changes, and the old folder is removed only
 * after that. A failed copy leaves the target as it was found. No electron import: tested in plain Node.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, mkdir, open, readdir, readlink, rm, stat, symlink, unlink, writeFile } from 'node:fs/promises';
import { isAbsolute, join, relative, resolve } from 'node:path';
import type { DataFolderMove } from '../api/contract.ts';
import { SafeVaultError } from '../api/errors.ts';
import type { Logger } from './logging.ts';

export interface MoveProgress {
  /** Bytes copied and verified so far, of `total`. */
  copied: number;
  total: number;
}

export interface PreparedTarget {
  path: string;
  /** Leaves the target as it was found: removed if the move created it, else emptied again. */
  undo(): Promise<void>;
}

const errno = (error: unknown) => (error as NodeJS.ErrnoException).code ?? (error as Error).message;

/**
 * Checks `target` can take the data folder `from`, creating it if needed: refused with a one-line error
 * if it is the current folder or inside it, is a file, is not empty, or cannot be created or written.
 */
export async function prepareTarget(from: string, target: string): Promise<PreparedTarget> {
  if (!isAbsolute(target)) throw new SafeVaultError('bad-request', `${target}: the data folder must be an absolute path`);
  const to = resolve(target);
  const inside = relative(resolve(from), to);
  if (inside === '') throw new SafeVaultError('bad-request', `${to} is already the data folder`);
  if (!inside.startsWith('..') && !isAbsolute(inside)) throw new SafeVaultError('bad-request', `${to} is inside the current data folder ${from}`);

  let created = false;
  const existing = await stat(to).catch((error: unknown) => {
    if (errno(error) === 'ENOENT') return undefined;
    throw new SafeVaultError('bad-request', `cannot use ${to}: ${errno(error)}`);
  });
  if (existing && !existing.isDirectory()) throw new SafeVaultError('bad-request', `${to} is a file, not a folder`);
  if (existing) {
    const entries = await readdir(to).catch((error: unknown) => {
      throw new SafeVaultError('bad-request', `cannot read ${to}: ${errno(error)}`);
    });
    // Never mixed with other files: the old folder is removed after the move, and a folder of the
    // user's own must not end up looking like part of it.
    if (entries.length > 0) throw new SafeVaultError('conflict', `${to} is not empty: choose an empty folder or a new one`);
  } else {
    await mkdir(to, { recursive: true, mode: 0o700 }).catch((error: unknown) => {
      throw new SafeVaultError('bad-request', `cannot create ${to}: ${errno(error)}`);
    });
    created = true;
  }
  const undo = async () => {
    if (created) return rm(to, { recursive: true, force: true });
    for (const entry of await readdir(to)) await rm(join(to, entry), { recursive: true, force: true });
  };
  // Permission bits say little (root, ACLs, read-only mounts): a real write is the check.
  const probe = join(to, '.safevault-write-check');
  try {
    await writeFile(probe, 'ok', { flag: 'wx' });
    await unlink(probe);
  } catch (error) {
    await undo().catch(() => undefined);
    throw new SafeVaultError('bad-request', `cannot write to ${to}: ${errno(error)}`);
  }
  return { path: to, undo };
}

interface Entry {
  path: string;
  /** 'other': a socket, pipe or device, which a data folder never holds; the copy refuses it when it gets there. */
  kind: 'dir' | 'file' | 'link' | 'other';
  size: number;
  mode: number;
}

/** Every entry under `dir`, parents before children. */
async function walk(dir: string, under = ''): Promise<Entry[]> {
  const entries: Entry[] = [];
  for (const name of (await readdir(join(dir, under))).sort()) {
    const path = join(under, name);
    const info = await lstat(join(dir, path));
    if (info.isDirectory()) entries.push({ path, kind: 'dir', size: 0, mode: info.mode & 0o777 }, ...(await walk(dir, path)));
    else if (info.isFile()) entries.push({ path, kind: 'file', size: info.size, mode: info.mode & 0o777 });
    else if (info.isSymbolicLink()) entries.push({ path, kind: 'link', size: 0, mode: 0 });
    else entries.push({ path, kind: 'other', size: 0, mode: 0 });
  }
  return entries;
}

const COPY_BLOCK = 1 << 20;

async function sha256(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const block of createReadStream(path)) hash.update(block as Buffer);
  return hash.digest('hex');
}

/** Copies one file, keeping its mode (the key files are 0600), flushed to disk; returns the SHA-256 of what it read. */
async function copyFile(from: string, to: string, mode: number, onBytes: (n: number) => void): Promise<string> {
  const hash = createHash('sha256');
  const source = await open(from, 'r');
  try {
    const target = await open(to, 'wx', mode);
    try {
      const block = Buffer.allocUnsafe(COPY_BLOCK);
      for (;;) {
        const { bytesRead } = await source.read(block, 0, COPY_BLOCK, null);
        if (bytesRead === 0) break;
        hash.update(block.subarray(0, bytesRead));
        await target.write(block, 0, bytesRead);
        onBytes(bytesRead);
      }
      await target.sync();
    } finally {
      await target.close();
    }
  } finally {
    await source.close();
  }
  return hash.digest('hex');
}

/**
 * Copies everything under `from` into the (empty) folder `to` and checks each file read back matches.
 * Progress is reported at each whole percent. The caller stopped the engine, so nothing changes meanwhile.
 */
export async function copyDataFolder(from: string, to: string, onProgress: (progress: MoveProgress) => void = () => {}): Promise<MoveProgress> {
  const entries = await walk(from);
  const total = entries.reduce((sum, e) => sum + e.size, 0);
  let copied = 0;
  let reported = -1;
  const report = () => {
    const percent = total === 0 ? 100 : Math.floor((copied / total) * 100);
    if (percent === reported) return;
    reported = percent;
    onProgress({ copied, total });
  };
  report();
  for (const entry of entries) {
    const source = join(from, entry.path);
    const target = join(to, entry.path);
    if (entry.kind === 'dir') await mkdir(target, { mode: entry.mode });
    else if (entry.kind === 'link') await symlink(await readlink(source), target);
    else if (entry.kind === 'other') throw new SafeVaultError('bad-request', `cannot move ${source}: not a file, folder or link`);
    else {
      const read = await copyFile(source, target, entry.mode, (n) => {
        copied += n;
        report();
      });
      if ((await sha256(target)) !== read) throw new Error(`${target} does not match ${source} after copying`);
    }
  }
  return { copied, total };
}

export interface MoverOptions {
  /** The data folder now. */
  current(): string;
  stopEngine(): Promise<void>;
  startEngine(): void;
  /** Persists the new folder (desktop.json), so the next start and every restart use it. */
  save(dataDir: string): void;
  onProgress(progress: DataFolderMove): void;
  log: Pick<Logger, 'info' | 'warn'>;
}

export interface DataFolderMover {
  /** The move in flight, if any: quit waits for it. */
  readonly running: Promise<unknown> | undefined;
  move(target: string): Promise<{ dataDir: string }>;
  /** From now on a move is refused, and one in flight leaves the engine stopped at its end (quitting). */
  close(): void;
}

/** One move at a time: check the target, stop the engine, copy and verify, save, remove the old folder, start. */
export function dataFolderMover(options: MoverOptions): DataFolderMover {
  const { log } = options;
  let running: Promise<{ dataDir: string }> | undefined;
  let closed = false;

  const run = async (target: string): Promise<{ dataDir: string }> => {
    const from = options.current();
    const prepared = await prepareTarget(from, target);
    const to = prepared.path;
    const progress = (p: MoveProgress, done = false) => options.onProgress({ target: to, ...p, done });
    progress({ copied: 0, total: 0 });
    log.info(`moving the data folder from ${from} to ${to}: stopping the engine`);
    await options.stopEngine();
    let copied: MoveProgress;
    try {
      copied = await copyDataFolder(from, to, progress);
      options.save(to);
    } catch (error) {
      await prepared.undo().catch((e: Error) => log.warn(`could not clean up ${to}: ${e.message}`));
      if (!closed) options.startEngine();
      progress({ copied: 0, total: 0 }, true);
      const why = error instanceof SafeVaultError ? error.message : `${errno(error)}`;
      log.warn(`data folder not moved: ${why}`);
      throw new SafeVaultError('unavailable', `the data folder was not moved (${why}); SafeVault still uses ${from}`);
    }
    // Verified and saved: the old copy is no longer the data, only space.
    await rm(from, { recursive: true, force: true }).catch((e: Error) => log.warn(`moved, but could not remove the old data folder ${from}: ${e.message}`));
    log.info(`data folder moved to ${to} (${copied.copied} bytes)`);
    progress(copied, true);
    if (!closed) options.startEngine();
    return { dataDir: to };
  };

  return {
    get running() {
      return running;
    },
    async move(target) {
      if (closed) throw new SafeVaultError('unavailable', 'SafeVault is quitting: the data folder stays where it is');
      if (running) throw new SafeVaultError('conflict', 'the data folder is already being moved');
      running = run(target);
      try {
        return await running;
      } finally {
        running = undefined;
      }
    },
    close() {
      closed = true;
    },
  };
}
