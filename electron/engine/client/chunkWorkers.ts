/**
 * A small pool of worker threads for the CPU work of self-encryption (hashing, deflate, AES), so a
 * put keeps every core busy while the main thread runs the vaults and the network. One pool per
 * process, started on first use; its threads hold the process open only while they have work.
 * Buffers handed to a job are moved to the worker, not copied: the caller must not use them again.
 */
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { fromWireError } from '../../api/errors.ts';
import { asBuffer, transferList, type Job, type JobReply } from './chunkJobs.ts';

type JobInput = Job extends infer J ? (J extends { id: number } ? Omit<J, 'id'> : never) : never;

/**
 * The worker's module: the .ts source when the engine runs from source; in the desktop build,
 * out/main/chunkWorker.js (its own entry in electron.vite.config.ts), beside or above the chunk this code lands in.
 */
function workerModule(): URL {
  const candidates = ['./chunkWorker.ts', './chunkWorker.js', '../chunkWorker.js'].map((path) => new URL(path, import.meta.url));
  return candidates.find((url) => existsSync(fileURLToPath(url))) ?? candidates[0]!;
}

interface Thread {
  worker: Worker;
  jobs: Map<number, { resolve: (reply: JobReply) => void; reject: (error: Error) => void }>;
}

export class ChunkWorkers {
  readonly size: number;
  readonly #threads: Thread[] = [];
  #nextId = 1;

  constructor(size = availableParallelism()) {
    this.size = Math.max(1, size);
  }

  /** SHA-256 of `plain`. */
  async hash(plain: Buffer): Promise<Buffer> {
    const reply = await this.#run({ op: 'hash', plain }, transferList(plain));
    return asBuffer((reply as { hash: Uint8Array }).hash);
  }

  /** Chunk `index` of `n` encrypted, with its name; null if `plain` no longer matches hashes[0] (the file changed). */
  async encrypt(plain: Buffer, index: number, n: number, hashes: Buffer[]): Promise<{ stored: Buffer; name: Buffer } | null> {
    const reply = await this.#run({ op: 'encrypt', plain, index, n, hashes }, transferList(plain));
    if ('changed' in reply) return null;
    const { stored, name } = reply as { stored: Uint8Array; name: Uint8Array };
    return { stored: asBuffer(stored), name: asBuffer(name) };
  }

  /** The plaintext of stored chunk `index` of `n`, checked against its size and pre-hash (hashes[0]); null if `stored` is not the chunk named. */
  async decrypt(stored: Buffer, entry: { name: Buffer; size: number }, index: number, n: number, hashes: Buffer[]): Promise<Buffer | null> {
    const reply = await this.#run({ op: 'decrypt', stored, name: entry.name, size: entry.size, index, n, hashes }, transferList(stored));
    if ('misnamed' in reply) return null;
    return asBuffer((reply as { plain: Uint8Array }).plain);
  }

  /** Stops the threads; jobs still running fail. */
  async close(): Promise<void> {
    const threads = this.#threads.splice(0);
    await Promise.all(threads.map((t) => t.worker.terminate()));
  }

  #run(input: JobInput, transfer: ArrayBuffer[]): Promise<JobReply> {
    const thread = this.#pick();
    const id = this.#nextId++;
    return new Promise<JobReply>((resolve, reject) => {
      thread.jobs.set(id, { resolve, reject });
      if (thread.jobs.size === 1) thread.worker.ref();
      thread.worker.postMessage({ ...input, id }, transfer);
    }).then((reply) => {
      if ('error' in reply) throw reply.fault ? new Error(reply.error.message) : fromWireError(reply.error, reply.error.message);
      return reply;
    });
  }

  /** The thread with the fewest jobs; a new one while the pool is not full. */
  #pick(): Thread {
    const idle = this.#threads.find((t) => t.jobs.size === 0);
    if (idle) return idle;
    if (this.#threads.length < this.size) return this.#spawn();
    return this.#threads.reduce((a, b) => (b.jobs.size < a.jobs.size ? b : a));
  }

  #spawn(): Thread {
    const worker = new Worker(workerModule());
    const thread: Thread = { worker, jobs: new Map() };
    worker.unref();
    worker.on('message', (reply: JobReply) => {
      const job = thread.jobs.get(reply.id);
      if (!job) return;
      thread.jobs.delete(reply.id);
      if (thread.jobs.size === 0) worker.unref();
      job.resolve(reply);
    });
    // A thread that dies takes its jobs with it; the next job starts a fresh one.
    const lost = (error: Error) => {
      const at = this.#threads.indexOf(thread);
      if (at >= 0) this.#threads.splice(at, 1);
      for (const job of thread.jobs.values()) job.reject(error);
      thread.jobs.clear();
    };
    worker.on('error', lost);
    worker.on('exit', (code) => lost(new Error(`a self-encryption worker stopped (exit code ${code})`)));
    this.#threads.push(thread);
    return thread;
  }
}

let shared: ChunkWorkers | undefined;

/** The process's pool. */
export function chunkWorkers(): ChunkWorkers {
  return (shared ??= new ChunkWorkers());
}
