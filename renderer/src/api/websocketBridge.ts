/**
 * The browser bridge: RPC and events over one WebSocket to the daemon (reconnecting with backoff when
 * it restarts), uploads by XHR (the only browser API with upload progress), downloads by a one-use ticket.
 */
import { DOWNLOAD_TICKET_PATH, UPLOAD_PATH, WS_PATH, methods, type Api, type FileInfo, type Method } from '../../../electron/api/contract.ts';
import type { RecordedEvent } from '../../../electron/api/events.ts';
import { Listeners, type ApiClient, type ConnectionState } from './client.ts';
import { SafeVaultError, toError } from './errors.ts';

const FIRST_RETRY_MS = 250;
const MAX_RETRY_MS = 5_000;

interface Pending {
  resolve(result: unknown): void;
  reject(error: Error): void;
}

export interface WebSocketBridgeOptions {
  /** The daemon's origin, e.g. http://127.0.0.1:4711 (the page's own by default). */
  origin?: string;
}

export function websocketBridge(token: string, { origin = window.location.origin }: WebSocketBridgeOptions = {}): ApiClient {
  const events = new Listeners<RecordedEvent>();
  const connection = new Listeners<ConnectionState>();
  const pending = new Map<number, Pending>();
  const uploads = new Map<string, XMLHttpRequest>();
  let nextId = 1;
  let socket: WebSocket | null = null;
  let state: ConnectionState = 'connecting';
  let retryMs = FIRST_RETRY_MS;

  const setState = (next: ConnectionState) => {
    if (next === state) return;
    state = next;
    connection.emit(next);
  };

  const connect = () => {
    setState('connecting');
    const url = new URL(WS_PATH, origin);
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    url.searchParams.set('token', token);
    const ws = new WebSocket(url);
    socket = ws;
    ws.onopen = () => {
      retryMs = FIRST_RETRY_MS;
      setState('connected');
    };
    ws.onmessage = (message) => {
      const data = JSON.parse(String(message.data)) as { id?: number; result?: unknown; error?: unknown; event?: RecordedEvent };
      if (data.event) return events.emit(data.event);
      const call = data.id === undefined ? undefined : pending.get(data.id);
      if (!call) return;
      pending.delete(data.id!);
      if (data.error) call.reject(toError(data, 'the daemon refused the call'));
      else call.resolve(data.result);
    };
    ws.onclose = () => {
      socket = null;
      for (const call of pending.values()) call.reject(new SafeVaultError('unavailable', 'the connection to the daemon was lost'));
      pending.clear();
      setState('disconnected');
      setTimeout(connect, retryMs);
      retryMs = Math.min(retryMs * 2, MAX_RETRY_MS);
    };
  };

  const call = (method: Method, params: unknown): Promise<unknown> =>
    new Promise((resolve, reject) => {
      if (!socket || socket.readyState !== WebSocket.OPEN) {
        return reject(new SafeVaultError('unavailable', 'not connected to the daemon (it is stopped or restarting)'));
      }
      const id = nextId++;
      pending.set(id, { resolve, reject });
      socket.send(JSON.stringify({ id, method, params }));
    });

  const api = Object.fromEntries(Object.keys(methods).map((m) => [m, (params: unknown) => call(m as Method, params)])) as Api;

  const authorised = (init: RequestInit = {}): RequestInit => ({ ...init, headers: { ...init.headers, authorization: `Bearer ${token}` } });

  const client: ApiClient = {
    ...api,
    // Cancelling an upload still in flight stops the bytes too, not only the store behind them.
    cancel: async (params) => {
      uploads.get(params.op)?.abort();
      return (await call('cancel', params)) as { cancelled: boolean };
    },
    onEvent: (listener) => events.add(listener),
    onConnection: (listener) => connection.add(listener),
    storeFile: (file, { as, op }, onUploadProgress) =>
      new Promise<FileInfo>((resolve, reject) => {
        if (state !== 'connected') return reject(new SafeVaultError('unavailable', 'not connected to the daemon (it is stopped or restarting)'));
        const xhr = new XMLHttpRequest();
        const url = new URL(UPLOAD_PATH, origin);
        url.search = new URLSearchParams({ as, name: file.name, op }).toString();
        xhr.open('POST', url);
        xhr.setRequestHeader('authorization', `Bearer ${token}`);
        xhr.setRequestHeader('content-type', 'application/octet-stream');
        xhr.upload.onprogress = (e) => onUploadProgress?.(e.loaded, e.lengthComputable ? e.total : file.size);
        const done = () => uploads.delete(op);
        xhr.onload = () => {
          done();
          let body: unknown;
          try {
            body = JSON.parse(xhr.responseText);
          } catch {
            return reject(new SafeVaultError('unavailable', `the daemon answered ${xhr.status} without a result`));
          }
          if (xhr.status >= 200 && xhr.status < 300) resolve(body as FileInfo);
          else reject(toError(body, `the daemon answered ${xhr.status}`));
        };
        xhr.onerror = () => {
          done();
          reject(new SafeVaultError('unavailable', `${file.name} could not be sent: it is unreadable or the daemon went away`));
        };
        xhr.onabort = () => {
          done();
          reject(new SafeVaultError('bad-request', `${file.name}: cancelled`));
        };
        uploads.set(op, xhr);
        xhr.send(file);
      }),
    retrieveFile: async ({ as, id, name }) => {
      const response = await fetch(
        new URL(DOWNLOAD_TICKET_PATH, origin),
        authorised({ method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ as, id }) }),
      ).catch(() => {
        throw new SafeVaultError('unavailable', 'not connected to the daemon (it is stopped or restarting)');
      });
      const body = (await response.json().catch(() => undefined)) as { url?: string } | undefined;
      if (!response.ok || !body?.url) throw toError(body, `the daemon answered ${response.status}`);
      const link = document.createElement('a');
      link.href = new URL(body.url, origin).href;
      link.download = name;
      link.hidden = true;
      document.body.append(link);
      link.click();
      link.remove();
      return { saved: true };
    },
  };

  connect();
  return client;
}
