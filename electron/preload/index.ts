/**
 * The preload: exposes exactly the DesktopBridge on window.safevault through contextBridge. Sandboxed,
 * so it only relays: main validates every call and checks where it came from.
 */
import { contextBridge, ipcRenderer, webUtils, type IpcRendererEvent } from 'electron';
import { methods, type Api, type ConnectionState, type DataFolderMove, type DesktopBridge, type Method } from '../api/contract.ts';
import type { RecordedEvent } from '../api/events.ts';
import { channels, type Answer } from './channels.ts';

/**
 * Rejects with `{name, code, message}`: contextBridge copies only an Error's message into the page,
 * while a plain object crosses whole, so the window still sees the engine's error code.
 */
async function invoke<T>(channel: string, ...args: unknown[]): Promise<T> {
  const answer = (await ipcRenderer.invoke(channel, ...args)) as Answer<T>;
  if (answer.ok) return answer.result;
  throw { name: 'SafeVaultError', ...answer.error };
}

function subscribe<T>(channel: string, listener: (value: T) => void): () => void {
  const relay = (_event: IpcRendererEvent, value: T) => listener(value);
  ipcRenderer.on(channel, relay);
  return () => void ipcRenderer.removeListener(channel, relay);
}

const api = Object.fromEntries((Object.keys(methods) as Method[]).map((m) => [m, (params: unknown) => invoke(channels.api, m, params)])) as Api;

const bridge: DesktopBridge = {
  ...api,
  onEvent: (listener: (event: RecordedEvent) => void) => subscribe(channels.event, listener),
  onConnection(listener: (state: ConnectionState) => void) {
    const unsubscribe = subscribe(channels.connection, listener);
    // The current state first, so a window opened late knows where it stands.
    void invoke<ConnectionState>(channels.connection).then(listener, () => undefined);
    return unsubscribe;
  },
  getPathForFile: (file: object) => webUtils.getPathForFile(file as File),
  chooseSavePath: (suggestedName: string) => invoke<string | null>(channels.chooseSavePath, suggestedName),
  chooseFolder: () => invoke<string | null>(channels.chooseFolder),
  moveDataFolder: (target: string) => invoke<{ dataDir: string }>(channels.moveDataFolder, target),
  onDataFolderMove: (listener: (progress: DataFolderMove) => void) => subscribe(channels.dataFolderMove, listener),
};

contextBridge.exposeInMainWorld('safevault', bridge);
