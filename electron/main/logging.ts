/** electron-log to rotating files in the OS log folder; the engine host's lines come through here too. */
import { join } from 'node:path';
import type ElectronLog from 'electron-log';
import type { LogLevel } from '../api/contract.ts';

export type Logger = Record<LogLevel, (message: string) => void>;

export const LOG_FILE = 'main.log';
/** electron-log keeps one rotated file beside the current one (main.old.log), so logs stay under twice this. */
export const MAX_LOG_BYTES = 5 * 1024 * 1024;

/** Main logs only: electron-log's initialize() (a preload injected into every window) is deliberately not called. */
export function createLogging(fileLog: ElectronLog.MainLogger, logsDir: string): Logger {
  fileLog.transports.file.maxSize = MAX_LOG_BYTES;
  fileLog.transports.file.level = 'info';
  fileLog.transports.file.resolvePathFn = () => join(logsDir, LOG_FILE);
  return {
    debug: (m) => fileLog.debug(m),
    info: (m) => fileLog.info(m),
    warn: (m) => fileLog.warn(m),
    error: (m) => fileLog.error(m),
  };
}
