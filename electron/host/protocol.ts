/**
 * The engine host's wire: the messages between main and the process that runs the engine, the same
 * whether that process is an Electron utilityProcess or a forked Node child (the tests).
 */
import { z } from 'zod';
import type { LogLevel } from '../api/contract.ts';
import type { ErrorCode } from '../api/errors.ts';
import type { RecordedEvent } from '../api/events.ts';

/** What main sends. `masterKey` (base64, 32 bytes) seals client secrets; without it the host uses `<dataDir>/master.key`. */
export const toHost = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('init'), dataDir: z.string().min(1), vaults: z.number().int().positive().optional(), masterKey: z.base64().optional() }),
  z.strictObject({ type: z.literal('call'), id: z.number().int().nonnegative(), method: z.string(), params: z.unknown() }),
  /** Close the engine (in-flight work finishes or aborts without losing acknowledged data), then exit. */
  z.strictObject({ type: z.literal('close') }),
]);
export type ToHost = z.infer<typeof toHost>;
export type InitMessage = Extract<ToHost, { type: 'init' }>;

export type FromHost =
  | { type: 'ready' }
  | { type: 'result'; id: number; result: unknown }
  | { type: 'error'; id: number; error: { code: ErrorCode; message: string } }
  | { type: 'event'; event: RecordedEvent }
  /** A line of the engine's log, or of the host itself. */
  | { type: 'log'; level: LogLevel; message: string };

/** One message port, whichever way the host process was started. */
export interface Port<Out, In> {
  post(message: Out): void;
  onMessage(listener: (message: In) => void): void;
}
