/**
 * The browser's file wire: uploads streamed to a temp file and stored with putFile, and one-use
 * download tickets whose URL streams a retrieved file as an attachment. Neither ever holds a whole
 * file in memory; temp files live in `<dataDir>/uploads/` (0700), are removed whatever happens, and
 * the folder is swept when the daemon starts.
 */
import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open, rm, stat } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { methods, parseParams, type Api } from '../api/contract.ts';
import { fail } from '../api/errors.ts';
import { MIN_HOLDERS } from '../engine/constants.ts';

/** Default cap on one upload; the donated space is the other bound. */
export const DEFAULT_MAX_UPLOAD_BYTES = 16 * 1024 ** 3;
const TICKET_TTL_MS = 60_000;
export const DOWNLOAD_PREFIX = '/download/';

const ticketParams = methods.getFile.pick({ as: true, id: true });

/** What the transfers use of the API. */
type TransferApi = Pick<Api, 'putFile' | 'getFile' | 'listFiles' | 'status'>;

export class Transfers {
  readonly #api: TransferApi;
  readonly #dir: string;
  readonly #maxUpload: number;
  readonly #now: () => number;
  readonly #tickets = new Map<string, { as: string; id: string; name: string; expires: number; timer: NodeJS.Timeout }>();

  constructor(api: TransferApi, dataDir: string, options: { maxUpload?: number; now?: () => number } = {}) {
    this.#api = api;
    this.#dir = join(dataDir, 'uploads');
    this.#maxUpload = options.maxUpload ?? DEFAULT_MAX_UPLOAD_BYTES;
    this.#now = options.now ?? Date.now;
  }

  /** Removes whatever a previous run left behind (it crashed mid-transfer) and makes the folder. */
  async sweep(): Promise<void> {
    await rm(this.#dir, { recursive: true, force: true });
    await mkdir(this.#dir, { recursive: true, mode: 0o700 });
  }

  /**
   * POST ?as=&name=&op= with the raw bytes. Refuses before reading a byte when the declared size is
   * over the limit or the network's free space; removes the temp file whatever happens.
   */
  async upload(req: IncomingMessage, query: URLSearchParams): Promise<unknown> {
    const temp = join(this.#dir, `upload-${randomBytes(12).toString('hex')}`);
    const name = query.get('name') ?? fail('bad-request', 'upload: name is required');
    const params = parseParams('putFile', { as: query.get('as') ?? undefined, name, op: query.get('op') ?? undefined, path: temp });
    if (req.headers['transfer-encoding'] || req.headers['content-length'] === undefined) {
      fail('bad-request', 'upload: Content-Length is required (no chunked bodies)');
    }
    const size = Number(req.headers['content-length']);
    if (!Number.isSafeInteger(size) || size < 0) fail('bad-request', 'upload: Content-Length is not a size');
    // A browser hands over a dropped folder as an empty file: never worth storing from here.
    if (size === 0) fail('bad-request', `upload: ${name} is empty (or a folder)`);
    if (size > this.#maxUpload) fail('too-large', `upload: ${size} bytes is over the ${this.#maxUpload}-byte limit`);
    const status = await this.#api.status({});
    // Every chunk is kept MIN_HOLDERS times, so a file needs that many times its size of free space.
    const room = Math.floor(Math.max(0, status.donated - status.used) / MIN_HOLDERS);
    if (size > room) fail('no-space', `upload: ${size} bytes does not fit: the network has room for ${room} more bytes (${MIN_HOLDERS} copies each)`);

    try {
      const sink = createWriteStream('', { fd: await open(temp, 'wx', 0o600) });
      // A connection that closes mid-body errors the stream or ends it early; either way, nothing is stored.
      const cut = () => fail('bad-request', `upload: the connection closed after ${sink.bytesWritten} of ${size} bytes`);
      await pipeline(req, sink).catch(cut);
      if (sink.bytesWritten !== size || !req.complete) cut();
      return await this.#api.putFile(params);
    } finally {
      await rm(temp, { force: true });
    }
  }

  /** POST {as, id}: a one-use URL, valid for a minute, that streams that file. */
  async ticket(body: unknown, baseUrl: string): Promise<{ url: string }> {
    const parsed = ticketParams.safeParse(body ?? {});
    if (!parsed.success) fail('bad-request', `download ticket: ${parsed.error.issues[0]!.path.join('.')}: ${parsed.error.issues[0]!.message}`);
    const { as, id } = parsed.data!;
    const file = (await this.#api.listFiles({ as })).find((f) => f.id === id) ?? fail('not-found', `client ${as} has no file ${id}`);
    const ticket = randomBytes(24).toString('hex');
    // Expiry is checked on use; the timer only forgets tickets nobody used.
    const timer = setTimeout(() => this.#tickets.delete(ticket), TICKET_TTL_MS);
    timer.unref();
    this.#tickets.set(ticket, { as, id, name: file.name, expires: this.#now() + TICKET_TTL_MS, timer });
    return { url: `${baseUrl}${DOWNLOAD_PREFIX}${ticket}` };
  }

  /** GET of a ticket's URL: retrieves into a temp file, then streams it as an attachment. The ticket is spent first. */
  async download(ticket: string, res: ServerResponse, headers: Record<string, string>): Promise<void> {
    const entry = this.#tickets.get(ticket);
    this.#tickets.delete(ticket);
    clearTimeout(entry?.timer);
    if (!entry || entry.expires < this.#now()) fail('not-found', 'this download link was already used or has expired');
    const { as, id, name } = entry!;
    const temp = join(this.#dir, `download-${randomBytes(12).toString('hex')}`);
    try {
      await this.#api.getFile({ as, id, out: temp });
      res.writeHead(200, {
        ...headers,
        'Content-Type': 'application/octet-stream',
        'Content-Length': (await stat(temp)).size,
        'Content-Disposition': attachment(name),
        'Cache-Control': 'no-store',
      });
      await pipeline(createReadStream(temp), res);
    } finally {
      await rm(temp, { force: true });
    }
  }

  close(): void {
    for (const { timer } of this.#tickets.values()) clearTimeout(timer);
    this.#tickets.clear();
  }
}

/** `attachment` with an ASCII fallback name and the exact name in RFC 5987 form for any other character. */
export function attachment(name: string): string {
  const ascii = name.replace(/[^\x20-\x7e]|["\\%;]/g, '_');
  const exact = encodeURIComponent(name).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return `attachment; filename="${ascii}"; filename*=UTF-8''${exact}`;
}
