/**
 * The daemon's HTTP/WebSocket face on 127.0.0.1: the API contract behind a random token.
 * - POST /api/<method> with JSON params -> JSON result.
 * - WS_PATH (token in the Authorization header or ?token=): RPC {id, method, params} -> {id, result} |
 *   {id, error}, and every engine event pushed as {event}. The CLI's `events --follow` uses it too.
 * - POST UPLOAD_PATH, POST DOWNLOAD_TICKET_PATH and GET /download/<ticket>: see transfers.ts.
 * - Anything else: the built renderer (static.ts), without a token.
 * Every request must be addressed to a loopback name (DNS rebinding).
 */
import { once } from 'node:events';
import { mkdir, open, readFile, rename, unlink } from 'node:fs/promises';
import { createServer, STATUS_CODES, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { WebSocketServer, type WebSocket } from 'ws';
import { DOWNLOAD_TICKET_PATH, UPLOAD_PATH, WS_PATH, isMethod, parseParams, type Method, type Params } from '../api/contract.ts';
import type { Engine } from '../engine/engine.ts';
import { SafeVaultError, isSafeVaultError, type ErrorCode } from '../api/errors.ts';
import { daemonFile, httpStatus, type DaemonInfo, type ErrorBody } from './protocol.ts';
import { securityHeaders, serveStatic } from './static.ts';
import { DOWNLOAD_PREFIX, Transfers } from './transfers.ts';

/** Only what the server uses of the engine: the API methods, the event feed and the log. */
export type ServedEngine = Pick<Engine, Method | 'onEvent' | 'log'>;

export interface ServerOptions {
  dataDir: string;
  port?: number;
  /** The built renderer; defaults to `<repo>/out/renderer`. */
  uiDir?: string;
  /** Largest upload accepted, in bytes (default 16 GiB). */
  maxUploadBytes?: number;
  /** The clock download tickets expire by (tests move it). */
  now?: () => number;
}

export interface RunningServer {
  url: string;
  token: string;
  close(): Promise<void>;
}

const MAX_BODY_BYTES = 1024 * 1024;
/** A socket that stops reading is dropped rather than letting its backlog grow without bound. */
const MAX_SOCKET_BACKLOG = 16 * 1024 * 1024;
export const DEFAULT_UI_DIR = join(import.meta.dirname, '..', '..', 'out', 'renderer');

/** A refusal by the HTTP layer itself, whose status isn't its code's usual one (401, 405, 411). */
class HttpError extends SafeVaultError {
  readonly status: number;
  constructor(status: number, code: ErrorCode, message: string) {
    super(code, message);
    this.status = status;
  }
}

export async function startServer(engine: ServedEngine, options: ServerOptions): Promise<RunningServer> {
  // The token and port outlive a restart (in a 0600 file), so an open window reconnects by itself.
  const session = await readSession(options.dataDir);
  const token = session?.token ?? randomBytes(32).toString('hex');
  const tokenBytes = Buffer.from(token);
  const uiDir = options.uiDir ?? DEFAULT_UI_DIR;
  const transfers = new Transfers(engine, options.dataDir, { maxUpload: options.maxUploadBytes, now: options.now });
  await transfers.sweep();
  let allowedHosts = new Set<string>();
  let port = 0;
  let url = '';

  /** Throws unless the request is addressed to us by a loopback name (DNS rebinding). */
  const checkHost = (req: IncomingMessage): void => {
    if (!allowedHosts.has(req.headers.host?.toLowerCase() ?? '')) {
      throw new HttpError(403, 'unauthorized', `refused: requests must be addressed to ${[...allowedHosts].join(' or ')}`);
    }
  };

  /** Throws unless the request carries the token (browsers can't set headers on a WebSocket, so it may also take ?token=). */
  const checkToken = (req: IncomingMessage, tokenInQuery: boolean): void => {
    const header = req.headers.authorization;
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

  const refused = (req: IncomingMessage, err: unknown): { status: number; body: ErrorBody } => {
    const described = describe(err);
    const line = `${req.method} ${new URL(req.url ?? '/', 'http://localhost').pathname}: ${described.body.error.message}`;
    if (described.body.error.code === 'internal') engine.log.error(line);
    else if (described.status === 401 || described.status === 403) engine.log.warn(`refused ${line}`);
    else engine.log.info(`refused ${line}`);
    return described;
  };

  const call = async (method: Method, params: unknown): Promise<unknown> => {
    const parsed = parseParams(method, params);
    const fn = engine[method] as (params: Params<Method>) => Promise<unknown>;
    return (await fn.call(engine, parsed)) ?? null;
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const { pathname, searchParams } = new URL(req.url ?? '/', 'http://localhost');
    try {
      checkHost(req);
      if (pathname.startsWith(DOWNLOAD_PREFIX)) {
        // The ticket in the path is the credential: a browser navigates there with no header to give.
        if (req.method !== 'GET') throw new HttpError(405, 'bad-request', 'use GET for a download');
        return await transfers.download(pathname.slice(DOWNLOAD_PREFIX.length), res, securityHeaders(port));
      }
      const isApi = pathname.startsWith('/api/') || pathname === UPLOAD_PATH || pathname === DOWNLOAD_TICKET_PATH;
      if (!isApi) return await serveStatic(uiDir, pathname, req, res, port);
      checkToken(req, false);
      if (req.method !== 'POST') throw new HttpError(405, 'bad-request', `use POST for ${pathname}`);
      if (pathname === UPLOAD_PATH) return send(res, 200, await transfers.upload(req, searchParams));
      if (pathname === DOWNLOAD_TICKET_PATH) return send(res, 200, await transfers.ticket(await readJson(req), url));
      const method = pathname.slice('/api/'.length);
      if (!isMethod(method)) throw new SafeVaultError('not-found', `no such API method: ${method}`);
      send(res, 200, await call(method, await readJson(req)));
    } catch (err) {
      const { status, body } = refused(req, err);
      if (res.headersSent) return void res.destroy(); // a download failed mid-stream: the browser sees it cut
      // Don't wait for the rest of a body we refused (an oversized JSON or upload, or an upload refused up front).
      if (status === 413 || pathname === UPLOAD_PATH) res.setHeader('Connection', 'close');
      send(res, status, body);
    }
  };

  const sockets = new WebSocketServer({ noServer: true, maxPayload: MAX_BODY_BYTES });
  const server = createServer((req, res) => void handle(req, res));
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    try {
      checkHost(req);
      // Browsers send their page's origin on a WebSocket (no CORS applies to it): only our own window may connect.
      const origin = req.headers.origin;
      if (origin !== undefined && !allowedHosts.has(origin.replace(/^http:\/\//, '').toLowerCase())) {
        throw new HttpError(403, 'unauthorized', `refused: a WebSocket from ${origin}`);
      }
      checkToken(req, true);
      const { pathname } = new URL(req.url ?? '/', 'http://localhost');
      if (pathname !== WS_PATH) throw new SafeVaultError('not-found', `only ${WS_PATH} accepts WebSocket connections`);
    } catch (err) {
      const { status, body } = refused(req, err);
      const text = JSON.stringify(body);
      socket.end(
        `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nConnection: close\r\nContent-Type: application/json\r\n` +
          `Content-Length: ${Buffer.byteLength(text)}\r\n\r\n${text}`,
      );
      return;
    }
    sockets.handleUpgrade(req, socket, head, (ws) => serveSocket(ws));
  });

  /** One page's socket: its calls answered in any order (each by its id), every event pushed. */
  const serveSocket = (ws: WebSocket): void => {
    const push = (message: unknown) => {
      if (ws.readyState !== ws.OPEN) return;
      if (ws.bufferedAmount > MAX_SOCKET_BACKLOG) ws.terminate();
      else ws.send(JSON.stringify(message));
    };
    const unsubscribe = engine.onEvent((event) => push({ event }));
    ws.on('message', (data) => {
      let id: unknown = null;
      void (async () => {
        let request: { id?: unknown; method?: unknown; params?: unknown };
        try {
          request = JSON.parse(String(data));
        } catch {
          throw new SafeVaultError('bad-request', 'a message must be JSON: {id, method, params}');
        }
        if (typeof request !== 'object' || request === null) throw new SafeVaultError('bad-request', 'a message must be an object: {id, method, params}');
        id = request.id ?? null;
        if (typeof id !== 'string' && typeof id !== 'number') throw new SafeVaultError('bad-request', 'a call needs an id (a string or number)');
        const method = request.method;
        if (typeof method !== 'string' || !isMethod(method)) throw new SafeVaultError('not-found', `no such API method: ${String(method)}`);
        push({ id, result: await call(method, request.params) });
      })().catch((err: unknown) => {
        const { body } = describe(err);
        if (!isSafeVaultError(err) || err.code === 'bad-request' || err.code === 'not-found') engine.log.debug(`refused socket call: ${body.error.message}`);
        push({ id, error: body.error });
      });
    });
    ws.on('close', unsubscribe);
    ws.on('error', () => ws.terminate());
  };

  await listen(server, options.port ?? session?.port ?? 0, options.port === undefined);
  port = (server.address() as AddressInfo).port;
  allowedHosts = new Set([`127.0.0.1:${port}`, `localhost:${port}`]);
  url = `http://127.0.0.1:${port}`;
  const file = daemonFile(options.dataDir);
  try {
    await mkdir(options.dataDir, { recursive: true, mode: 0o700 });
    await writePrivateJson(file, { url, token, pid: process.pid } satisfies DaemonInfo);
    await writePrivateJson(sessionFile(options.dataDir), { token, port } satisfies Session);
  } catch (err) {
    server.close();
    throw err;
  }
  engine.log.info(`daemon listening at ${url}`);

  return {
    url,
    token,
    async close() {
      transfers.close();
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
  console.error('safevault daemon: internal error:', err); // the stack, for the operator; the engine log gets the one line
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

interface Session { token: string; port: number }
const sessionFile = (dataDir: string): string => join(dataDir, 'window-session.json');

/** The last daemon's token and port, if a readable, well-formed file says so. */
async function readSession(dataDir: string): Promise<Session | undefined> {
  try {
    const { token, port } = JSON.parse(await readFile(sessionFile(dataDir), 'utf8')) as Partial<Session>;
    if (typeof token === 'string' && /^[0-9a-f]{64}$/.test(token) && Number.isInteger(port) && port! > 0 && port! < 65536) return { token, port: port! };
  } catch {
    // none yet, or unreadable: a new session
  }
  return undefined;
}

/** Listens on `port`; a remembered port that is taken now falls back to any free one. */
async function listen(server: Server, port: number, fallback: boolean): Promise<void> {
  try {
    server.listen({ host: '127.0.0.1', port });
    await once(server, 'listening');
  } catch (err) {
    if (!fallback || port === 0 || (err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
    server.listen({ host: '127.0.0.1', port: 0 });
    await once(server, 'listening');
  }
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
