/**
 * electron-log to rotating files in the OS log folder, the engine host's lines included; the recent
 * lines are also kept in memory so the window's Logs view (the contract's `logs`) reads the same log.
 */
import { join } from 'node:path';
import type ElectronLog from 'electron-log';
import { logLevel, type LogLevel, type LogLine, type Params } from '../api/contract.ts';

export type Logger = Record<LogLevel, (message: string) => void>;

export interface LogBook extends Logger {
  /** Lines after `since`, oldest first, at most `limit`, of `level` and above. */
  lines(params: Params<'logs'>): LogLine[];
}

export const LOG_FILE = 'main.log';
/** electron-log keeps one rotated file beside the current one (main.old.log), so logs stay under twice this. */
export const MAX_LOG_BYTES = 5 * 1024 * 1024;
const KEPT_LINES = 5000;
const rank = (level: LogLevel) => logLevel.options.indexOf(level);

/** Main logs only: electron-log's initialize() (a preload injected into every window) is deliberately not called. */
export function createLogging(fileLog: ElectronLog.MainLogger, logsDir: string, now: () => number = Date.now): LogBook {
  fileLog.transports.file.maxSize = MAX_LOG_BYTES;
  fileLog.transports.file.level = 'info';
  fileLog.transports.file.resolvePathFn = () => join(logsDir, LOG_FILE);
  const kept: LogLine[] = [];
  let seq = 0;
  const at = (level: LogLevel) => (message: string) => {
    fileLog[level](message);
    kept.push({ seq: ++seq, at: now(), level, message });
    if (kept.length > KEPT_LINES) kept.splice(0, kept.length - KEPT_LINES);
  };
  return {
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    lines: ({ since = 0, level = 'debug', limit = 1000 }) =>
      kept.filter((line) => line.seq > since && rank(line.level) >= rank(level)).slice(0, limit),
  };
}
