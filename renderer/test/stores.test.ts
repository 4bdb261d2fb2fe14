/** The stores against the fake client: what reaches the engine, and what bad input never does. */
import { beforeEach, describe, expect, test, vi } from 'vitest';
import { createPinia, setActivePinia } from 'pinia';
import { startSession } from '../src/stores/session.ts';
import { useAccounts, FIRST_IDENTITY } from '../src/stores/accounts.ts';
import { useConnection } from '../src/stores/connection.ts';
import { useEvents } from '../src/stores/events.ts';
import { useFiles } from '../src/stores/files.ts';
import { useNotices } from '../src/stores/notices.ts';
import { useTransfers, refusal } from '../src/stores/transfers.ts';
import { fakeClient, type FakeClient } from './fakeClient.ts';

let client: FakeClient;
let stop: () => void;

beforeEach(() => {
  localStorage.clear();
  setActivePinia(createPinia());
  client = fakeClient();
  stop = startSession(client);
  return () => stop();
});

const connected = async () => {
  client.connect();
  await vi.waitFor(() => expect(useAccounts().clients.length).toBeGreaterThan(0));
};
const called = (method: string) => client.calls.filter((c) => c.method === method);

describe('session', () => {
  test('nothing is asked before the connection is up; then everything loads and a first identity exists', async () => {
    expect(client.calls.filter((c) => c.method !== 'status' && c.method !== 'listVaults' && c.method !== 'timeSeries')).toEqual([]);
    await connected();
    expect(useConnection().state).toBe('connected');
    expect(useAccounts().current).toBe(FIRST_IDENTITY);
    expect(called('createClient')).toEqual([{ method: 'createClient', params: { label: FIRST_IDENTITY } }]);
    await vi.waitFor(() => expect(called('listFiles')).not.toEqual([]));
  });

  test('a lost connection is shown, and a reconnection catches up on missed events since the last seen', async () => {
    await connected();
    client.emit({ type: 'vault.joined', vault: 'abcd' });
    client.connect('disconnected');
    expect(useConnection().state).toBe('disconnected');
    client.connect('connected');
    await vi.waitFor(() => expect(called('events').at(-1)?.params).toEqual({ since: 1 }));
  });
});

describe('transfers', () => {
  const file = (name: string, bytes: string, type = 'text/plain') => new File([bytes], name, { type });

  test('refuses folders, empty files and names the contract forbids, with a message each', () => {
    expect(refusal({ file: file('photos', '', ''), isDirectory: true })).toMatch(/folder/);
    expect(refusal({ file: file('photos', '', '') })).toMatch(/empty or a folder/);
    expect(refusal({ file: file('empty.txt', '') })).toMatch(/empty/);
    expect(refusal({ file: file('bad\u0001name', 'x') })).toMatch(/control characters/);
    expect(refusal({ file: file('ünïcode ☂ name (1).txt', 'x') })).toBeNull();
  });

  test('a bad drop changes nothing and says why; the good files in it are stored', async () => {
    await connected();
    useTransfers().store([{ file: file('photos', '', ''), isDirectory: true }, { file: file('ok.txt', 'hello') }]);
    await vi.waitFor(() => expect(useFiles().files.map((f) => f.name)).toEqual(['ok.txt']));
    expect(called('storeFile')).toHaveLength(1);
    expect(useNotices().list.map((n) => n.text)).toContain('photos is a folder: drop the files inside it instead');
  });

  test('a drop while disconnected stores nothing and says so', async () => {
    await connected();
    client.connect('disconnected');
    useTransfers().store([{ file: file('ok.txt', 'hello') }]);
    expect(called('storeFile')).toEqual([]);
    expect(useNotices().list.at(-1)?.text).toMatch(/Not connected/);
  });

  test('progress events count chunks and bytes stored; cancel reaches the engine and the transfer says cancelled', async () => {
    await connected();
    const held = client.holdStores();
    useTransfers().store([{ file: file('big.bin', 'x'.repeat(100)) }]);
    await vi.waitFor(() => expect(useTransfers().list[0]).toMatchObject({ state: 'storing', sent: 100, stored: 50, chunks: 1 }));
    const op = useTransfers().list[0]!.op;
    expect(op).toMatch(/^[0-9a-f]{32}$/);
    await useTransfers().cancel(op);
    expect(called('cancel')).toEqual([{ method: 'cancel', params: { op } }]);
    await client.lastStore;
    held.finish();
    expect(useTransfers().list[0]!.state).toBe('cancelled');
    expect(useFiles().files).toEqual([]);
    expect(useNotices().list.filter((n) => n.kind === 'error')).toEqual([]);
  });
});

describe('files', () => {
  test('search and sort', async () => {
    await connected();
    client.files.set(FIRST_IDENTITY, [
      { id: 'a'.repeat(32), name: 'beta.txt', size: 30, chunks: ['x'], storedAt: 2 },
      { id: 'b'.repeat(32), name: 'Alpha.txt', size: 10, chunks: ['x', 'y'], storedAt: 1 },
      { id: 'c'.repeat(32), name: 'gamma.md', size: 20, chunks: ['x'], storedAt: 3 },
    ]);
    const files = useFiles();
    await files.load();
    expect(files.shown.map((f) => f.name)).toEqual(['gamma.md', 'beta.txt', 'Alpha.txt']);
    files.sortBy('name');
    expect(files.shown.map((f) => f.name)).toEqual(['Alpha.txt', 'beta.txt', 'gamma.md']);
    files.sortBy('name');
    expect(files.shown.map((f) => f.name)).toEqual(['gamma.md', 'beta.txt', 'Alpha.txt']);
    files.sortBy('size');
    expect(files.shown.map((f) => f.size)).toEqual([30, 20, 10]);
    files.query = 'TXT';
    expect(files.shown.map((f) => f.name)).toEqual(['beta.txt', 'Alpha.txt']);
  });

  test('switching identity lists that identity\'s files', async () => {
    await connected();
    client.files.set('bob', [{ id: 'd'.repeat(32), name: 'bobs.txt', size: 1, chunks: ['x'], storedAt: 1 }]);
    await useAccounts().create('bob');
    await vi.waitFor(() => expect(useFiles().files.map((f) => f.name)).toEqual(['bobs.txt']));
    expect(localStorage.getItem('safevault.identity')).toBe('bob');
  });

  test('health is fetched only for the ids asked for, and refetched only when fresh', async () => {
    await connected();
    const files = useFiles();
    await files.loadHealth(['a'.repeat(32)]);
    await files.loadHealth(['a'.repeat(32)]);
    expect(called('fileHealth')).toHaveLength(1);
    await files.loadHealth(['a'.repeat(32)], true);
    expect(called('fileHealth')).toHaveLength(2);
    expect(files.health['a'.repeat(32)]?.minOnlineHolders).toBe(4);
  });
});

describe('events', () => {
  test('the feed keeps each event once, newest first, and filters by type', async () => {
    await connected();
    const events = useEvents();
    const joined = client.emit({ type: 'vault.joined', vault: 'abcd' });
    client.emit({ type: 'vault.left', vault: 'abcd', graceful: false });
    events.ingest(joined);
    expect(events.feed.map((e) => e.type)).toEqual(['vault.left', 'vault.joined']);
    events.toggle('vault.left');
    expect(events.shown.map((e) => e.type)).toEqual(['vault.joined']);
  });
});
