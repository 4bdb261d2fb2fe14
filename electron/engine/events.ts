import { EventEmitter } from 'node:events';
import type { EngineEvent, RecordedEvent } from '../api/events.ts';

/** In-process fan-out of engine events; `on` returns its own unsubscribe. */
export class EventBus {
  readonly #emitter = new EventEmitter();
  #seq = 0;

  constructor() {
    this.#emitter.setMaxListeners(0);
  }

  /** Continue numbering after events already persisted. */
  resumeAt(seq: number): void {
    this.#seq = Math.max(this.#seq, seq);
  }

  emit(event: EngineEvent): RecordedEvent {
    const recorded = { ...event, seq: ++this.#seq, at: Date.now() } as RecordedEvent;
    this.#emitter.emit('event', recorded);
    return recorded;
  }

  on(listener: (event: RecordedEvent) => void): () => void {
    this.#emitter.on('event', listener);
    return () => this.#emitter.off('event', listener);
  }
}
