/** A typed client for a running daemon, found through `<dataDir>/daemon.json`. */
import { readFile } from 'node:fs/promises';
import WebSocket from 'ws';
import { z } from 'zod';
import { WS_PATH, methods, type Api, type Method } from '../api/contract.ts';
import { SafeVaultError } from '../api/errors.ts';
import type { RecordedEvent } from '../api/events.ts';
import { daemonFile, isErrorCode, type DaemonInfo } from './protocol.ts';

export type DaemonClient = Api & {
  readonly url: string;
  /** Streams events from now on; resolves once subscribed, to an unsubscribe. `onEnd` runs if the daemon ends the stream. */
  followEvents(onEvent: (event: RecordedEvent) => void, onEnd?: () => void): Promise<() => void>;
};

const daemonInfo = z.object({ url: z.url(), token: z.string().min(1), pid: z.number().int().positive() });

/** The advertised daemon, or undefined if there is no (readable) daemon.json. Does not check that it answers. */
export async function readDaemonInfo(dataDir: string): Promise<DaemonInfo | undefined> {
  const text = await readFile(daemonFile(dataDir), 'utf8').catch(() => undefined);
  if (text === undefined) return undefined;
  try {
    return daemonInfo.parse(JSON.parse(text));
  } catch {
    return undefined;
  }
}

const noDaemon = (dataDir: string) =>
  new SafeVaultError('unavailable', `no daemon is running for ${dataDir} (start one with: safevault daemon --data-dir ${dataDir})`);

export async function connect(dataDir: string): Promise<DaemonClient> {
  const info = await readDaemonInfo(dataDir);
  if (!info) throw noDaemon(dataDir);
  const authorization = `Bearer ${info.token}`;

  const call = async (method: Method, params: unknown): Promise<unknown> => {
    let res: Response;
    try {
      res = await fetch(`${info.url}/api/${method}`, {
        method: 'POST',
        headers: { authorization, 'content-type': 'application/json' },
        body: JSON.stringify(params ?? {}),
      });
    } catch {
      throw noDaemon(dataDir); // daemon.json left behind by a daemon that died
    }
    const text = await res.text();
    if (!res.ok) throw errorFrom(res.status, text);
    return JSON.parse(text);
  };

  const followEvents = (onEvent: (event: RecordedEvent) => void, onEnd?: () => void) =>
    new Promise<() => void>((resolve, reject) => {
      const ws = new WebSocket(info.url.replace(/^http/, 'ws') + WS_PATH, { headers: { authorization } });
      let open = false;
      let unsubscribed = false;
      // The socket also answers calls; this one makes none, so every message is a pushed {event}.
      ws.on('message', (data) => {
        const { event } = JSON.parse(String(data)) as { event?: RecordedEvent };
        if (event) onEvent(event);
      });
      ws.once('unexpected-response', (req, res) => {
        const parts: Buffer[] = [];
        res.on('data', (part: Buffer) => parts.push(part));
        res.on('end', () => reject(errorFrom(res.statusCode ?? 0, Buffer.concat(parts).toString('utf8'))));
        res.on('error', () => reject(noDaemon(dataDir)));
        req.destroy();
      });
      ws.on('error', () => reject(noDaemon(dataDir))); // no-op once open: a later failure also ends in 'close'
      ws.once('open', () => {
        open = true;
        resolve(() => {
          unsubscribed = true;
          ws.close();
        });
      });
      ws.once('close', () => {
        if (open && !unsubscribed) onEnd?.();
      });
    });

  const api = Object.fromEntries(Object.keys(methods).map((method) => [method, (params: unknown) => call(method as Method, params)]));
  return { ...(api as Api), url: info.url, followEvents };
}

/** Turns the daemon's error JSON back into the SafeVaultError it was (or a plain Error for internal ones). */
function errorFrom(status: number, text: string): Error {
  let error: { code?: unknown; message?: unknown } | undefined;
  try {
    error = JSON.parse(text)?.error;
  } catch {
    // not JSON: fall through to the status line
  }
  const message = typeof error?.message === 'string' ? error.message : `the daemon answered HTTP ${status}`;
  return isErrorCode(error?.code) ? new SafeVaultError(error.code, message) : new Error(message);
}
