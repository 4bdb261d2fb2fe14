/**
 * electron-log to rotating files in the OS log folder: main's lines and the engine's (prefixed
 * `engine:`), in one format written and read here. The desktop's Logs view reads these files (the
 * current one and the one rotated out), so it shows everything the app logged, main's lines included.
 */
import { open, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type ElectronLog from 'electron-log';
import type { LogLevel, LogLine, Params } from '../api/contract.ts';

export type Logger = Record<LogLevel, (message: string) => void>;

export interface Logging extends Logger {
  /** A line of the engine's log: to the file only (the engine keeps it already). */
  engine(level: LogLevel, message: string): void;
  /** The Logs view's answer, read from the files. */
  lines(params: Params<'logs'>): Promise<LogLine[]>;
}

const LOG_FILE = 'main.log';
/** Where electron-log's default archiving renames the current file when it is full. */
const ROTATED_FILE = 'main.old.log';
/** electron-log keeps one rotated file beside the current one, so logs stay under twice this. */
const MAX_LOG_BYTES = 5 * 1024 * 1024;
/** The Logs view reads at most this much from the end of the files: the tail, not 10 MiB per poll. */
const TAIL_BYTES = 1024 * 1024;
/** ISO time (UTC, so the reader needs no time zone), level, text. (`[{level}]` would be padded with spaces.) */
const FORMAT = '[{iso}] {level} {text}';
const LINE = /^\[(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)\] (\w+) (.*)$/;
const LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error'];

/** Main logs only: electron-log's initialize() (a preload injected into every window) is deliberately not called. */
export function createLogging(fileLog: ElectronLog.MainLogger, logsDir: string, { maxBytes = MAX_LOG_BYTES, tailBytes = TAIL_BYTES } = {}): Logging {
  fileLog.transports.file.maxSize = maxBytes;
  fileLog.transports.file.level = 'info';
  fileLog.transports.file.format = FORMAT;
  fileLog.transports.file.resolvePathFn = () => join(logsDir, LOG_FILE);
  return {
    debug: (message) => fileLog.debug(message),
    info: (message) => fileLog.info(message),
    warn: (message) => fileLog.warn(message),
    error: (message) => fileLog.error(message),
    engine: (level, message) => fileLog[level](`engine: ${message}`),
    lines: (params) => readLogFiles(logsDir, params, tailBytes),
  };
}

/**
 * The last `tailBytes` of the rotated file and the current one, oldest first, as LogLines. A line's
 * seq is its time in ms times 1000 plus its place among the lines of that same ms, so it stays the
 * same when its file is rotated and keeps growing across files (`since` works through a rotation).
 * Without `since` it answers the newest `limit` lines; with it, the first `limit` after it.
 */
export async function readLogFiles(dir: string, { since, level = 'debug', limit = 1000 }: Params<'logs'>, tailBytes = TAIL_BYTES): Promise<LogLine[]> {
  const current = await tail(join(dir, LOG_FILE), tailBytes);
  const rotated = await tail(join(dir, ROTATED_FILE), tailBytes - current.length);
  const lines = parse(Buffer.concat([rotated, current]).toString('utf8'));
  const wanted = lines.filter((l) => (since === undefined || l.seq > since) && LEVELS.indexOf(l.level) >= LEVELS.indexOf(level));
  return since === undefined ? wanted.slice(-limit) : wanted.slice(0, limit);
}

/** The last `bytes` of a file, from its first whole line; empty if it does not exist. */
async function tail(path: string, bytes: number): Promise<Buffer> {
  if (bytes <= 0) return Buffer.alloc(0);
  const size = await stat(path).then((s) => s.size, () => 0);
  if (size === 0) return Buffer.alloc(0);
  const start = Math.max(0, size - bytes);
  const file = await open(path, 'r');
  try {
    const { buffer, bytesRead } = await file.read(Buffer.alloc(size - start), 0, size - start, start);
    const read = buffer.subarray(0, bytesRead);
    // Cut into the middle of a line: start at the next one.
    return start === 0 ? read : read.subarray(read.indexOf(0x0a) + 1);
  } finally {
    await file.close();
  }
}

function parse(text: string): LogLine[] {
  const lines: LogLine[] = [];
  let sameMs = 0;
  for (const raw of text.split('\n')) {
    const match = LINE.exec(raw);
    if (!match) {
      // A message's own later lines (a stack trace): part of the line before.
      const last = lines.at(-1);
      if (last && raw) last.message += `\n${raw}`;
      continue;
    }
    const at = Date.parse(match[1]!);
    sameMs = lines.at(-1)?.at === at ? sameMs + 1 : 0;
    lines.push({ seq: at * 1000 + sameMs, at, level: levelOf(match[2]!), message: match[3]! });
  }
  return lines;
}

/** electron-log's six levels in the contract's four. */
const levelOf = (level: string): LogLevel => (level === 'error' || level === 'warn' || level === 'info' ? level : 'debug');
