/**
 * Keeps the engine host process running: spawns it, relays calls and events, restarts it with backoff
 * (1 s, 2 s, 4 s … capped) when it dies, and on quit asks it to close, waiting a bounded time before
 * killing it. Given a spawn function, so main uses a utilityProcess and the tests a Node child.
 */
import type { ConnectionState, LogLevel, Method, Params, Results } from '../api/contract.ts';
import { SafeVaultError } from '../api/errors.ts';
import type { RecordedEvent } from '../api/events.ts';
import type { FromHost, InitMessage, ToHost } from '../host/protocol.ts';

/** A running engine host, as seen from main. */
export interface EngineChild {
  post(message: ToHost): void;
  onMessage(listener: (message: FromHost) => void): void;
  onExit(listener: (code: number | null) => void): void;
  kill(): void;
}

export interface SupervisorOptions {
  spawn(): EngineChild;
  /** Asked before each start, so a restart sees the current data folder and key. */
  init(): InitMessage | Promise<InitMessage>;
  /** The supervisor's own lines. */
  log(level: LogLevel, message: string): void;
  /** Lines of the engine's log, as the host sends them. */
  onEngineLog(level: LogLevel, message: string): void;
  firstDelayMs?: number;
  maxDelayMs?: number;
  /** A host that stayed up this long after ready resets the backoff. */
  stableMs?: number;
  /** Runs a restart after the backoff delay (tests record the delays instead of waiting them). */
  scheduleRestart?: (run: () => void, ms: number) => () => void;
  now?: () => number;
}

export interface EngineSupervisor {
  readonly state: ConnectionState;
  start(): void;
  call<M extends Method>(method: M, params: Params<M>): Promise<Results[M]>;
  onEvent(listener: (event: RecordedEvent) => void): () => void;
  onState(listener: (state: ConnectionState) => void): () => void;
  /** Asks the engine to close and waits up to `timeoutMs` for the process to exit, then kills it. */
  stop(timeoutMs: number): Promise<void>;
}

const afterDelay = (run: () => void, ms: number) => {
  const timer = setTimeout(run, ms);
  return () => clearTimeout(timer);
};

export function createEngineSupervisor(options: SupervisorOptions): EngineSupervisor {
  const { spawn, log, firstDelayMs = 1000, maxDelayMs = 30_000, stableMs = 60_000, scheduleRestart = afterDelay, now = Date.now } = options;
  const eventListeners = new Set<(event: RecordedEvent) => void>();
  const stateListeners = new Set<(state: ConnectionState) => void>();
  const pending = new Map<number, { resolve(result: unknown): void; reject(error: Error): void }>();
  let state: ConnectionState = 'disconnected';
  let child: EngineChild | undefined;
  let exited: Promise<void> = Promise.resolve();
  let nextId = 0;
  let failures = 0;
  let readyAt = 0;
  let stopping = false;
  let cancelRestart: (() => void) | undefined;

  const setState = (next: ConnectionState) => {
    if (next === state) return;
    state = next;
    for (const listener of stateListeners) listener(next);
  };

  const rejectPending = (why: string) => {
    for (const { reject } of pending.values()) reject(new SafeVaultError('unavailable', why));
    pending.clear();
  };

  const onMessage = (message: FromHost) => {
    switch (message.type) {
      case 'ready':
        readyAt = now();
        return setState('connected');
      case 'result':
      case 'error': {
        const call = pending.get(message.id);
        pending.delete(message.id);
        if (message.type === 'result') call?.resolve(message.result);
        else call?.reject(new SafeVaultError(message.error.code, message.error.message));
        return;
      }
      case 'event':
        for (const listener of eventListeners) listener(message.event);
        return;
      case 'log':
        return options.onEngineLog(message.level, message.message);
    }
  };

  const launch = async () => {
    cancelRestart = undefined;
    if (stopping) return;
    setState('connecting');
    let init: InitMessage;
    try {
      init = await options.init();
    } catch (error) {
      return restartLater('error', `engine host not started: ${(error as Error).message}`);
    }
    if (stopping) return;
    const started = spawn();
    const { promise, resolve } = Promise.withResolvers<void>();
    child = started;
    exited = promise;
    started.onMessage(onMessage);
    started.onExit((code) => {
      resolve();
      if (child !== started) return;
      child = undefined;
      rejectPending('the engine stopped before answering');
      setState('disconnected');
      if (stopping) return;
      if (readyAt && now() - readyAt >= stableMs) failures = 0;
      restartLater('warn', `engine host exited (code ${code})`);
    });
    readyAt = 0;
    started.post(init);
  };

  /** Says why and when, so the log (and a test) shows the backoff each restart waits. */
  const restartLater = (level: LogLevel, why: string) => {
    const delay = Math.min(firstDelayMs * 2 ** failures, maxDelayMs);
    failures++;
    log(level, `${why}; restarting in ${delay} ms`);
    cancelRestart = scheduleRestart(() => void launch(), delay);
  };

  return {
    get state() {
      return state;
    },
    start() {
      stopping = false;
      if (!child && !cancelRestart) void launch();
    },
    call(method, params) {
      if (!child || state !== 'connected') {
        return Promise.reject(new SafeVaultError('unavailable', `the engine is ${state === 'connecting' ? 'starting' : 'not running'}; try again in a moment`));
      }
      const id = nextId++;
      const { promise, resolve, reject } = Promise.withResolvers<never>();
      pending.set(id, { resolve: resolve as (r: unknown) => void, reject });
      child.post({ type: 'call', id, method, params });
      return promise;
    },
    onEvent(listener) {
      eventListeners.add(listener);
      return () => void eventListeners.delete(listener);
    },
    onState(listener) {
      stateListeners.add(listener);
      return () => void stateListeners.delete(listener);
    },
    async stop(timeoutMs) {
      stopping = true;
      cancelRestart?.();
      cancelRestart = undefined;
      const running = child;
      if (!running) return setState('disconnected');
      running.post({ type: 'close' });
      let cancelKill = () => {};
      const killed = new Promise<void>((resolve) => {
        cancelKill = afterDelay(() => {
          log('warn', `engine host did not close within ${timeoutMs} ms; killing it`);
          running.kill();
          resolve();
        }, timeoutMs);
      });
      await Promise.race([exited, killed]);
      cancelKill();
      await exited;
    },
  };
}
