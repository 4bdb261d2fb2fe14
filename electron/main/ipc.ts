/**
 * The window's IPC: one handler per contract method, plus the save dialog and the connection state.
 * Every call must come from the app's own origin and pass the contract's schema; anything else gets a
 * clear one-line error and is logged, and never reaches the engine.
 */
import type { IpcMain, IpcMainInvokeEvent } from 'electron';
import { absolutePath, fileName, methods, parseParams, type ConnectionState, type Method, type Params, type Results } from '../api/contract.ts';
import { isSafeVaultError, SafeVaultError } from '../api/errors.ts';
import { channels, methodChannels, type Answer } from '../preload/channels.ts';
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

  /** `name` is what the window called, for its errors and the log. */
  const handle = (name: string, channel: string, handler: (args: unknown[]) => unknown) => {
    ipcMain.handle(channel, async (event: IpcMainInvokeEvent, ...args: unknown[]): Promise<Answer> => {
      try {
        const origin = event.senderFrame?.origin;
        if (!origin || !allowedOrigins.has(origin)) {
          throw new SafeVaultError('unauthorized', `${name}: refused a call from ${origin ? `origin ${origin}` : 'a frame that is gone'}`);
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

  for (const method of Object.keys(methods) as Method[]) {
    handle(method, methodChannels[method], ([params]) => options.call(method, parseParams(method, params)));
  }
  handle('chooseSavePath', channels.chooseSavePath, ([suggested]) => {
    const name = fileName.safeParse(suggested);
    if (!name.success) throw new SafeVaultError('bad-request', `chooseSavePath: ${name.error.issues[0]!.message}`);
    return options.chooseSavePath(name.data);
  });
  handle('chooseFolder', channels.chooseFolder, () => options.chooseFolder());
  handle('moveDataFolder', channels.moveDataFolder, ([target]) => {
    const path = absolutePath.safeParse(target);
    if (!path.success) throw new SafeVaultError('bad-request', `moveDataFolder: ${path.error.issues[0]!.message}`);
    return options.moveDataFolder(path.data);
  });
  handle('connection', channels.connection, () => options.connection());
}
