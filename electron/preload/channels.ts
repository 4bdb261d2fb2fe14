/** The IPC channels between the preload and main (shared by both; no electron import). */
import type { ErrorCode } from '../api/errors.ts';

export const channels = {
  /** invoke (method, params): every contract method, named in the call so main refuses an unknown one itself. */
  api: 'safevault:api',
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
