/** Moving the data folder, on its own: target checks, a verified copy, and a failed move undone. */
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import type { DataFolderMove } from '../../electron/api/contract.ts';
import { copyDataFolder, dataFolderMover, prepareTarget } from '../../electron/main/dataFolder.ts';
import { tempDir, writeRandomFile } from '../helpers.ts';

/** A data folder shaped like the engine's: app.sqlite, a 0600 key, vaults with chunk files, a link. */
function dataFolder(): string {
  const dir = tempDir('safevault-data-');
  writeRandomFile(dir, 'app.sqlite', 300_000);
  writeFileSync(join(dir, 'master.key.sealed'), 'sealed', { mode: 0o600 });
  chmodSync(join(dir, 'master.key.sealed'), 0o600);
  for (const vault of ['v1', 'v2']) {
    const chunks = join(dir, 'vaults', vault, 'chunks', 'ab');
    mkdirSync(chunks, { recursive: true });
    writeRandomFile(join(dir, 'vaults', vault), 'vault.sqlite', 100_000);
    for (let i = 0; i < 3; i++) writeRandomFile(chunks, `ab${i}`, 200_000);
  }
  mkdirSync(join(dir, 'uploads'));
  symlinkSync('vaults/v1', join(dir, 'mine'));
  return dir;
}

/** Every file under `dir` with its bytes, every link with its target, every folder by name. */
function tree(dir: string, under = ''): Record<string, string> {
  const out: Record<string, string> = {};
  for (const entry of readdirSync(join(dir, under), { withFileTypes: true })) {
    const path = join(under, entry.name);
    if (entry.isSymbolicLink()) out[path] = `-> ${readlinkSync(join(dir, path))}`;
    else if (entry.isFIFO()) out[path] = 'fifo';
    else if (entry.isDirectory()) Object.assign(out, { [path]: 'dir' }, tree(dir, path));
    else out[path] = readFileSync(join(dir, path)).toString('base64');
  }
  return out;
}

const refusal = (code: string, message: RegExp) => (error: Error & { code?: string }) => {
  assert.equal(error.code, code);
  assert.match(error.message, message);
  return true;
};

test('a target is refused, with a one-line reason, when it is not empty, a file, inside the data folder or not writable', async () => {
  const from = dataFolder();
  const full = tempDir();
  writeFileSync(join(full, 'holiday.jpg'), 'mine');
  await assert.rejects(prepareTarget(from, full), refusal('conflict', /is not empty: choose an empty folder or a new one$/));
  assert.deepEqual(readdirSync(full), ['holiday.jpg'], 'a refused target is left alone');

  const file = join(tempDir(), 'a-file');
  writeFileSync(file, 'x');
  await assert.rejects(prepareTarget(from, file), refusal('bad-request', /is a file, not a folder$/));
  // Under a file nothing can be created, whoever runs the test (root ignores permission bits).
  await assert.rejects(prepareTarget(from, join(file, 'data')), refusal('bad-request', /^cannot use .*a-file\/data: ENOTDIR$/));
  await assert.rejects(prepareTarget(from, from), refusal('bad-request', /is already the data folder$/));
  await assert.rejects(prepareTarget(from, join(from, 'vaults', 'new')), refusal('bad-request', /is inside the current data folder/));
  await assert.rejects(prepareTarget(from, 'relative/dir'), refusal('bad-request', /must be an absolute path$/));
  assert.equal(existsSync(join(from, 'vaults', 'new')), false);

  const fresh = join(tempDir(), 'new', 'deeper');
  const prepared = await prepareTarget(from, fresh);
  assert.deepEqual(readdirSync(fresh), [], 'created, and the write check left nothing');
  await prepared.undo();
  assert.equal(existsSync(fresh), false, 'undo removes a folder the move created');
});

test('the copy is complete and byte-identical, keeps file modes and links, and reports progress up to the total', async () => {
  const from = dataFolder();
  const to = join(tempDir(), 'moved');
  await prepareTarget(from, to);
  const seen: { copied: number; total: number }[] = [];
  const done = await copyDataFolder(from, to, (p) => seen.push(p));
  assert.deepEqual(tree(to), tree(from));
  assert.equal(statSync(join(to, 'master.key.sealed')).mode & 0o777, 0o600);
  const total = 300_000 + 6 + 2 * (100_000 + 3 * 200_000);
  assert.deepEqual(done, { copied: total, total });
  assert.deepEqual(seen[0], { copied: 0, total });
  assert.deepEqual(seen.at(-1), { copied: total, total });
  assert.ok(seen.length >= 5 && seen.length <= 101, `progress as it goes, at most once a percent: ${seen.length} reports`);
  assert.ok(seen.every((p, i) => i === 0 || p.copied > seen[i - 1]!.copied), 'progress only grows');
});

test('a move: engine stopped first, copied, saved, the old folder removed, engine started; one at a time', async () => {
  const from = dataFolder();
  const before = tree(from);
  const to = join(tempDir(), 'moved');
  const steps: string[] = [];
  const progress: DataFolderMove[] = [];
  let current = from;
  const mover = dataFolderMover({
    current: () => current,
    stopEngine: async () => void steps.push(`stop (old folder there: ${existsSync(from)})`),
    startEngine: () => void steps.push(`start in ${current === to ? 'the new folder' : 'the old folder'}`),
    save: (dir) => {
      steps.push(`save ${dir === to ? 'the new folder' : dir}; copied: ${existsSync(join(dir, 'app.sqlite'))}; old still there: ${existsSync(from)}`);
      current = dir;
    },
    onProgress: (p) => progress.push(p),
    log: { info: () => {}, warn: () => {} },
  });
  const moving = mover.move(to);
  await assert.rejects(mover.move(join(tempDir(), 'other')), refusal('conflict', /already being moved/));
  assert.ok(mover.running, 'the move is visible while it runs');
  assert.deepEqual(await moving, { dataDir: to });
  assert.equal(mover.running, undefined);
  assert.deepEqual(steps, ['stop (old folder there: true)', 'save the new folder; copied: true; old still there: true', 'start in the new folder']);
  assert.deepEqual(tree(to), before, 'nothing lost');
  assert.equal(existsSync(from), false, 'the old folder is gone once the new one is saved');
  assert.equal(progress.at(-1)!.done, true);
  assert.equal(progress.at(-1)!.copied, progress.at(-1)!.total);
  assert.ok(progress.slice(0, -1).every((p) => !p.done && p.target === to));

  mover.close();
  await assert.rejects(mover.move(join(tempDir(), 'again')), refusal('unavailable', /quitting/));
});

test('a move that fails mid-copy leaves the target as it was and the engine running in the old folder', async () => {
  const from = dataFolder();
  const before = tree(from);
  const to = tempDir('safevault-empty-target-');
  // A special file the copy cannot move stands in for a failure half-way (a full disk, a vanished drive).
  const { execFileSync } = await import('node:child_process');
  execFileSync('mkfifo', [join(from, 'vaults', 'v2', 'zz-pipe')]);
  const steps: string[] = [];
  const copiedSome: boolean[] = [];
  const mover = dataFolderMover({
    current: () => from,
    stopEngine: async () => void steps.push('stop'),
    startEngine: () => void steps.push('start'),
    save: () => void steps.push('save'),
    onProgress: (p) => void copiedSome.push(p.copied > 0),
    log: { info: () => {}, warn: () => {} },
  });
  await assert.rejects(mover.move(to), refusal('unavailable', /^the data folder was not moved \(cannot move .*zz-pipe: not a file, folder or link\); SafeVault still uses /));
  assert.deepEqual(steps, ['stop', 'start'], 'never saved; the engine back where it was');
  assert.ok(copiedSome.includes(true), 'it failed half-way, after copying some');
  assert.deepEqual(readdirSync(to), [], 'the target emptied again (it existed before)');
  assert.deepEqual(tree(from), { ...before, 'vaults/v2/zz-pipe': 'fifo' }, 'the old folder untouched');
});
