/** The engine's events as every host and caller sees them (the UI, `safevault events`, the desktop host). Each is emitted by exactly one actor, so none is duplicated. */
export type EngineEvent =
  | { type: 'vault.joined'; vault: string }
  | { type: 'vault.left'; vault: string; graceful: boolean }
  | { type: 'chunk.stored'; client: string; chunk: string; size: number; holders: string[] }
  | { type: 'chunk.deduplicated'; client: string; chunk: string; refcount: number; subscribers: number }
  | { type: 'chunk.released'; client: string; chunk: string; refcount: number; subscribers: number }
  | { type: 'chunk.deleted'; client: string; chunk: string }
  | { type: 'delete.refused'; client: string; chunk: string; reason: string }
  | { type: 'copy.made'; chunk: string; vault: string }
  | { type: 'holder.pruned'; chunk: string; vault: string }
  | { type: 'holder.bad'; chunk: string; vault: string }
  | { type: 'account.transferred'; vault: string; records: number }
  | { type: 'file.progress'; client: string; file: string; done: number; total: number; op?: string; direction: 'store' | 'retrieve' }
  | { type: 'file.stored'; client: string; file: string; id: string; size: number; op?: string }
  | { type: 'file.failed'; client: string; file: string; op?: string; direction: 'store' | 'retrieve'; message: string; cancelled: boolean }
  | { type: 'file.removed'; client: string; file: string; id: string }
  | { type: 'vault.paused'; vault: string; paused: boolean };

export type EventType = EngineEvent['type'];
/** An event as recorded: with its sequence number and time (ms since epoch). */
export type RecordedEvent = EngineEvent & { seq: number; at: number };
