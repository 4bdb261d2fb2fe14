/**
 * The engine host for real: a Node child speaking the same message protocol as the utilityProcess,
 * supervised by the same module main uses; killed with SIGKILL, restarted with backoff, data intact.
 */
import assert from 'node:assert/strict';
import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import type { ConnectionState } from '../../electron/api/contract.ts';
import type { FromHost } from '../../electron/host/protocol.ts';
import { createEngineSupervisor, type EngineChild } from '../../electron/main/engineSupervisor.ts';
import { eventually, tempDir, writeRandomFile } from '../helpers.ts';

const HOST = join(import.meta.dirname, '../../electron/host/engineHost.ts');

function nodeHosts() {
  const children: ChildProcess[] = [];
  after(() => children.forEach((c) => c.kill('SIGKILL')));
  const spawn = (): EngineChild => {
    const child = fork(HOST, [], { serialization: 'advanced', stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    children.push(child);
    return {
      post: (m) => void (child.connected && child.send(m)),
      onMessage: (l) => void child.on('message', l as (m: unknown) => void),
      onExit: (l) => void child.on('exit', (code) => l(code)),
      kill: () => void child.kill('SIGKILL'),
    };
  };
  return { children, spawn };
}

/** Restarts run at once; the delays main would have waited are recorded. */
function recordedSchedule() {
  const delays: number[] = [];
  const scheduleRestart = (run: () => void, ms: number) => {
    delays.push(ms);
    const timer = setImmediate(run);
    return () => clearImmediate(timer);
  };
  return { delays, scheduleRestart };
}

test('the engine host serves the contract, survives SIGKILL with backoff 1 s, 2 s, and keeps its data', async () => {
  const dataDir = tempDir();
  const { children, spawn } = nodeHosts();
  const { delays, scheduleRestart } = recordedSchedule();
  const logs: string[] = [];
  const states: ConnectionState[] = [];
  const masterKey = randomBytes(32).toString('base64');
  const supervisor = createEngineSupervisor({
    spawn,
    init: () => ({ type: 'init', dataDir, vaults: 6, masterKey }),
    log: (level, message) => logs.push(`${level} ${message}`),
    onEngineLog: (level, message) => logs.push(`${level} engine: ${message}`),
    scheduleRestart,
  });
  after(() => supervisor.stop(2000));
  supervisor.onState((s) => states.push(s));
  const events: string[] = [];
  supervisor.onEvent((e) => events.push(e.type));

  await assert.rejects(supervisor.call('status', {}), (e: Error & { code?: string }) => e.code === 'unavailable');
  supervisor.start();
  await eventually(() => supervisor.state === 'connected', 'the host is ready');

  const source = writeRandomFile(tempDir(), 'holiday.jpg', 250_000);
  const stored = await supervisor.call('putFile', { as: 'alice', path: source });
  assert.equal(stored.name, 'holiday.jpg');
  await eventually(() => events.includes('chunk.stored'), 'events reach main');
  assert.equal(existsSync(join(dataDir, 'master.key')), false, 'the key main passed seals secrets, not a file beside the database');

  // Bad calls are refused by the host itself, with the contract's one-line errors.
  await assert.rejects(supervisor.call('listFiles', { as: '../etc' } as never), /listFiles: as: a client name/);
  await assert.rejects(supervisor.call('nope' as never, {} as never), /unknown method: nope/);

  for (const [round, expected] of [[1, [1000]], [2, [1000, 2000]]] as const) {
    const victim = children.at(-1)!;
    victim.kill('SIGKILL');
    await eventually(() => children.length === round + 1 && supervisor.state === 'connected', `restart ${round}`);
    assert.deepEqual(delays, expected);
    const files = await supervisor.call('listFiles', { as: 'alice' });
    assert.deepEqual(files.map((f) => f.id), [stored.id]);
  }
  assert.ok(states.filter((s) => s === 'disconnected').length >= 2, 'main saw each death');
  assert.ok(logs.some((l) => l.includes('engine host exited')));

  const out = join(tempDir(), 'back.jpg');
  await supervisor.call('getFile', { as: 'alice', id: stored.id, out });
  assert.deepEqual(readFileSync(out), readFileSync(source));

  // Quit: the host closes its engine and exits by itself, well inside the bound.
  const last = children.at(-1)!;
  await supervisor.stop(30_000);
  assert.equal(last.exitCode, 0);
  assert.equal(supervisor.state, 'disconnected');
  assert.equal(children.length, 3, 'no restart after a stop');
});

test('quit during a store: the store is aborted and released, what was acknowledged stays, nothing is left counted', async () => {
  const dataDir = tempDir();
  const { children, spawn } = nodeHosts();
  const masterKey = randomBytes(32).toString('base64');
  const supervisor = createEngineSupervisor({
    spawn,
    init: () => ({ type: 'init', dataDir, vaults: 6, masterKey }),
    log: () => {},
    onEngineLog: () => {},
  });
  after(() => supervisor.stop(2000));
  supervisor.start();
  await eventually(() => supervisor.state === 'connected', 'the host is ready');
  const kept = await supervisor.call('putFile', { as: 'alice', path: writeRandomFile(tempDir(), 'kept.bin', 200_000) });
  // Big enough that the store is still far from done when its first chunk is acknowledged, even on a loaded machine.
  const big = writeRandomFile(tempDir(), 'big.bin', 24 * 1024 * 1024);
  // Quit from the first chunk's event itself, not a poll after it.
  let stopping: Promise<void> | undefined;
  supervisor.onEvent((e) => {
    if (e.type === 'chunk.stored') stopping ??= supervisor.stop(30_000);
  });

  const storing = supervisor.call('putFile', { as: 'alice', path: big }).then(
    () => 'stored',
    (e: Error & { code?: string }) => `${e.code}: ${e.message}`,
  );
  await eventually(() => stopping !== undefined, 'the store under way', 60_000);
  await stopping;
  assert.equal(children.at(-1)!.exitCode, 0, 'closed by itself, not killed');
  assert.equal(await storing, 'conflict: the engine is closing', 'the store was answered before the host went: aborted');

  supervisor.start();
  await eventually(() => supervisor.state === 'connected', 'restarted', 60_000);
  assert.deepEqual((await supervisor.call('listFiles', { as: 'alice' })).map((f) => f.name), ['kept.bin'], 'the acknowledged file, and only it');
  // Storing the same bytes again: had the aborted store left its chunks counted, they would count 2 now.
  const again = await supervisor.call('putFile', { as: 'alice', path: big });
  for (const name of again.chunks) {
    const info = await supervisor.call('chunkInfo', { name, as: 'alice' });
    assert.equal(info.refcount, 1, `chunk ${name.slice(0, 8)}: counted once`);
    assert.equal(info.subscribers, 1);
  }
  const out = join(tempDir(), 'kept.bin');
  await supervisor.call('getFile', { as: 'alice', id: kept.id, out });
  assert.equal(readFileSync(out).length, 200_000);
});

test('a host that will not close in time is killed after the bound', async () => {
  const logs: string[] = [];
  let killed = false;
  let exit: (code: number | null) => void = () => {};
  const supervisor = createEngineSupervisor({
    spawn: () => ({
      post: (m) => m.type === 'init' && queueMicrotask(() => onMessage({ type: 'ready' })),
      onMessage: (l) => void (onMessage = l),
      onExit: (l) => void (exit = l),
      kill: () => {
        killed = true;
        exit(null);
      },
    }),
    init: () => ({ type: 'init', dataDir: '/nowhere' }),
    log: (level, message) => logs.push(`${level} ${message}`),
    onEngineLog: () => {},
  });
  let onMessage: (m: FromHost) => void = () => {};
  supervisor.start();
  await eventually(() => supervisor.state === 'connected', 'ready');
  await supervisor.stop(250);
  assert.ok(killed);
  assert.ok(logs.some((l) => l.includes('did not close within 250 ms')));
});

test('restart backoff: 1 s, 2 s, 4 s … capped at 30 s; reset only after a minute of good health', async () => {
  let clock = 0;
  const delays: number[] = [];
  const restarts: (() => void)[] = [];
  const hosts: { ready(): void; exit(): void }[] = [];
  const supervisor = createEngineSupervisor({
    spawn: () => {
      let onMessage: (m: FromHost) => void = () => {};
      let onExit: (code: number | null) => void = () => {};
      hosts.push({ ready: () => onMessage({ type: 'ready' }), exit: () => onExit(1) });
      return { post: () => {}, onMessage: (l) => void (onMessage = l), onExit: (l) => void (onExit = l), kill: () => {} };
    },
    init: () => ({ type: 'init', dataDir: '/nowhere' }),
    log: () => {},
    onEngineLog: () => {},
    scheduleRestart: (run, ms) => {
      delays.push(ms);
      restarts.push(run);
      return () => {};
    },
    now: () => clock,
  });
  /** The next host starts, is up for `healthyMs` after ready (or never ready), dies; the delay main then waits. */
  const dies = async (healthyMs?: number) => {
    const started = hosts.length;
    restarts.shift()?.();
    const host = await eventually(() => hosts[started], 'the host spawned');
    if (healthyMs !== undefined) {
      host.ready();
      clock += healthyMs;
    }
    host.exit();
    return delays.at(-1);
  };
  supervisor.start();
  const crashing = [];
  for (let i = 0; i < 7; i++) crashing.push(await dies());
  assert.deepEqual(crashing, [1000, 2000, 4000, 8000, 16000, 30_000, 30_000]);
  assert.equal(await dies(59_999), 30_000, 'up just short of a minute: still backing off');
  assert.equal(await dies(60_000), 1000, 'a minute of good health resets the backoff');
  assert.equal(await dies(), 2000);
  assert.equal(restarts.length, 1, 'one restart pending at a time');
  await supervisor.stop(1000);
});
