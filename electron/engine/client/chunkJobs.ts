/** What the main thread and the chunk workers (chunkWorker.ts) say to each other. */
import type { WireError } from '../../api/errors.ts';

/** Buffers arrive from another thread as plain Uint8Arrays. */
type Bytes = Uint8Array;

export type Job = { id: number } & (
  | { op: 'hash'; plain: Bytes }
  /** hashes: this chunk's pre-hash, then its two predecessors'. */
  | { op: 'encrypt'; plain: Bytes; index: number; n: number; hashes: Bytes[] }
  | { op: 'decrypt'; stored: Bytes; name: Bytes; size: number; index: number; n: number; hashes: Bytes[] }
);

export type JobReply = { id: number } & (
  | { hash: Bytes }
  /** The plaintext no longer matches its pre-hash: the file changed since the hash pass. */
  | { changed: true }
  | { stored: Bytes; name: Bytes }
  | { plain: Bytes }
  /** The stored bytes do not hash to the chunk's name: whoever served them served the wrong bytes. */
  | { misnamed: true }
  | { error: WireError; fault: boolean }
);

export const asBuffer = (bytes: Bytes): Buffer => (Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));

/**
 * The memory to move (not copy) along with `bytes`: only when it owns its whole ArrayBuffer. Small
 * Buffers share Node's allocation pool with others, and moving that would empty them all.
 */
export function transferList(bytes: Bytes): ArrayBuffer[] {
  const { buffer } = bytes;
  return buffer instanceof ArrayBuffer && bytes.byteOffset === 0 && bytes.byteLength === buffer.byteLength && bytes.byteLength > 0 ? [buffer] : [];
}
