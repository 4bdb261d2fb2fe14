/** The `safevault` CLI end to end against a real daemon: the seed-004 store/delete walk-through, files, errors, restart. */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { CLI, runCli, type CliRun } from './helpers.ts';

const TIMEOUT = { timeout: 120_000 };

describe('safevault CLI', () => {
  let dataDir: string;
  let daemon: ChildProcess | undefined;

  const cli = (...args: string[]): Promise<CliRun> => runCli(dataDir, ...args);

  /** `cli(...args, '--json')`, which must succeed; its one line of output, parsed. */
  async function json(...args: string[]): Promise<any> {
    const run = await cli(...args, '--json');
    assert.equal(run.code, 0, `safevault ${args.join(' ')} failed: ${run.stderr}`);
    assert.equal(run.stdout.trimEnd().split('\n').length, 1, 'one line of JSON');
    return JSON.parse(run.stdout);
  }

  /** A command that must fail with a single `safevault: ...` line on stderr; returns that line. */
  async function refused(...args: string[]): Promise<string> {
    const run = await cli(...args);
    assert.notEqual(run.code, 0, `safevault ${args.join(' ')} should have failed`);
    assert.equal(run.stdout, '');
    assert.match(run.stderr, /^safevault: [^\n]+\n$/);
    return run.stderr;
  }

  async function startDaemon(): Promise<ChildProcess> {
    const child = spawn(process.execPath, [CLI, 'daemon', '--data-dir', dataDir, '--vaults', '12'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (part) => (stderr += part));
    const lines = createInterface({ input: child.stdout! });
    const exited = once(child, 'exit').then(([code]) => {
      throw new Error(`the daemon exited (${code}) before it was ready: ${stderr}`);
    });
    // The iterator buffers, so a second line arriving in the same chunk as the first is not lost.
    const next = lines[Symbol.asyncIterator]();
    const line = String((await Promise.race([next.next(), exited])).value);
    assert.match(line, /^safevault daemon ready at http:\/\/127\.0\.0\.1:\d+$/);
    const open = String((await Promise.race([next.next(), exited])).value);
    const { url, token } = JSON.parse(await readFile(join(dataDir, 'daemon.json'), 'utf8'));
    assert.equal(open, `open ${url}/#token=${token}`, 'the window URL carries the token in its fragment');
    return child;
  }

  async function stopDaemon(): Promise<number | null> {
    const child = daemon!;
    daemon = undefined;
    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    const [code] = await exited;
    return code;
  }

  /** Every stored copy of a chunk: files anywhere in the data dir named by the chunk's name (content-addressed). */
  async function chunkFiles(name: string): Promise<string[]> {
    const entries = await readdir(dataDir, { recursive: true, withFileTypes: true });
    return entries.filter((e) => e.isFile() && e.name.startsWith(name)).map((e) => join(e.parentPath, e.name));
  }

  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'safevault-cli-'));
    daemon = await startDaemon();
  });
  after(async () => {
    if (daemon) await stopDaemon();
    await rm(dataDir, { recursive: true, force: true });
  });

  test('seed 004: store and delete walk-through', TIMEOUT, async () => {
    const chunk = join(dataDir, 'F');
    await writeFile(chunk, randomBytes(64 * 1024));

    const first = await json('chunk', 'put', chunk, '--as', 'user1');
    assert.deepEqual({ refcount: first.refcount, subscribers: first.subscribers }, { refcount: 1, subscribers: 1 });
    const name: string = first.name;
    const info = await json('chunk', 'info', name);
    assert.equal(info.subscribers, 1);
    assert.equal(info.holders.length, 4);
    assert.equal((await chunkFiles(name)).length, 4, 'four stored copies on disk');

    assert.deepEqual(await json('chunk', 'put', chunk, '--as', 'user1'), { name, refcount: 2, subscribers: 1 });
    assert.deepEqual(await json('chunk', 'put', chunk, '--as', 'user2'), { name, refcount: 1, subscribers: 2 });
    assert.equal((await json('chunk', 'info', name, '--as', 'user1')).refcount, 2);

    const before = await json('chunk', 'info', name);
    assert.match(await refused('chunk', 'rm', name, '--as', 'user3'), /non-owner/);
    assert.deepEqual(await json('chunk', 'info', name), before, 'a refused delete changes nothing');

    assert.deepEqual(await json('chunk', 'rm', name, '--as', 'user1'), { refcount: 1, subscribers: 2, deleted: false });
    assert.deepEqual(await json('chunk', 'rm', name, '--as', 'user1'), { refcount: 0, subscribers: 1, deleted: false });
    assert.match(await refused('chunk', 'rm', name, '--as', 'user1'), /non-owner/);
    assert.equal((await chunkFiles(name)).length, 4, 'user2 still owns it');

    assert.deepEqual(await json('chunk', 'rm', name, '--as', 'user2'), { refcount: 0, subscribers: 0, deleted: true });
    assert.deepEqual(await chunkFiles(name), [], 'no vault keeps the bytes');
  });

  const original = randomBytes(2.5 * 1024 * 1024); // incompressible, so at least 3 chunks
  let fileId: string;

  test('put, files and get a multi-chunk file', TIMEOUT, async () => {
    const path = join(dataDir, 'photo.bin');
    await writeFile(path, original);
    const stored = await json('put', path, '--as', 'alice');
    assert.equal(stored.name, 'photo.bin');
    assert.equal(stored.size, original.length);
    assert.ok(stored.chunks.length >= 3);
    fileId = stored.id;

    const files = await json('files', '--as', 'alice');
    assert.deepEqual(files.map((f: any) => f.id), [fileId]);
    assert.deepEqual(await json('files', '--as', 'bob'), []);

    const out = join(dataDir, 'photo.out');
    await json('get', fileId, '--as', 'alice', '--out', out);
    assert.ok((await readFile(out)).equals(original), 'byte-identical');
  });

  test('vaults lists 12, in JSON and as a table', TIMEOUT, async () => {
    assert.equal((await json('vaults')).length, 12);
    const table = await cli('vaults');
    assert.equal(table.code, 0);
    assert.equal(table.stdout.trimEnd().split('\n').length, 13, 'a header and 12 rows');
  });

  test('events prints JSON lines, and --follow streams new ones without repeats', TIMEOUT, async () => {
    const past = (await cli('events')).stdout.trimEnd().split('\n').map((line) => JSON.parse(line));
    assert.ok(past.some((e) => e.type === 'chunk.deleted'));
    assert.deepEqual(past.map((e) => e.seq), [...past.map((e) => e.seq)].sort((a, b) => a - b));

    const follower = spawn(process.execPath, [CLI, 'events', '--follow', '--data-dir', dataDir], { stdio: ['ignore', 'pipe', 'pipe'] });
    const lines = createInterface({ input: follower.stdout });
    const seen: any[] = [];
    lines.on('line', (line) => seen.push(JSON.parse(line)));
    while (seen.length < past.length) await new Promise((r) => setTimeout(r, 20));
    const chunk = join(dataDir, 'G');
    await writeFile(chunk, randomBytes(1000));
    const { name } = await json('chunk', 'put', chunk, '--as', 'carol');
    while (!seen.some((e) => e.type === 'chunk.stored' && e.chunk === name)) await new Promise((r) => setTimeout(r, 20));
    follower.kill('SIGINT');
    const [code] = await once(follower, 'exit');
    assert.equal(code, 0);
    const seqs = seen.map((e) => e.seq);
    assert.deepEqual(seqs, [...new Set(seqs)].sort((a, b) => a - b), 'in order, no duplicates');
  });

  test('bad input exits non-zero with one line', TIMEOUT, async () => {
    await refused('files', '--as', '../x');
    await refused('get', 'ab'.repeat(16), '--as', 'alice', '--out', join(dataDir, 'nothing'));
    await refused('put', join(dataDir, 'does-not-exist'), '--as', 'alice');
    await refused('chunk', 'info', 'not-a-chunk-name');
    await refused('chunk', 'rm', 'AB'.repeat(32), '--as', 'alice');
    assert.equal((await cli('frobnicate')).code, 2, 'unknown command');
    assert.equal((await cli('vaults', '--frob')).code, 2, 'unknown flag');
    assert.equal((await cli('files')).code, 2, 'missing --as');
    assert.equal((await cli('put', 'a', 'b', '--as', 'x')).code, 2, 'extra argument');
  });

  test('a second daemon on the same data dir is refused', TIMEOUT, async () => {
    const second = await cli('daemon', '--vaults', '12');
    assert.equal(second.code, 1);
    assert.match(second.stderr, /^safevault: a daemon is already running/);
  });

  test('SIGTERM stops the daemon cleanly; a restart keeps stored files', TIMEOUT, async () => {
    assert.equal(await stopDaemon(), 0);
    assert.ok(!existsSync(join(dataDir, 'daemon.json')), 'daemon.json removed');
    assert.match(await refused('vaults'), /no daemon is running for .* \(start one with: safevault daemon --data-dir /);

    daemon = await startDaemon();
    const out = join(dataDir, 'photo.again');
    await json('get', fileId, '--as', 'alice', '--out', out);
    assert.ok((await readFile(out)).equals(original), 'byte-identical after restart');
    const removed = await json('rm', fileId, '--as', 'alice');
    assert.equal(removed.id, fileId);
    assert.deepEqual(await json('files', '--as', 'alice'), []);
  });
});
