/**
 * A worker thread of the chunk pool (chunkWorkers.ts): hashes, encrypts and decrypts chunks off the
 * main thread, where the vaults and the network run. Each job carries only what its chunk needs
 * (its bytes and the three pre-hashes that key it); errors go back with their code.
 */
import { hash } from 'node:crypto';
import { parentPort } from 'node:worker_threads';
import { fail, isSafeVaultError, toWireError } from '../../api/errors.ts';
import { decryptNamedChunk, encryptChunkAt } from './selfEncryption.ts';
import { asBuffer, transferList, type Job, type JobReply } from './chunkJobs.ts';

if (!parentPort) throw new Error('chunkWorker.ts runs only as a worker thread');
const port = parentPort;

/** The three pre-hashes of chunk `index` among `n`: its own and its two predecessors' (wrapping). */
function neighbours(index: number, n: number, hashes: Buffer[]): (i: number) => Buffer {
  return (i) => (i === index ? hashes[0]! : i === (index + n - 1) % n ? hashes[1]! : i === (index + n - 2) % n ? hashes[2]! : fail('bad-request', `pre-hash ${i} was not sent`));
}

function run(job: Job): { reply: JobReply; transfer: ArrayBuffer[] } {
  const sha = (b: Buffer): Buffer => hash('sha256', b, 'buffer');
  switch (job.op) {
    case 'hash':
      return { reply: { id: job.id, hash: sha(asBuffer(job.plain)) }, transfer: [] };
    case 'encrypt': {
      const plain = asBuffer(job.plain);
      const hashes = job.hashes.map(asBuffer);
      // The file may have changed since the hash pass: such a chunk must not be stored.
      if (!sha(plain).equals(hashes[0]!)) return { reply: { id: job.id, changed: true }, transfer: [] };
      const stored = encryptChunkAt(plain, job.index, job.n, neighbours(job.index, job.n, hashes));
      return { reply: { id: job.id, stored, name: sha(stored) }, transfer: transferList(stored) };
    }
    case 'decrypt': {
      const stored = asBuffer(job.stored);
      const name = asBuffer(job.name);
      // Bytes that are not the chunk are the source's fault, not the map's: told apart from a refusal.
      if (!sha(stored).equals(name)) return { reply: { id: job.id, misnamed: true }, transfer: [] };
      const hashes = job.hashes.map(asBuffer);
      const plain = decryptNamedChunk(stored, job.index, job.n, { name, preHash: hashes[0]!, size: job.size }, neighbours(job.index, job.n, hashes));
      return { reply: { id: job.id, plain }, transfer: transferList(plain) };
    }
  }
}

port.on('message', (job: Job) => {
  try {
    const { reply, transfer } = run(job);
    port.postMessage(reply, transfer);
  } catch (error) {
    // A refusal keeps its code; anything else is a fault, and comes back as a plain Error.
    port.postMessage({ id: job.id, error: toWireError(error, 'bad-request'), fault: !isSafeVaultError(error) } satisfies JobReply);
  }
});
