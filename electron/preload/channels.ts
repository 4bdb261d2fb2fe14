/** The IPC channels between the preload and main (shared by both; no electron import). */
import { methods, type Method } from '../api/contract.ts';
import type { ErrorCode } from '../api/errors.ts';

/** One invoke channel per contract method. */
export const methodChannels = Object.fromEntries(Object.keys(methods).map((m) => [m, `safevault:api:${m}`])) as Record<Method, string>;

export const channels = {
  chooseSavePath: 'safevault:choose-save-path',
  /** invoke: the current ConnectionState; pushed on change. */
  connection: 'safevault:connection',
  /** pushed: a RecordedEvent. */
  event: 'safevault:event',
  chooseFolder: 'safevault:choose-folder',
  /** invoke: move the data folder; pushed: its DataFolderMove progress. */
  moveDataFolder: 'safevault:move-data-folder',
  dataFolderMove: 'safevault:data-folder-move',
} as const;

/** What every invoke answers: errors travel as data, because thrown errors lose their code crossing IPC. */
export type Answer<T = unknown> = { ok: true; result: T } | { ok: false; error: { code: ErrorCode; message: string } };
