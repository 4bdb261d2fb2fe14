/** The daemon's HTTP/WebSocket server in front of the real engine: token, Host check, status codes, event stream. */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { openEngine, type Engine } from '../electron/engine/engine.ts';
import { connect } from '../electron/daemon/client.ts';
import { startServer, type RunningServer } from '../electron/daemon/server.ts';
import type { RecordedEvent } from '../electron/api/events.ts';

/** A raw request, so tests control every header (fetch won't let us forge Host). */
function call(url: string, path: string, options: { headers?: Record<string, string>; body?: string; method?: string } = {}) {
  return new Promise<{ status: number; body: any }>((resolve, reject) => {
    const req = request(url + path, { method: options.method ?? 'POST', headers: options.headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (part: string) => (text += part));
      res.on('end', () => resolve({ status: res.statusCode!, body: text ? JSON.parse(text) : undefined }));
    });
    req.on('error', reject);
    req.end(options.body);
  });
}

/** Resolves with the HTTP status a refused WebSocket handshake got. */
function refusedStatus(ws: WebSocket) {
  return new Promise<number>((resolve, reject) => {
    ws.on('unexpected-response', (req, res) => {
      req.destroy();
      resolve(res.statusCode!);
    });
    ws.on('open', () => reject(new Error('the WebSocket was accepted')));
  });
}

describe('daemon server', () => {
  let dataDir: string;
  let engine: Engine;
  let server: RunningServer;
  let auth: Record<string, string>;

  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'safevault-daemon-'));
    engine = await openEngine({ dataDir, vaults: 6 });
    server = await startServer(engine, { dataDir });
    auth = { authorization: `Bearer ${server.token}` };
  });
  after(async () => {
    await server?.close();
    await engine?.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  test('binds to loopback and advertises url, token and pid in a 0600 daemon.json', async () => {
    assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.match(server.token, /^[0-9a-f]{64}$/);
    const file = join(dataDir, 'daemon.json');
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    assert.deepEqual(JSON.parse(await readFile(file, 'utf8')), { url: server.url, token: server.token, pid: process.pid });
  });

  test('listVaults works with the token', async () => {
    const { status, body } = await call(server.url, '/api/listVaults', { headers: auth, body: '{}' });
    assert.equal(status, 200);
    assert.equal(body.length, 6);
  });

  test('requests without the token or with a wrong one get 401 and change nothing', async () => {
    const wrong = `Bearer ${'0'.repeat(64)}`;
    for (const headers of [{} as Record<string, string>, { authorization: wrong }, { authorization: server.token }, { authorization: 'Bearer short' }]) {
      const { status, body } = await call(server.url, '/api/addVault', { headers, body: '{}' });
      assert.equal(status, 401);
      assert.equal(body.error.code, 'unauthorized');
    }
    assert.equal((await engine.listVaults({})).length, 6);
  });

  test('a request addressed to another host name is refused (DNS rebinding)', async () => {
    const port = new URL(server.url).port;
    for (const host of [`evil.example:${port}`, `127.0.0.1:${Number(port) + 1}`, '127.0.0.1']) {
      const { status } = await call(server.url, '/api/addVault', { headers: { ...auth, host }, body: '{}' });
      assert.equal(status, 403, host);
    }
    assert.equal((await call(server.url, '/api/listVaults', { headers: { ...auth, host: `localhost:${port}` } })).status, 200);
    assert.equal((await engine.listVaults({})).length, 6);
  });

  test('an unknown method is 404, a GET is 405', async () => {
    const unknown = await call(server.url, '/api/formatDisk', { headers: auth, body: '{}' });
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body.error.code, 'not-found');
    assert.equal((await call(server.url, '/api/listVaults', { headers: auth, method: 'GET' })).status, 405);
  });

  test('bad params and bad JSON are 400 with a one-line message', async () => {
    for (const body of ['{"as":"../x","path":"/etc/passwd"}', '{"as":"alice","path":"relative"}', '{"as":"alice","path":"/x","extra":1}', '{nope']) {
      const res = await call(server.url, '/api/putChunk', { headers: auth, body });
      assert.equal(res.status, 400, body);
      assert.equal(res.body.error.code, 'bad-request');
      assert.doesNotMatch(res.body.error.message, /\n/);
    }
  });

  test('a body over 1 MiB is 413', async () => {
    const res = await call(server.url, '/api/listVaults', { headers: auth, body: ' '.repeat(1024 * 1024 + 1) });
    assert.equal(res.status, 413);
    assert.equal(res.body.error.code, 'too-large');
  });

  test('the client turns error JSON back into SafeVaultErrors', async () => {
    const api = await connect(dataDir);
    await assert.rejects(api.removeChunk({ as: 'mallory', name: 'ab'.repeat(32) }), (err: any) => {
      assert.equal(err.name, 'SafeVaultError');
      assert.ok(['non-owner', 'not-found'].includes(err.code), err.code);
      return true;
    });
    await assert.rejects(api.listFiles({ as: '../x' }), { name: 'SafeVaultError', code: 'bad-request' });
  });

  test('the event stream refuses a missing or wrong token', async () => {
    const events = server.url.replace('http', 'ws') + '/api/ws';
    assert.equal(await refusedStatus(new WebSocket(events)), 401);
    assert.equal(await refusedStatus(new WebSocket(`${events}?token=${'1'.repeat(64)}`)), 401);
    assert.equal(await refusedStatus(new WebSocket(events, { headers: { ...auth, host: 'evil.example' } })), 403);
  });

  test('with the token (header or ?token=), the event stream carries events after putChunk', async () => {
    const file = join(dataDir, 'chunk.bin');
    await writeFile(file, randomBytes(4096));
    const viaQuery = new WebSocket(`${server.url.replace('http', 'ws')}/api/ws?token=${server.token}`);
    await once(viaQuery, 'open');
    const queryEvents: RecordedEvent[] = [];
    viaQuery.on('message', (data) => queryEvents.push(JSON.parse(String(data)).event));
    const headerEvents: RecordedEvent[] = [];
    const unsubscribe = await (await connect(dataDir)).followEvents((event) => headerEvents.push(event));

    const { name } = await engine.putChunk({ as: 'alice', path: file });
    const stored = (events: RecordedEvent[]) => events.some((e) => e.type === 'chunk.stored' && e.chunk === name);
    for (let i = 0; i < 100 && !(stored(queryEvents) && stored(headerEvents)); i++) await new Promise((r) => setTimeout(r, 20));
    assert.ok(stored(headerEvents), 'the header-authenticated stream saw chunk.stored');
    assert.ok(stored(queryEvents), 'the query-authenticated stream saw chunk.stored');
    unsubscribe();
    viaQuery.close();

    // POST /api/events is the `events` method: history.
    const history = await call(server.url, '/api/events', { headers: auth, body: '{}' });
    assert.equal(history.status, 200);
    assert.ok(stored(history.body), 'POST /api/events returns past events');
    assert.equal((await call(server.url, '/api/events', { headers: auth, method: 'GET' })).status, 405);
  });

  test('close() removes daemon.json', async () => {
    const otherDir = await mkdtemp(join(tmpdir(), 'safevault-daemon-'));
    const other = await startServer(engine, { dataDir: otherDir });
    assert.ok(existsSync(join(otherDir, 'daemon.json')));
    await other.close();
    assert.ok(!existsSync(join(otherDir, 'daemon.json')));
    await rm(otherDir, { recursive: true, force: true });
  });

  test('a restarted daemon keeps its token and port, so an open window reconnects; a taken port falls back', async () => {
    const otherDir = await mkdtemp(join(tmpdir(), 'safevault-daemon-'));
    const first = await startServer(engine, { dataDir: otherDir });
    await first.close();
    assert.equal((await stat(join(otherDir, 'window-session.json'))).mode & 0o777, 0o600);
    const second = await startServer(engine, { dataDir: otherDir });
    assert.equal(second.url, first.url);
    assert.equal(second.token, first.token);
    // While the second runs, its port is taken: a third daemon on the same data dir gets another one.
    const third = await startServer(engine, { dataDir: otherDir });
    assert.notEqual(third.url, second.url);
    assert.equal(third.token, first.token);
    await third.close();
    await second.close();
    await rm(otherDir, { recursive: true, force: true });
  });
});
