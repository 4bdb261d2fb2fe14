/**
 * The window's IPC: one handler for the contract's methods, plus the dialogs, the data folder move and
 * the connection state.
 * Every call must come from the app's own origin and pass the contract's schema; anything else gets a
 * clear one-line error and is logged, and never reaches the engine.
 */
import type { IpcMain, IpcMainInvokeEvent } from 'electron';
import { absolutePath, fileName, isMethod, parseParams, type ConnectionState, type Method, type Params, type Results } from '../api/contract.ts';
import { isSafeVaultError, SafeVaultError } from '../api/errors.ts';
import { channels, type Answer } from '../preload/channels.ts';
import type { Logger } from './logging.ts';

export type EngineCall = <M extends Method>(method: M, params: Params<M>) => Promise<Results[M]>;

export interface IpcOptions {
  ipcMain: Pick<IpcMain, 'handle'>;
  call: EngineCall;
  connection(): ConnectionState;
  chooseSavePath(suggestedName: string): Promise<string | null>;
  chooseFolder(): Promise<string | null>;
  moveDataFolder(target: string): Promise<{ dataDir: string }>;
  /** The app's own origin (app://safevault), plus the dev server's when not packaged. */
  allowedOrigins: ReadonlySet<string>;
  log: Logger;
}

export function serveIpc(options: IpcOptions): void {
  const { ipcMain, allowedOrigins, log } = options;

  /** `name` is what the window called (for the contract, named in the call), for its errors and the log. */
  const handle = (channel: string, name: string | ((args: unknown[]) => string), handler: (args: unknown[]) => unknown) => {
    ipcMain.handle(channel, async (event: IpcMainInvokeEvent, ...args: unknown[]): Promise<Answer> => {
      try {
        const origin = event.senderFrame?.origin;
        if (!origin || !allowedOrigins.has(origin)) {
          const called = typeof name === 'string' ? name : name(args);
          throw new SafeVaultError('unauthorized', `${called}: refused a call from ${origin ? `origin ${origin}` : 'a frame that is gone'}`);
        }
        return { ok: true, result: await handler(args) };
      } catch (error) {
        const known = isSafeVaultError(error);
        const message = (error as Error).message;
        if (!known || error.code === 'unauthorized' || error.code === 'bad-request') log.warn(`ipc: ${message}`);
        return { ok: false, error: { code: known ? error.code : 'unavailable', message } };
      }
    });
  };

  const methodOf = (value: unknown): Method | undefined => (typeof value === 'string' && isMethod(value) ? value : undefined);
  handle(channels.api, ([method]) => methodOf(method) ?? 'api', ([method, params]) => {
    const known = methodOf(method);
    // The name is the page's: quoted, so whatever it holds stays on one log line.
    if (!known) throw new SafeVaultError('bad-request', `unknown method: ${JSON.stringify(method) ?? String(method)}`);
    return options.call(known, parseParams(known, params));
  });
  handle(channels.chooseSavePath, 'chooseSavePath', ([suggested]) => {
    const name = fileName.safeParse(suggested);
    if (!name.success) throw new SafeVaultError('bad-request', `chooseSavePath: ${name.error.issues[0]!.message}`);
    return options.chooseSavePath(name.data);
  });
  handle(channels.chooseFolder, 'chooseFolder', () => options.chooseFolder());
  handle(channels.moveDataFolder, 'moveDataFolder', ([target]) => {
    const path = absolutePath.safeParse(target);
    if (!path.success) throw new SafeVaultError('bad-request', `moveDataFolder: ${path.error.issues[0]!.message}`);
    return options.moveDataFolder(path.data);
  });
  handle(channels.connection, 'connection', () => options.connection());
}
