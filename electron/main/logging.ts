/**
 * electron-log to rotating files in the OS log folder. The engine's log (in app.sqlite, what the
 * window's Logs view reads) and main's log meet both ways: the engine's lines are written to the file,
 * and main's notable lines are written to the engine's log.
 */
import { join } from 'node:path';
import type ElectronLog from 'electron-log';
import type { LogLevel } from '../api/contract.ts';

export type Logger = Record<LogLevel, (message: string) => void>;

export interface Logging extends Logger {
  /** A line of the engine's log: to the file only (the engine keeps it already). */
  engine(level: LogLevel, message: string): void;
  /** From now on main's info, warn and error lines also go to `sink` (the engine's log). */
  relay(sink: (level: LogLevel, message: string) => void): void;
}

const LOG_FILE = 'main.log';
/** electron-log keeps one rotated file beside the current one (main.old.log), so logs stay under twice this. */
const MAX_LOG_BYTES = 5 * 1024 * 1024;

/** Main logs only: electron-log's initialize() (a preload injected into every window) is deliberately not called. */
export function createLogging(fileLog: ElectronLog.MainLogger, logsDir: string): Logging {
  fileLog.transports.file.maxSize = MAX_LOG_BYTES;
  fileLog.transports.file.level = 'info';
  fileLog.transports.file.resolvePathFn = () => join(logsDir, LOG_FILE);
  let sink: ((level: LogLevel, message: string) => void) | undefined;
  const main = (level: LogLevel) => (message: string) => {
    fileLog[level](message);
    if (level !== 'debug') sink?.(level, message);
  };
  return {
    debug: main('debug'),
    info: main('info'),
    warn: main('warn'),
    error: main('error'),
    engine: (level, message) => fileLog[level](`engine: ${message}`),
    relay: (to) => void (sink = to),
  };
}
