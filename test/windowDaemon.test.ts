/** The daemon's browser wire over real HTTP and WebSocket: RPC socket, static window with its CSP, uploads, download tickets. */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { request, type IncomingHttpHeaders } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';
import type { RecordedEvent } from '../electron/api/events.ts';
import { openEngine, type Engine } from '../electron/engine/engine.ts';
import { startServer, type RunningServer } from '../electron/daemon/server.ts';
import { attachment } from '../electron/daemon/transfers.ts';
import { eventually, tempDir } from './helpers.ts';

interface Answer { status: number; headers: IncomingHttpHeaders; body: Buffer }

/** A raw request (fetch normalises paths and forbids some headers); `body` may be a Buffer or written by `write`. */
function http(url: string, path: string, options: { method?: string; headers?: Record<string, string | number>; body?: Buffer | string } = {}) {
  return new Promise<Answer>((resolve, reject) => {
    const req = request(url + path, { method: options.method ?? 'GET', headers: options.headers }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (p: Buffer) => parts.push(p));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(parts) }));
    });
    req.on('error', reject);
    req.end(options.body);
  });
}
const json = (a: Answer) => JSON.parse(a.body.toString('utf8'));
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** A page's socket: calls by id, pushed events collected. */
async function socket(url: string, token: string) {
  const ws = new WebSocket(`${url.replace('http', 'ws')}/api/ws?token=${token}`);
  await once(ws, 'open');
  const events: RecordedEvent[] = [];
  const waiting = new Map<unknown, (reply: any) => void>();
  ws.on('message', (data) => {
    const message = JSON.parse(String(data));
    if (message.event) events.push(message.event);
    else waiting.get(message.id)?.(message);
  });
  let next = 0;
  const send = (raw: string, id: unknown) => new Promise<any>((resolve) => {
    waiting.set(id, resolve);
    ws.send(raw);
  });
  return {
    ws,
    events,
    call: (method: string, params: unknown) => {
      const id = ++next;
      return send(JSON.stringify({ id, method, params }), id);
    },
    /** Sends a raw message; its answer comes back with `expectId` (null when the message had no usable id). */
    raw: send,
  };
}

describe('daemon window wire', () => {
  // Made here, not in before(): helpers' tempDir removes its dir after the hook or test that made it.
  const dataDir = tempDir();
  const uiDir = tempDir();
  let engine: Engine;
  let server: RunningServer;
  let auth: Record<string, string>;
  let clock = Date.now();

  before(async () => {
    writeFileSync(join(uiDir, 'index.html'), '<!doctype html><title>SafeVault</title><script type="module" src="/assets/app.js"></script>');
    mkdirSync(join(uiDir, 'assets'));
    writeFileSync(join(uiDir, 'assets', 'app.js'), 'console.log("window")');
    writeFileSync(join(dataDir, 'secret.txt'), 'not for the web');
    engine = await openEngine({ dataDir, vaults: 6 });
    server = await startServer(engine, { dataDir, uiDir, now: () => clock });
    auth = { authorization: `Bearer ${server.token}` };
  });
  after(async () => {
    await server?.close();
    await engine?.close();
  });

  const upload = (query: string, body: Buffer, headers: Record<string, string | number> = {}) =>
    http(server.url, `/upload?${query}`, { method: 'POST', headers: { ...auth, 'content-length': body.length, ...headers }, body });
  const uploads = () => readdirSync(join(dataDir, 'uploads'));

  test('socket RPC: a good call, a validation error, an unknown method, bad JSON, no id', async () => {
    const page = await socket(server.url, server.token);
    const vaults = await page.call('listVaults', {});
    assert.equal(vaults.result.length, 6);
    const bad = await page.call('listFiles', { as: '../x' });
    assert.equal(bad.error.code, 'bad-request');
    assert.match(bad.error.message, /^listFiles: as: /);
    const unknown = await page.call('formatDisk', {});
    assert.equal(unknown.error.code, 'not-found');
    assert.equal((await page.raw('{nope', null)).error.code, 'bad-request');
    assert.equal((await page.raw('{"method":"status"}', null)).error.code, 'bad-request');
    assert.equal((await page.raw('[1]', null)).error.code, 'bad-request');
    page.ws.close();
  });

  test('socket refuses no token, a wrong token and a foreign Host; events arrive as {event}', async () => {
    const refused = (ws: WebSocket) =>
      new Promise<number>((resolve, reject) => {
        ws.on('unexpected-response', (req, res) => (req.destroy(), resolve(res.statusCode!)));
        ws.on('open', () => reject(new Error('accepted')));
      });
    const base = `${server.url.replace('http', 'ws')}/api/ws`;
    assert.equal(await refused(new WebSocket(base)), 401);
    assert.equal(await refused(new WebSocket(`${base}?token=${'a'.repeat(64)}`)), 401);
    assert.equal(await refused(new WebSocket(`${base}?token=${server.token}`, { headers: { host: 'evil.example' } })), 403);
    assert.equal(await refused(new WebSocket(`${base}?token=${server.token}`, { origin: 'http://evil.example' })), 403);
    const own = new WebSocket(`${base}?token=${server.token}`, { origin: server.url });
    await once(own, 'open');
    own.close();
    assert.ok((await engine.logs({ level: 'warn' })).some((l) => /refused GET \/api\/ws: missing or wrong token/.test(l.message)), 'refusals are logged');

    const page = await socket(server.url, server.token);
    const added = await page.call('addVault', {});
    await eventually(() => page.events.some((e) => e.type === 'vault.joined' && e.vault === added.result.id), 'vault.joined pushed');
    page.ws.close();
  });

  test('the window is served without a token, with a strict CSP; the API still needs the token', async () => {
    const page = await http(server.url, '/');
    assert.equal(page.status, 200);
    assert.match(page.body.toString(), /<title>SafeVault/);
    const port = new URL(server.url).port;
    const csp = String(page.headers['content-security-policy']);
    for (const part of ["default-src 'self'", "script-src 'self'", "frame-ancestors 'none'", `connect-src 'self' ws://127.0.0.1:${port}`, "object-src 'none'"]) {
      assert.ok(csp.includes(part), part);
    }
    assert.doesNotMatch(csp, /script-src[^;]*unsafe/);
    assert.equal(page.headers['x-content-type-options'], 'nosniff');
    assert.equal(page.headers['referrer-policy'], 'no-referrer');

    const script = await http(server.url, '/assets/app.js');
    assert.equal(script.headers['content-type'], 'text/javascript; charset=utf-8');
    assert.equal(script.body.toString(), 'console.log("window")');
    const route = await http(server.url, '/files/some-id');
    assert.match(route.body.toString(), /<title>SafeVault/, 'app routes fall back to index.html');
    assert.equal((await http(server.url, '/assets/missing.js')).status, 404);

    assert.equal((await http(server.url, '/api/status', { method: 'POST', body: '{}' })).status, 401);
    assert.equal((await http(server.url, '/upload?as=alice&name=x', { method: 'POST', headers: { 'content-length': 1 }, body: 'x' })).status, 401);
    assert.equal((await http(server.url, '/download-ticket', { method: 'POST', body: '{}' })).status, 401);
    assert.equal((await http(server.url, '/', { headers: { host: 'evil.example' } })).status, 403);
  });

  test('no path leaves the window folder, however it is spelled', async () => {
    for (const path of ['/../secret.txt', '/..%2fsecret.txt', '/%2e%2e/secret.txt', '/assets/..%2f..%2fsecret.txt', '/..%5csecret.txt', '/%2e%2e%5c%2e%2e%5cetc%5cpasswd', '/assets/%00.js', '/%E0%A4%A']) {
      const res = await http(server.url, path);
      assert.ok(res.status === 400 || res.status === 404, `${path}: ${res.status}`);
      assert.doesNotMatch(res.body.toString(), /not for the web|root:/, path);
    }
  });

  test('a window that is not built says how to build it', async () => {
    const otherDir = tempDir();
    const other = await startServer(engine, { dataDir: otherDir, uiDir: join(otherDir, 'nowhere') });
    try {
      const res = await http(other.url, '/');
      assert.equal(res.status, 503);
      assert.match(res.body.toString(), /npm run build/);
      assert.doesNotMatch(res.body.toString(), /\n./);
    } finally {
      await other.close();
    }
  });

  test('upload: a file bigger than the JSON limit is streamed, stored under its name with progress events, then downloads byte-identical', async () => {
    const page = await socket(server.url, server.token);
    const bytes = randomBytes(3 * 1024 * 1024 + 17);
    const op = randomBytes(16).toString('hex');
    const res = await upload(`as=alice&name=${encodeURIComponent('report 2026.pdf')}&op=${op}`, bytes);
    assert.equal(res.status, 200, res.body.toString());
    const file = json(res);
    assert.equal(file.name, 'report 2026.pdf');
    assert.equal(file.size, bytes.length);
    await eventually(() => page.events.some((e) => e.type === 'file.stored' && e.op === op), 'file.stored pushed');
    assert.ok(page.events.some((e) => e.type === 'file.progress' && e.op === op && e.direction === 'store'));
    assert.deepEqual(uploads(), [], 'the temp file is gone');
    page.ws.close();

    const ticket = await http(server.url, '/download-ticket', { method: 'POST', headers: auth, body: JSON.stringify({ as: 'alice', id: file.id }) });
    assert.equal(ticket.status, 200);
    const { url } = json(ticket);
    assert.match(url, new RegExp(`^${server.url}/download/[0-9a-f]{48}$`));
    const download = await http(server.url, new URL(url).pathname);
    assert.equal(download.status, 200);
    assert.equal(sha(download.body), sha(bytes));
    assert.equal(download.headers['content-disposition'], `attachment; filename="report 2026.pdf"; filename*=UTF-8''report%202026.pdf`);
    assert.equal(download.headers['content-type'], 'application/octet-stream');
    assert.equal((await http(server.url, new URL(url).pathname)).status, 404, 'a ticket is used once');
    await eventually(() => uploads().length === 0, 'the download temp file is removed once sent');
  });

  test('a download ticket expires after a minute; bad ticket requests are refused', async () => {
    const [file] = await engine.listFiles({ as: 'alice' });
    const { url } = json(await http(server.url, '/download-ticket', { method: 'POST', headers: auth, body: JSON.stringify({ as: 'alice', id: file!.id }) }));
    clock += 61_000;
    const late = await http(server.url, new URL(url).pathname);
    assert.equal(late.status, 404);
    assert.match(json(late).error.message, /used or has expired/);
    const other = await http(server.url, '/download-ticket', { method: 'POST', headers: auth, body: JSON.stringify({ as: 'alice', id: '0'.repeat(32) }) });
    assert.equal(other.status, 404);
    const bad = await http(server.url, '/download-ticket', { method: 'POST', headers: auth, body: JSON.stringify({ as: 'alice', id: 'x' }) });
    assert.equal(bad.status, 400);
    assert.equal((await http(server.url, '/download/nonsense')).status, 404);
  });

  test('uploads over the size limit or the free space are refused before the body is read, and change nothing', async () => {
    const before = await engine.listFiles({ as: 'alice' });
    // Only the headers go out: the daemon answers from Content-Length alone.
    const declare = (size: number) =>
      new Promise<Answer>((resolve, reject) => {
        const req = request(`${server.url}/upload?as=alice&name=huge.bin`, { method: 'POST', headers: { ...auth, 'content-length': size } }, (res) => {
          const parts: Buffer[] = [];
          res.on('data', (p: Buffer) => parts.push(p));
          res.on('end', () => (req.destroy(), resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(parts) })));
        });
        req.on('error', reject);
        req.flushHeaders();
      });
    const tooLarge = await declare(17 * 1024 ** 3);
    assert.equal(tooLarge.status, 413);
    assert.equal(json(tooLarge).error.code, 'too-large');
    const noSpace = await declare(4 * 1024 ** 3); // 7 vaults x 1 GiB / 4 copies < 4 GiB
    assert.equal(noSpace.status, 507);
    assert.equal(json(noSpace).error.code, 'no-space');
    assert.match(json(noSpace).error.message, /4 copies each/);
    assert.deepEqual(await engine.listFiles({ as: 'alice' }), before);
    assert.deepEqual(uploads(), []);
  });

  test('uploads with a bad name, no Content-Length or a bad client are refused and store nothing', async () => {
    const before = await engine.listFiles({ as: 'alice' });
    for (const query of ['as=alice&name=a%2Fb', 'as=alice&name=..', 'as=alice', 'as=..%2Fx&name=ok', 'as=alice&name=ok&op=123']) {
      const res = await upload(query, Buffer.from('hello'));
      assert.equal(res.status, 400, query);
      assert.equal(json(res).error.code, 'bad-request');
    }
    const empty = await upload('as=alice&name=folder', Buffer.alloc(0));
    assert.equal(empty.status, 400);
    assert.match(json(empty).error.message, /is empty \(or a folder\)/);
    const chunked = await http(server.url, '/upload?as=alice&name=ok', { method: 'POST', headers: { ...auth, 'transfer-encoding': 'chunked' }, body: 'hello' });
    assert.equal(chunked.status, 400);
    assert.match(json(chunked).error.message, /Content-Length is required/);
    assert.deepEqual(await engine.listFiles({ as: 'alice' }), before);
    assert.deepEqual(uploads(), []);
  });

  test('an odd name is stored as given and downloads with an RFC 5987 filename', async () => {
    const name = 'naïve "résumé"; 100%.txt';
    const res = await upload(`as=bob&name=${encodeURIComponent(name)}`, Buffer.from('odd'));
    assert.equal(res.status, 200, res.body.toString());
    assert.equal(json(res).name, name);
    const { url } = json(await http(server.url, '/download-ticket', { method: 'POST', headers: auth, body: JSON.stringify({ as: 'bob', id: json(res).id }) }));
    const download = await http(server.url, new URL(url).pathname);
    assert.equal(download.body.toString(), 'odd');
    const disposition = download.headers['content-disposition']!;
    assert.equal(disposition, attachment(name));
    assert.equal(disposition, `attachment; filename="na_ve _r_sum___ 100_.txt"; filename*=UTF-8''na%C3%AFve%20%22r%C3%A9sum%C3%A9%22%3B%20100%25.txt`);
    assert.equal(decodeURIComponent(disposition.split("UTF-8''")[1]!), name);
  });

  test('an upload whose connection closes mid-body leaves no temp file and no file', async () => {
    const before = await engine.listFiles({ as: 'alice' });
    const req = request(`${server.url}/upload?as=alice&name=cut.bin`, { method: 'POST', headers: { ...auth, 'content-length': 4 * 1024 * 1024 } });
    req.on('error', () => {});
    req.write(randomBytes(1024 * 1024));
    await eventually(() => uploads().length === 1, 'the upload is being written to a temp file');
    req.destroy();
    await eventually(() => uploads().length === 0, 'the temp file is removed');
    const errors = (await engine.logs({ level: 'error' })).filter((l) => /upload/.test(l.message));
    assert.deepEqual(errors, [], 'a cut upload is no internal error');
    assert.deepEqual(await engine.listFiles({ as: 'alice' }), before);
    assert.equal((await engine.status({})).opsInFlight, 0);
  });

  test('an upload cancelled over the socket while it is stored fails with cancelled and stores nothing', async () => {
    const page = await socket(server.url, server.token);
    const before = await engine.listFiles({ as: 'alice' });
    const op = randomBytes(16).toString('hex');
    const stop = engine.onEvent((e) => {
      if (e.type === 'file.progress' && e.op === op) void page.call('cancel', { op });
    });
    // Large enough that the store is still under way when the cancel arrives over the socket
    // (chunks are stored several at a time, so a few MiB can be done in one wave).
    const res = await upload(`as=alice&name=stopped.bin&op=${op}`, randomBytes(24 * 1024 * 1024));
    stop();
    assert.equal(res.status, 409);
    assert.match(json(res).error.message, /cancelled/);
    await eventually(() => page.events.some((e) => e.type === 'file.failed' && e.op === op && e.cancelled), 'file.failed (cancelled) pushed');
    assert.deepEqual(await engine.listFiles({ as: 'alice' }), before);
    assert.deepEqual(uploads(), []);
    page.ws.close();
  });

  test('a stale uploads folder is swept when the daemon starts', async () => {
    const otherDir = tempDir();
    mkdirSync(join(otherDir, 'uploads'));
    writeFileSync(join(otherDir, 'uploads', 'upload-left-behind'), 'x');
    const other = await startServer(engine, { dataDir: otherDir, uiDir });
    try {
      assert.deepEqual(readdirSync(join(otherDir, 'uploads')), []);
    } finally {
      await other.close();
    }
    assert.ok(readFileSync(join(dataDir, 'secret.txt')));
  });
});
