/**
 * The daemon's HTTP/WebSocket face: the API contract on 127.0.0.1 behind a per-start random token.
 * POST /api/<method> with JSON params -> JSON result; GET /api/events upgrades to a WebSocket of RecordedEvents.
 */
import { once } from 'node:events';
import { mkdir, open, readFile, rename, unlink } from 'node:fs/promises';
import { createServer, STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { WebSocketServer } from 'ws';
import { isMethod, parseParams, type Method, type Params } from '../api/contract.ts';
import type { Engine } from '../engine/engine.ts';
import { SafeVaultError, isSafeVaultError, type ErrorCode } from '../api/errors.ts';
import { EVENTS_PATH, daemonFile, httpStatus, type DaemonInfo, type ErrorBody } from './protocol.ts';

/** Only what the server uses of the engine: the API methods and the event feed. */
export type ServedEngine = Pick<Engine, Method | 'onEvent'>;

export interface RunningServer {
  url: string;
  token: string;
  close(): Promise<void>;
}

const MAX_BODY_BYTES = 1024 * 1024;
/** A follower that stops reading is dropped rather than letting its backlog grow without bound. */
const MAX_SOCKET_BACKLOG = 16 * 1024 * 1024;

/** A refusal by the HTTP layer itself, whose status isn't its code's usual one (401, 405, 426). */
class HttpError extends SafeVaultError {
  readonly status: number;
  constructor(status: number, code: ErrorCode, message: string) {
    super(code, message);
    this.status = status;
  }
}

export async function startServer(engine: ServedEngine, options: { dataDir: string; port?: number }): Promise<RunningServer> {
  const token = randomBytes(32).toString('hex');
  const tokenBytes = Buffer.from(token);
  let allowedHosts = new Set<string>();

  /** Throws unless the request is addressed to us by a loopback name (DNS rebinding) and carries the token. */
  const admit = (req: IncomingMessage, tokenInQuery: boolean): void => {
    if (!allowedHosts.has(req.headers.host?.toLowerCase() ?? '')) {
      throw new HttpError(403, 'unauthorized', `refused: requests must be addressed to ${[...allowedHosts].join(' or ')}`);
    }
    const header = req.headers.authorization;
    // Browsers can't set headers on a WebSocket, so the event stream also takes ?token=.
    const given = header?.startsWith('Bearer ')
      ? header.slice('Bearer '.length)
      : tokenInQuery
        ? new URL(req.url ?? '/', 'http://localhost').searchParams.get('token')
        : null;
    const givenBytes = Buffer.from(given ?? '');
    if (givenBytes.length !== tokenBytes.length || !timingSafeEqual(givenBytes, tokenBytes)) {
      throw new HttpError(401, 'unauthorized', `missing or wrong token (it is in ${daemonFile(options.dataDir)})`);
    }
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    try {
      admit(req, false);
      const { pathname } = new URL(req.url ?? '/', 'http://localhost');
      const method = pathname.startsWith('/api/') ? pathname.slice('/api/'.length) : '';
      if (!isMethod(method)) throw new SafeVaultError('not-found', `no such API method: ${method || pathname}`);
      // EVENTS_PATH is both the `events` method (POST: history) and the live stream (GET + Upgrade, handled below).
      if (req.method === 'GET' && pathname === EVENTS_PATH) throw new HttpError(426, 'bad-request', `GET ${EVENTS_PATH} is a WebSocket upgrade`);
      if (req.method !== 'POST') throw new HttpError(405, 'bad-request', `use POST for /api/${method}`);
      const params = parseParams(method, await readJson(req));
      const call = engine[method] as (params: Params<Method>) => Promise<unknown>;
      send(res, 200, (await call.call(engine, params)) ?? null);
    } catch (err) {
      const { status, body } = describe(err);
      if (status === 413) res.setHeader('Connection', 'close'); // don't wait for the rest of an oversized body
      send(res, status, body);
    }
  };

  const sockets = new WebSocketServer({ noServer: true });
  const server = createServer((req, res) => void handle(req, res));
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    try {
      admit(req, true);
      const { pathname } = new URL(req.url ?? '/', 'http://localhost');
      if (pathname !== EVENTS_PATH) throw new SafeVaultError('not-found', `only ${EVENTS_PATH} accepts WebSocket connections`);
    } catch (err) {
      const { status, body } = describe(err);
      const text = JSON.stringify(body);
      socket.end(
        `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nConnection: close\r\nContent-Type: application/json\r\n` +
          `Content-Length: ${Buffer.byteLength(text)}\r\n\r\n${text}`,
      );
      return;
    }
    sockets.handleUpgrade(req, socket, head, (ws) => {
      const unsubscribe = engine.onEvent((event) => {
        if (ws.bufferedAmount > MAX_SOCKET_BACKLOG) ws.terminate();
        else ws.send(JSON.stringify(event));
      });
      ws.on('close', unsubscribe);
      ws.on('error', () => ws.terminate());
    });
  });

  server.listen({ host: '127.0.0.1', port: options.port ?? 0 });
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  allowedHosts = new Set([`127.0.0.1:${port}`, `localhost:${port}`]);
  const url = `http://127.0.0.1:${port}`;
  const file = daemonFile(options.dataDir);
  try {
    await mkdir(options.dataDir, { recursive: true, mode: 0o700 });
    await writePrivateJson(file, { url, token, pid: process.pid } satisfies DaemonInfo);
  } catch (err) {
    server.close();
    throw err;
  }

  return {
    url,
    token,
    async close() {
      for (const ws of sockets.clients) ws.close(1001, 'the daemon is stopping');
      const closed = new Promise((resolve) => server.close(resolve));
      server.closeAllConnections();
      await closed;
      // Only remove the file if it is still ours (not rewritten by a later daemon).
      const current = await readFile(file, 'utf8').catch(() => '');
      if (current.includes(token)) await unlink(file).catch(() => {});
    },
  };
}

/** Status and body for any thrown value; unexpected errors become a generic 500 and are logged here. */
function describe(err: unknown): { status: number; body: ErrorBody } {
  if (isSafeVaultError(err)) {
    const status = err instanceof HttpError ? err.status : httpStatus[err.code] ?? 500;
    return { status, body: { error: { code: err.code, message: err.message } } };
  }
  console.error('safevault daemon: internal error:', err);
  return { status: 500, body: { error: { code: 'internal', message: 'internal error in the daemon (details are in its log)' } } };
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(text),
    'Cache-Control': 'no-store',
    ...(status === 401 && { 'WWW-Authenticate': 'Bearer' }),
  });
  res.end(text);
}

/** The JSON body (undefined if empty), refusing more than MAX_BODY_BYTES before buffering it. */
function readJson(req: IncomingMessage): Promise<unknown> {
  const tooLarge = new SafeVaultError('too-large', `request bodies are limited to ${MAX_BODY_BYTES} bytes`);
  if (Number(req.headers['content-length'] ?? 0) > MAX_BODY_BYTES) return Promise.reject(tooLarge);
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let size = 0;
    // Listeners rather than for-await: breaking out of the iterator would destroy the socket before we can answer 413.
    req.on('data', (part: Buffer) => {
      size += part.length;
      if (size > MAX_BODY_BYTES) reject(tooLarge); // settles once; the rest is read and dropped
      else parts.push(part);
    });
    req.on('error', reject);
    req.on('end', () => {
      const text = Buffer.concat(parts).toString('utf8');
      try {
        resolve(text.trim() ? JSON.parse(text) : undefined);
      } catch {
        reject(new SafeVaultError('bad-request', 'the request body is not valid JSON'));
      }
    });
  });
}

/** Atomically replaces `file` with JSON only its owner can read: created 0600 under a temp name, then renamed. */
async function writePrivateJson(file: string, value: unknown): Promise<void> {
  const temp = `${file}.${process.pid}.tmp`;
  await unlink(temp).catch(() => {}); // a leftover could have other permissions; 'wx' below then guarantees ours
  const handle = await open(temp, 'wx', 0o600);
  try {
    await handle.writeFile(`${JSON.stringify(value)}\n`);
  } finally {
    await handle.close();
  }
  await rename(temp, file);
}
