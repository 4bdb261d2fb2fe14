/** Nothing acknowledged is lost: vaults killed mid-work, the engine restarted, the process crashed. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { test } from 'node:test';
import { MIN_HOLDERS } from '../electron/engine/constants.ts';
import { openEngine } from '../electron/engine/engine.ts';
import { eventually, startEngine, tempDir, writeRandomFile } from './helpers.ts';

const sha = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

test('vaults killed while files are being stored: every acknowledged file survives', async () => {
  const engine = await startEngine(12);
  const dir = tempDir();
  const paths = Array.from({ length: 6 }, (_, i) => writeRandomFile(dir, `f${i}.bin`, 400_000));
  const vaults = (await engine.listVaults({})).map((v) => v.id);
  const puts = paths.map((path) => engine.putFile({ as: 'busy', path }));
  await engine.killVault({ id: vaults[0]! });
  // The second kill lands once chunks are being stored, mid-way through the files.
  await eventually(async () => (await engine.events({})).some((e) => e.type === 'chunk.stored'), 'stores under way');
  await engine.killVault({ id: vaults[5]! });
  const settled = await Promise.allSettled(puts);

  const stored = settled.flatMap((s, i) => (s.status === 'fulfilled' ? [{ file: s.value, path: paths[i]! }] : []));
  assert.ok(stored.length > 0, 'nothing was acknowledged');
  // The failure detector notices the killed vaults, and the repairs it starts bring every chunk back to MIN_HOLDERS.
  const onlineHolders = async (chunk: string) => (await engine.chunkInfo({ name: chunk })).holders.filter((h) => h.online).length;
  for (const chunk of stored.flatMap(({ file }) => file.chunks)) {
    await eventually(async () => (await onlineHolders(chunk)) >= MIN_HOLDERS, `chunk ${chunk} back to ${MIN_HOLDERS} online holders`);
  }
  for (const { file, path } of stored) {
    const out = join(dir, `${file.id}.out`);
    await engine.getFile({ as: 'busy', id: file.id, out });
    assert.equal(sha(out), sha(path));
  }
});

test('the whole engine restarted: files, counts and vault states are as they were', async () => {
  const dataDir = tempDir();
  const dir = tempDir();
  const path = writeRandomFile(dir, 'keep.bin', 1_500_000);
  let engine = await openEngine({ dataDir, vaults: 10 });
  const file = await engine.putFile({ as: 'keeper', path });
  const stopped = (await engine.listVaults({}))[3]!.id;
  await engine.stopVault({ id: stopped });
  await engine.network.settled();
  const before = await engine.chunkInfo({ name: file.chunks[0]!, as: 'keeper' });
  const eventCount = (await engine.events({})).length;
  await engine.close();

  engine = await openEngine({ dataDir, vaults: 10 });
  try {
    const vaults = await engine.listVaults({});
    assert.equal(vaults.length, 10);
    assert.equal(vaults.find((v) => v.id === stopped)!.online, false);
    assert.deepEqual(await engine.chunkInfo({ name: file.chunks[0]!, as: 'keeper' }), before);
    assert.deepEqual((await engine.listFiles({ as: 'keeper' })).map((f) => f.id), [file.id]);
    await engine.getFile({ as: 'keeper', id: file.id, out: join(dir, 'out.bin') });
    assert.equal(sha(join(dir, 'out.bin')), sha(path));
    // Event numbering continues after the history.
    const events = await engine.events({ since: eventCount - 1 });
    assert.equal(events[0]!.seq, eventCount);
  } finally {
    await engine.close();
  }
});

test('the process crashes (SIGKILL) mid-store: every acknowledged file is there after restart', async () => {
  const dataDir = tempDir();
  const scratch = tempDir();
  const child = spawn(process.execPath, [join(import.meta.dirname, 'fixtures/putLoop.ts'), dataDir, scratch], { stdio: ['ignore', 'pipe', 'inherit'] });
  const acked: { id: string; sha256: string }[] = [];
  for await (const line of createInterface({ input: child.stdout })) {
    acked.push(JSON.parse(line));
    if (acked.length === 4) break;
  }
  child.kill('SIGKILL');
  await new Promise((r) => child.once('exit', r));

  const engine = await openEngine({ dataDir, vaults: 8 });
  try {
    const listed = (await engine.listFiles({ as: 'crash' })).map((f) => f.id);
    for (const { id, sha256 } of acked) {
      assert.ok(listed.includes(id), `acknowledged file ${id} is missing`);
      const out = join(scratch, `${id}.out`);
      await engine.getFile({ as: 'crash', id, out });
      assert.equal(sha(out), sha256);
    }
  } finally {
    await engine.close();
  }
});

test('a vault that stopped mid-write keeps no unacknowledged files', async () => {
  const engine = await startEngine(6);
  const vault = (await engine.listVaults({}))[0]!.id;
  const dir = join(engine.dataDir, 'vaults', vault, 'chunks', 'ab');
  await engine.stopVault({ id: vault });
  mkdirSync(dir, { recursive: true });
  const orphan = join(dir, 'ab'.padEnd(64, '0'));
  writeFileSync(orphan, 'never acknowledged');
  writeFileSync(`${orphan}.123.tmp`, 'half written');
  await engine.startVault({ id: vault });
  assert.ok(!existsSync(orphan) && !existsSync(`${orphan}.123.tmp`));
});
