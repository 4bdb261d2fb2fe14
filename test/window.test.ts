/** The engine's side of the window: named, cancellable file operations and their events, health, accounts, own vault, settings, time series, logs. */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { parseParams } from '../electron/api/contract.ts';
import type { RecordedEvent } from '../electron/api/events.ts';
import { isSafeVaultError } from '../electron/api/errors.ts';
import { openDatabase } from '../electron/engine/db.ts';
import { openEngine } from '../electron/engine/engine.ts';
import { EngineLog } from '../electron/engine/engineLog.ts';
import { TimeSeries } from '../electron/engine/timeSeries.ts';
import { eventually, startEngine, tempDir, writeRandomFile } from './helpers.ts';

const op = () => randomBytes(16).toString('hex');
const xor = (a: string, b: string) => Buffer.from(a, 'hex').map((byte, i) => byte ^ Buffer.from(b, 'hex')[i]!);
const code = (c: string) => (e: unknown) => isSafeVaultError(e) && e.code === c;

describe('window engine', async () => {
  const engine = await startEngine(6);
  const dir = tempDir();
  const events: RecordedEvent[] = [];
  engine.onEvent((e) => events.push(e));

  test('putFile with a name and an op: progress carries both, file.stored follows; getFile reports retrieve progress', async () => {
    const path = writeRandomFile(dir, 'upload-temp-123', 3 * 1024 * 1024);
    const store = op();
    const file = await engine.putFile({ as: 'alice', path, name: 'holiday.jpg', op: store });
    assert.equal(file.name, 'holiday.jpg');
    const progress = events.filter((e) => e.type === 'file.progress' && e.op === store);
    assert.ok(progress.length >= 3);
    assert.ok(progress.every((e) => e.type === 'file.progress' && e.direction === 'store' && e.file === 'holiday.jpg'));
    assert.ok(events.some((e) => e.type === 'file.stored' && e.op === store && e.id === file.id && e.size === file.size));

    const get = op();
    const out = join(dir, 'back.jpg');
    await engine.getFile({ as: 'alice', id: file.id, out, op: get });
    assert.deepEqual(readFileSync(out), readFileSync(path));
    assert.ok(events.some((e) => e.type === 'file.progress' && e.op === get && e.direction === 'retrieve'));
    assert.equal((await engine.status({})).opsInFlight, 0);
  });

  test('a cancelled store releases what it stored: refcounts are as before and no file is listed', async () => {
    const path = writeRandomFile(dir, 'twice.bin', 4 * 1024 * 1024);
    const first = await engine.putFile({ as: 'carol', path });
    const before = await Promise.all(first.chunks.map((name) => engine.chunkInfo({ name, as: 'carol' })));
    assert.ok(before.every((c) => c.refcount === 1));

    const store = op();
    const stop = engine.onEvent((e) => {
      if (e.type === 'file.progress' && e.op === store && e.done > 0) void engine.cancel({ op: store });
    });
    await assert.rejects(engine.putFile({ as: 'carol', path, op: store }), /cancelled/);
    stop();
    const failed = events.find((e) => e.type === 'file.failed' && e.op === store);
    assert.ok(failed && failed.type === 'file.failed' && failed.cancelled && failed.direction === 'store');
    const after = await Promise.all(first.chunks.map((name) => engine.chunkInfo({ name, as: 'carol' })));
    assert.deepEqual(after.map((c) => [c.refcount, c.subscribers]), before.map((c) => [c.refcount, c.subscribers]));
    assert.deepEqual((await engine.listFiles({ as: 'carol' })).map((f) => f.id), [first.id]);
    assert.equal((await engine.status({})).opsInFlight, 0);
    assert.deepEqual(await engine.cancel({ op: store }), { cancelled: false }, 'a finished op cannot be cancelled');
  });

  test('a cancelled get leaves no output file and no partial file', async () => {
    const path = writeRandomFile(dir, 'get-me.bin', 4 * 1024 * 1024);
    const file = await engine.putFile({ as: 'alice', path });
    const outDir = tempDir();
    const get = op();
    const stop = engine.onEvent((e) => {
      if (e.type === 'file.progress' && e.op === get) void engine.cancel({ op: get });
    });
    await assert.rejects(engine.getFile({ as: 'alice', id: file.id, out: join(outDir, 'out.bin'), op: get }), /cancelled/);
    stop();
    assert.deepEqual(readdirSync(outDir), []);
    assert.ok(events.some((e) => e.type === 'file.failed' && e.op === get && e.cancelled && e.direction === 'retrieve'));
  });

  test('file.removed on removeFile', async () => {
    const file = await engine.putFile({ as: 'alice', path: writeRandomFile(dir, 'gone.bin', 10_000) });
    await engine.removeFile({ as: 'alice', id: file.id });
    assert.ok(events.some((e) => e.type === 'file.removed' && e.id === file.id && e.file === 'gone.bin'));
  });

  test('fileHealth: per file chunks, fewest online holders, under-replicated count; unknown ids are not-found; bad ids are refused', async () => {
    const a = await engine.putFile({ as: 'dave', path: writeRandomFile(dir, 'a.bin', 50_000) });
    const b = await engine.putFile({ as: 'dave', path: writeRandomFile(dir, 'b.bin', 2 * 1024 * 1024) });
    const health = await engine.fileHealth({ as: 'dave', ids: [a.id, b.id] });
    assert.deepEqual(health.map((h) => [h.id, h.chunks, h.underReplicated]), [[a.id, a.chunks.length, 0], [b.id, b.chunks.length, 0]]);
    assert.ok(health.every((h) => h.minOnlineHolders >= 4));
    await assert.rejects(engine.fileHealth({ as: 'dave', ids: ['0'.repeat(32)] }), code('not-found'));
    assert.throws(() => parseParams('fileHealth', { as: 'dave', ids: ['nothex'] }), code('bad-request'));
    assert.throws(() => parseParams('fileHealth', { as: 'dave', ids: Array(501).fill(a.id) }), code('bad-request'));
  });

  test("chunkInfo names the chunk's data_manager group: 4 online vaults, closest first", async () => {
    const file = (await engine.listFiles({ as: 'dave' }))[0]!;
    const name = file.chunks[0]!;
    const info = await engine.chunkInfo({ name });
    const online = (await engine.listVaults({})).filter((v) => v.online).map((v) => v.id);
    const byDistance = online.sort((x, y) => Buffer.compare(xor(x, name), xor(y, name)));
    assert.deepEqual(info.managers, byDistance.slice(0, 4));
  });

  test('status: totals over online vaults and operations in flight', async () => {
    const vaults = await engine.listVaults({});
    const status = await engine.status({});
    assert.equal(status.paused, false);
    assert.equal(status.used, vaults.reduce((s, v) => s + v.used, 0));
    assert.ok(status.used > 0);
    assert.equal(status.donated, vaults.reduce((s, v) => s + v.donated, 0));
    const slow = engine.putFile({ as: 'alice', path: writeRandomFile(dir, 'slow.bin', 3 * 1024 * 1024) });
    assert.equal((await engine.status({})).opsInFlight, 1);
    await slow;
    assert.equal((await engine.status({})).opsInFlight, 0);
  });

  test('clients: listed with network name and file count; creating one that exists is a conflict', async () => {
    const created = await engine.createClient({ label: 'erin' });
    assert.equal(created.label, 'erin');
    assert.match(created.name, /^[0-9a-f]{64}$/);
    assert.equal(created.files, 0);
    await assert.rejects(engine.createClient({ label: 'erin' }), code('conflict'));
    await assert.rejects(engine.createClient({ label: 'alice' }), code('conflict'));
    const clients = await engine.listClients({});
    assert.deepEqual(clients.find((c) => c.label === 'erin'), created);
    assert.equal(clients.find((c) => c.label === 'dave')!.files, 2);
    assert.throws(() => parseParams('createClient', { label: '../x' }), code('bad-request'));
  });

  test('logs: levels filter, since and limit', async () => {
    engine.log.debug('window test debug');
    engine.log.warn('window test warn');
    engine.log.error('window test\nerror');
    const all = await engine.logs({});
    const mine = all.filter((l) => l.message.startsWith('window test'));
    assert.deepEqual(mine.map((l) => [l.level, l.message]), [['debug', 'window test debug'], ['warn', 'window test warn'], ['error', 'window test error']]);
    const warn = await engine.logs({ level: 'warn' });
    assert.ok(warn.every((l) => l.level === 'warn' || l.level === 'error'));
    assert.ok(warn.some((l) => l.message === 'window test warn'));
    assert.deepEqual(await engine.logs({ since: mine[1]!.seq }), [mine[2]]);
    assert.equal((await engine.logs({ limit: 1 })).length, 1);
    assert.ok(all.some((l) => l.message.startsWith('engine started')), 'the engine logs its start');
    assert.throws(() => parseParams('logs', { level: 'loud' }), code('bad-request'));
  });
});

describe('own vault, pause and settings (persisted across a restart)', () => {
  test('myVault is the first vault; pause takes it offline with an event and survives a restart; resume brings it back', async () => {
    const dataDir = tempDir();
    let engine = await openEngine({ dataDir, vaults: 5 });
    try {
      const first = (await engine.listVaults({}))[0]!;
      await engine.putFile({ as: 'alice', path: writeRandomFile(tempDir(), 'f.bin', 2 * 1024 * 1024) });
      const mine = await engine.myVault({});
      assert.equal(mine.id, first.id);
      assert.equal(mine.online, true);
      assert.ok(mine.startedAt !== null && mine.startedAt <= Date.now());
      const r = mine.records;
      assert.ok(r.dataManager + r.storageNode + r.storageNodeManager + r.storageClientManager > 0);
      assert.ok(r.storageNodeManager > 0, 'it keeps node accounts');

      const events: RecordedEvent[] = [];
      engine.onEvent((e) => events.push(e));
      const status = await engine.setPaused({ paused: true });
      assert.equal(status.paused, true);
      assert.equal(status.online, 4);
      assert.ok(events.some((e) => e.type === 'vault.paused' && e.vault === first.id && e.paused));
      assert.ok(events.some((e) => e.type === 'vault.left' && e.vault === first.id && e.graceful));
      const paused = await engine.myVault({});
      assert.equal(paused.online, false);
      assert.equal(paused.startedAt, null);

      await engine.close();
      engine = await openEngine({ dataDir, vaults: 5 });
      assert.equal((await engine.status({})).paused, true);
      assert.equal((await engine.myVault({})).online, false);
      await engine.setPaused({ paused: false });
      const back = await engine.myVault({});
      assert.equal(back.id, first.id);
      assert.equal(back.online, true);
      assert.equal((await engine.status({})).paused, false);
    } finally {
      await engine.close();
    }
  });

  test('settings: defaults, round trip, donated really changes the own vault, refused below what it stores', async () => {
    const dataDir = tempDir();
    let engine = await openEngine({ dataDir, vaults: 5 });
    try {
      const defaults = await engine.getSettings({});
      assert.equal(defaults.theme, 'auto');
      const own = (await engine.myVault({})).id;
      assert.equal(defaults.donated, (await engine.network.info(own)).donated);

      const donated = 256 * 1024 * 1024;
      const saved = await engine.setSettings({ theme: 'dark', donated, notifications: { ...defaults.notifications, storeFinished: false } });
      assert.equal(saved.theme, 'dark');
      assert.equal(saved.donated, donated);
      assert.equal(saved.notifications.storeFinished, false);
      assert.equal((await engine.listVaults({})).find((v) => v.id === own)!.donated, donated, 'the network records the new donation');

      await engine.close();
      engine = await openEngine({ dataDir, vaults: 5 });
      assert.deepEqual(await engine.getSettings({}), saved);

      // Fill the own vault a little, then ask it to donate less than it holds.
      await engine.putFile({ as: 'alice', path: writeRandomFile(tempDir(), 'g.bin', 3 * 1024 * 1024) });
      const used = (await engine.myVault({})).used;
      assert.ok(used > 0);
      await engine.setSettings({ donated: 64 * 1024 * 1024 }); // the minimum, still above what it holds
      assert.equal((await engine.myVault({})).donated, 64 * 1024 * 1024);
      assert.throws(() => parseParams('setSettings', { donated: 1024 }), code('bad-request'));
      assert.throws(() => parseParams('setSettings', { theme: 'pink' }), code('bad-request'));
      assert.throws(() => parseParams('setSettings', { colour: 'red' }), code('bad-request'));
    } finally {
      await engine.close();
    }
  });

  test('a donation below what the own vault stores is refused and changes nothing', async () => {
    const dataDir = tempDir();
    const engine = await openEngine({ dataDir, vaults: 4 });
    try {
      // With 4 vaults every chunk is on every vault, so the own vault holds all of this file.
      await engine.putFile({ as: 'alice', path: writeRandomFile(tempDir(), 'big.bin', 70 * 1024 * 1024) });
      // At once, before its account has heard of the last chunks (the next report, within a second): the disk is what counts.
      const before = await engine.myVault({});
      await assert.rejects(engine.setSettings({ donated: 64 * 1024 * 1024, theme: 'light' }), (e) => code('bad-request')(e) && /already stores/.test((e as Error).message));
      assert.equal((await engine.myVault({})).donated, before.donated);
      assert.equal((await engine.getSettings({})).theme, 'auto');
    } finally {
      await engine.close();
    }
  });
});

describe('time series', () => {
  test('samples with an injected clock: fields, since, trimming to the window, under-replication when a holder leaves', async () => {
    let clock = 1_000_000;
    const dataDir = tempDir();
    const engine = await openEngine({ dataDir, vaults: 4, samples: { everyMs: 3_600_000, keepMs: 60_000, now: () => clock } });
    try {
      const file = await engine.putFile({ as: 'alice', path: writeRandomFile(tempDir(), 'ts.bin', 50_000) });
      // The holders' accounts hear of the copies with their next reports, within a second.
      const held = async () => (await engine.listVaults({})).reduce((sum, v) => sum + v.chunks, 0);
      await eventually(async () => (await held()) === file.chunks.length * 4, 'every copy is accounted');
      clock += 2000;
      await engine.sample();
      const [first] = await engine.timeSeries({});
      assert.equal(first!.at, clock);
      assert.equal(first!.vaultsOnline, 4);
      assert.equal(first!.underReplicated, 0);
      assert.equal(first!.chunksHeld, file.chunks.length * 4);
      assert.equal(first!.opsPerSecond, 0.5, 'one store in two seconds');
      const status = await engine.status({});
      assert.deepEqual([first!.used, first!.donated], [status.used, status.donated]);

      // With 4 vaults, a stopped one leaves every chunk with 3 online holders and nowhere to copy to.
      await engine.stopVault({ id: (await engine.listVaults({}))[3]!.id });
      clock += 30_000;
      await engine.sample();
      const second = (await engine.timeSeries({ since: first!.at }))!;
      assert.equal(second.length, 1);
      assert.equal(second[0]!.vaultsOnline, 3);
      assert.equal(second[0]!.underReplicated, file.chunks.length);
      assert.equal(second[0]!.opsPerSecond, 0);

      clock += 40_000; // the first sample is now 70 s old: outside the 60 s window
      await engine.sample();
      assert.deepEqual((await engine.timeSeries({})).map((s) => s.at), [second[0]!.at, clock]);
      assert.ok(existsSync(join(dataDir, 'app.sqlite')));
    } finally {
      await engine.close();
    }
  });
});

describe('log and sampler modules on their own', () => {
  test('the engine log keeps the newest 10,000 lines, one line each, and tells listeners', () => {
    const db = openDatabase(join(tempDir(), 'log.sqlite'));
    const log = new EngineLog(db);
    const heard: string[] = [];
    const stop = log.onLine((line) => heard.push(`${line.level}:${line.message}`));
    for (let i = 1; i <= 10_500; i++) log.info(`line ${i}`);
    stop();
    log.error('after\r\nstop');
    assert.equal(heard.length, 10_500);
    const lines = log.lines({ limit: 10_000 });
    assert.ok(lines.length <= 10_000);
    assert.ok(!lines.some((l) => l.message === 'line 1'), 'the oldest lines are trimmed');
    assert.equal(log.lines({ level: 'error' })[0]!.message, 'after stop');
    db.close();
  });

  test('the sampler samples on its own every interval, one at a time, and reports a failed measurement', async () => {
    const db = openDatabase(join(tempDir(), 'ts.sqlite'));
    let calls = 0;
    const errors: unknown[] = [];
    const series = new TimeSeries(db, {
      everyMs: 10,
      measure: async () => {
        if (++calls === 2) throw new Error('network busy');
        return { vaultsOnline: calls, underReplicated: 0, used: 0, donated: 0, chunksHeld: 0, opsPerSecond: 0 };
      },
      onError: (e) => errors.push(e),
    });
    await eventually(() => series.since().length >= 3, 'three samples taken by the timer');
    await series.close();
    assert.equal(errors.length, 1);
    assert.ok(!series.since().some((s) => s.vaultsOnline === 2), 'the failed measurement wrote nothing');
    db.close();
  });
});
