/**
 * The renderer's one door to the engine: a typed call per contract method, the event feed, the
 * connection state, and storing/retrieving a browser File. Two bridges implement it (the daemon's
 * WebSocket in a browser, the preload in the desktop); nothing else in the renderer knows the host.
 */
import type { Api, ConnectionState, DataFolderMove, FileInfo } from '../../../electron/api/contract.ts';
import type { RecordedEvent } from '../../../electron/api/events.ts';

export type { ConnectionState };

export interface StoreOptions {
  as: string;
  /** The operation id: names its progress events; `cancel({op})` stops it (the upload included). */
  op: string;
}

/** Bytes of the file handed to the host so far (the browser upload; the desktop reads from disk at once). */
export type UploadProgress = (sent: number, total: number) => void;

export interface RetrieveOptions {
  as: string;
  id: string;
  name: string;
}

export type ApiClient = Api & {
  onEvent(listener: (event: RecordedEvent) => void): () => void;
  onConnection(listener: (state: ConnectionState) => void): () => void;
  storeFile(file: File, options: StoreOptions, onUploadProgress?: UploadProgress): Promise<FileInfo>;
  /** Saves the file where the user chooses (a browser download, or "Save as…"); false if the user cancelled. */
  retrieveFile(options: RetrieveOptions): Promise<{ saved: boolean }>;
  /**
   * Present where the host can move its data folder (the desktop app). The daemon's is chosen when it
   * starts (--data-dir), so its client leaves this out and the window only shows where it is.
   */
  dataFolder?: DataFolderControl;
};

export interface DataFolderControl {
  /** A folder picker; null when the user cancels. */
  choose(): Promise<string | null>;
  move(target: string): Promise<{ dataDir: string }>;
  onProgress(listener: (progress: DataFolderMove) => void): () => void;
}

/** A fresh operation id (32 hex digits, as the contract wants). */
export function newOperationId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

/** Small listener sets shared by both bridges. */
export class Listeners<T> {
  readonly #set = new Set<(value: T) => void>();
  add(listener: (value: T) => void): () => void {
    this.#set.add(listener);
    return () => void this.#set.delete(listener);
  }
  emit(value: T): void {
    for (const listener of this.#set) listener(value);
  }
}
