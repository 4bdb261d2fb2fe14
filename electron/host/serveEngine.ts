/**
 * Serves the engine over a port: each call validated with the contract, answered once, events and
 * the engine's log lines pushed (main writes them to its log files). `init` opens the engine;
 * `close` closes it and resolves `closed` (the entry then exits).
 */
import { isMethod, parseParams, type Method } from '../api/contract.ts';
import { isSafeVaultError, SafeVaultError, toWireError } from '../api/errors.ts';
import { openEngine, type Engine } from '../engine/engine.ts';
import { aesGcmSealer } from '../engine/secretSealer.ts';
import { toHost, type FromHost, type InitMessage, type Port } from './protocol.ts';

export interface ServedHost {
  /** Resolves with the exit code once the engine is closed (0) or failed to open (1); the host then exits. */
  closed: Promise<number>;
  close(): void;
}

export function serveEngine(port: Port<FromHost, unknown>, open: (init: InitMessage) => Promise<Engine> = openFromInit): ServedHost {
  let engine: Promise<Engine> | undefined;
  let closing = false;
  const { promise: closed, resolve: resolveClosed } = Promise.withResolvers<number>();
  const log = (level: 'info' | 'warn' | 'error', message: string) => port.post({ type: 'log', level, message });

  const call = async (id: number, method: string, params: unknown): Promise<void> => {
    try {
      if (!isMethod(method)) throw new SafeVaultError('bad-request', `unknown method: ${method}`);
      if (!engine || closing) throw new SafeVaultError('unavailable', 'the engine is not running');
      const api = await engine;
      const fn = api[method as Method] as (p: unknown) => Promise<unknown>;
      port.post({ type: 'result', id, result: await fn.call(api, parseParams(method, params)) });
    } catch (error) {
      if (!isSafeVaultError(error)) log('error', `${method} failed: ${(error as Error).stack ?? error}`);
      port.post({ type: 'error', id, error: toWireError(error, 'unavailable') });
    }
  };

  port.onMessage((raw) => {
    const parsed = toHost.safeParse(raw);
    if (!parsed.success) return log('warn', `engine host: ignored a malformed message: ${parsed.error.issues[0]!.message}`);
    const message = parsed.data;
    switch (message.type) {
      case 'init':
        if (engine) return log('warn', 'engine host: ignored a second init');
        const openedAt = Date.now();
        engine = open(message);
        engine.then(
          (opened) => {
            opened.onEvent((event) => port.post({ type: 'event', event }));
            // What the engine logged while opening, before anyone could listen; then every line as it comes.
            for (const { at, level, message } of opened.log.lines({ limit: 10_000 })) {
              if (at >= openedAt) port.post({ type: 'log', level, message });
            }
            opened.log.onLine(({ level, message }) => port.post({ type: 'log', level, message }));
            port.post({ type: 'ready' });
          },
          (error: Error) => {
            log('error', `engine failed to open: ${error.message}`);
            closing = true;
            resolveClosed(1);
          },
        );
        return;
      case 'call':
        return void call(message.id, message.method, message.params);
      case 'close':
        return close();
    }
  });

  const close = (): void => {
    if (closing) return;
    closing = true;
    void (engine ?? Promise.resolve(undefined))
      .then((opened) => opened?.close())
      .catch((error: Error) => log('error', `engine close failed: ${error.message}`))
      .finally(() => resolveClosed(0));
  };
  return { closed, close };
}

function openFromInit(init: InitMessage): Promise<Engine> {
  return openEngine({
    dataDir: init.dataDir,
    vaults: init.vaults,
    sealer: init.masterKey ? aesGcmSealer(Buffer.from(init.masterKey, 'base64')) : undefined,
  });
}
