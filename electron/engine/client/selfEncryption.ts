/**
 * Self-encryption: convergent encryption of a file into chunks, after MaidSafe's self_encryption.
 *
 * Each chunk is keyed by the hashes of its neighbours' plaintext, so the same file always yields
 * the same stored chunks (which is what lets two users share them), while a chunk cannot be read
 * without the data map that lists every plaintext hash.
 *
 * Stored chunk i = pad_i XOR AES-256-CTR(key_i, iv_i, flag || body), where body is the plaintext,
 * deflated if that makes it smaller (flag says which), key_i/iv_i come from preHash[i-1] and
 * preHash[i-2], and pad_i is a keystream keyed by preHash[i], preHash[i-1] and preHash[i-2].
 */
import { createCipheriv, createDecipheriv, hash, hkdfSync, randomBytes } from 'node:crypto';
import { open, rename, rm } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { constants as zlibConstants, deflateRawSync, inflateRawSync } from 'node:zlib';
import { MAX_CHUNK_SIZE, MIN_FILE_CHUNKS } from '../constants.ts';
import { SafeVaultError, fail } from '../../api/errors.ts';
import { chunkWorkers, type ChunkWorkers } from './chunkWorkers.ts';

export interface DataMapChunk {
  name: Buffer;
  preHash: Buffer;
  size: number;
}
export interface DataMap {
  size: number;
  chunks: DataMapChunk[];
}

const FLAG_RAW = 0;
const FLAG_DEFLATED = 1;
/** Largest plaintext per chunk: raw storage adds only the flag byte, so it always fits. */
export const MAX_PLAIN_CHUNK_SIZE = MAX_CHUNK_SIZE - 1;

const HASH_SIZE = 32;
const KEY_INFO = 'safevault self-encryption v1 key';
const ZERO_IV = Buffer.alloc(16);

const MAP_MAGIC = Buffer.from('SVDM', 'latin1');
const MAP_VERSION = 1;
/** magic, version, u64 file size; the chunk count and sizes follow from the file size. */
const MAP_HEADER_SIZE = MAP_MAGIC.length + 1 + 8;
const MAP_ENTRY_SIZE = 2 * HASH_SIZE;

const SEAL_NONCE_SIZE = 12;
const SEAL_TAG_SIZE = 16;
const SEAL_AAD = Buffer.from('safevault data map v1', 'latin1');

const sha256 = (data: Buffer): Buffer => hash('sha256', data, 'buffer');

function chunkCount(fileSize: number): number {
  if (!Number.isSafeInteger(fileSize) || fileSize < 0) fail('bad-request', `bad file size: ${fileSize}`);
  return Math.max(MIN_FILE_CHUNKS, Math.ceil(fileSize / MAX_PLAIN_CHUNK_SIZE));
}

/** Splits a file into near-equal chunks (sizes differ by at most one byte; larger ones first). */
export function planChunks(fileSize: number): { offset: number; length: number }[] {
  const n = chunkCount(fileSize);
  const base = Math.floor(fileSize / n);
  const extra = fileSize % n;
  const plan: { offset: number; length: number }[] = [];
  let offset = 0;
  for (let i = 0; i < n; i++) {
    const length = base + (i < extra ? 1 : 0);
    plan.push({ offset, length });
    offset += length;
  }
  return plan;
}

/**
 * AES-CTR key/IV from the two previous chunks' hashes, and the pad key from all three.
 * Takes an accessor rather than an array so decrypting each chunk of a map stays O(1).
 */
function chunkKeys(index: number, n: number, preHash: (i: number) => Buffer): { key: Buffer; iv: Buffer; padKey: Buffer } {
  const own = preHash(index);
  const prev1 = preHash((index + n - 1) % n);
  const prev2 = preHash((index + n - 2) % n);
  if ([own, prev1, prev2].some((h) => h.length !== HASH_SIZE)) fail('bad-request', 'every pre-hash must be 32 bytes');
  const okm = Buffer.from(hkdfSync('sha256', Buffer.concat([prev1, prev2]), Buffer.alloc(0), KEY_INFO, 48));
  return {
    key: okm.subarray(0, 32),
    iv: okm.subarray(32, 48),
    padKey: sha256(Buffer.concat([own, prev1, prev2])),
  };
}

/** AES-256-CTR is its own inverse, so this both encrypts and decrypts. */
function ctr(key: Buffer, iv: Buffer, data: Buffer): Buffer {
  const cipher = createCipheriv('aes-256-ctr', key, iv);
  // A stream mode: update gives every byte and final none, so the megabyte is not copied into a joined buffer.
  const out = cipher.update(data);
  cipher.final();
  return out;
}

function checkChunkRef(index: number, n: number): void {
  if (n < MIN_FILE_CHUNKS) fail('bad-request', `a file has at least ${MIN_FILE_CHUNKS} chunks, got ${n}`);
  if (!Number.isInteger(index) || index < 0 || index >= n) fail('bad-request', `chunk index ${index} out of range 0..${n - 1}`);
}

const SAMPLE_BYTES = 64 * 1024;

/**
 * Media and archives don't compress; deflating a sample first spares them a full pass that would
 * be thrown away. The decision depends only on the bytes, so the same file still gives the same chunks.
 */
function deflateIfWorthIt(plain: Buffer): Buffer | undefined {
  const options = { level: zlibConstants.Z_BEST_SPEED };
  if (plain.length > 2 * SAMPLE_BYTES && deflateRawSync(plain.subarray(0, SAMPLE_BYTES), options).length > SAMPLE_BYTES * 0.97) {
    return undefined;
  }
  return deflateRawSync(plain, options);
}

/** Encrypts plaintext chunk `index`; preHashes[i] must be SHA-256 of plaintext chunk i. */
export function encryptChunk(plain: Buffer, index: number, preHashes: readonly Buffer[]): Buffer {
  return encryptChunkAt(plain, index, preHashes.length, (i) => preHashes[i]!);
}

/**
 * encryptChunk for one of `n` chunks, given only an accessor for the pre-hashes: a worker that
 * encrypts chunk `index` needs just its own and its two predecessors' hashes, not the whole map.
 */
export function encryptChunkAt(plain: Buffer, index: number, n: number, preHash: (i: number) => Buffer): Buffer {
  checkChunkRef(index, n);
  if (plain.length > MAX_PLAIN_CHUNK_SIZE) fail('too-large', `chunk of ${plain.length} bytes exceeds ${MAX_PLAIN_CHUNK_SIZE}`);
  const deflated = deflateIfWorthIt(plain);
  // Incompressible data is kept raw, so a stored chunk never exceeds plaintext + 1 flag byte.
  const payload =
    deflated && deflated.length < plain.length
      ? Buffer.concat([Buffer.of(FLAG_DEFLATED), deflated])
      : Buffer.concat([Buffer.of(FLAG_RAW), plain]);
  const { key, iv, padKey } = chunkKeys(index, n, preHash);
  return ctr(padKey, ZERO_IV, ctr(key, iv, payload));
}

/** Decrypts stored chunk `index`, verifying both its name and its plaintext hash. */
export function decryptChunk(stored: Buffer, index: number, map: DataMap): Buffer {
  checkChunkRef(index, map.chunks.length);
  return decryptChunkAt(stored, index, map.chunks.length, (i) => map.chunks[i]!, (i) => map.chunks[i]!.preHash);
}

/** decryptChunk given accessors for the map's entries (a worker gets only the three it needs). */
export function decryptChunkAt(stored: Buffer, index: number, n: number, entry: (i: number) => DataMapChunk, preHash: (i: number) => Buffer): Buffer {
  if (!sha256(stored).equals(entry(index).name)) fail('bad-hash', `chunk ${index} does not match its name`);
  return decryptNamedChunk(stored, index, n, entry(index), preHash);
}

/** decryptChunkAt for bytes already checked against the chunk's name. */
export function decryptNamedChunk(stored: Buffer, index: number, n: number, chunk: DataMapChunk, preHash: (i: number) => Buffer): Buffer {
  checkChunkRef(index, n);
  const { key, iv, padKey } = chunkKeys(index, n, preHash);
  const payload = ctr(key, iv, ctr(padKey, ZERO_IV, stored));
  const bad = (): never => fail('bad-hash', `chunk ${index} does not decrypt to its pre-hash`);
  let plain: Buffer;
  if (payload[0] === FLAG_RAW) {
    plain = payload.subarray(1);
  } else if (payload[0] === FLAG_DEFLATED) {
    // Bounded by the expected size so a hostile chunk cannot inflate without limit.
    try {
      plain = inflateRawSync(payload.subarray(1), { maxOutputLength: Math.max(1, chunk.size) });
    } catch {
      return bad();
    }
  } else {
    return bad();
  }
  if (plain.length !== chunk.size || !sha256(plain).equals(chunk.preHash)) bad();
  return plain;
}

/** A data map must be exactly what planChunks gives for its size, with 32-byte hashes. */
function checkDataMap(map: DataMap): void {
  const plan = planChunks(map.size);
  if (map.chunks.length !== plan.length) fail('bad-request', `data map has ${map.chunks.length} chunks, expected ${plan.length}`);
  map.chunks.forEach((c, i) => {
    if (c.name.length !== HASH_SIZE || c.preHash.length !== HASH_SIZE) fail('bad-request', `data map chunk ${i} has a bad hash`);
    if (c.size !== plan[i]!.length) fail('bad-request', `data map chunk ${i} has size ${c.size}, expected ${plan[i]!.length}`);
  });
}

export function encodeDataMap(map: DataMap): Buffer {
  checkDataMap(map);
  const out = Buffer.alloc(MAP_HEADER_SIZE + map.chunks.length * MAP_ENTRY_SIZE);
  MAP_MAGIC.copy(out, 0);
  out.writeUInt8(MAP_VERSION, MAP_MAGIC.length);
  out.writeBigUInt64BE(BigInt(map.size), MAP_MAGIC.length + 1);
  map.chunks.forEach((c, i) => {
    const at = MAP_HEADER_SIZE + i * MAP_ENTRY_SIZE;
    c.name.copy(out, at);
    c.preHash.copy(out, at + HASH_SIZE);
  });
  return out;
}

export function decodeDataMap(bytes: Buffer): DataMap {
  if (bytes.length < MAP_HEADER_SIZE || !bytes.subarray(0, MAP_MAGIC.length).equals(MAP_MAGIC)) {
    fail('bad-request', 'not a data map');
  }
  const version = bytes.readUInt8(MAP_MAGIC.length);
  if (version !== MAP_VERSION) fail('bad-request', `unsupported data map version ${version}`);
  const bigSize = bytes.readBigUInt64BE(MAP_MAGIC.length + 1);
  if (bigSize > BigInt(Number.MAX_SAFE_INTEGER)) fail('bad-request', 'data map file size too large');
  const size = Number(bigSize);
  // Check the length before planning, so a garbage size cannot make us build a huge plan.
  const expected = MAP_HEADER_SIZE + chunkCount(size) * MAP_ENTRY_SIZE;
  if (bytes.length !== expected) fail('bad-request', `data map is ${bytes.length} bytes, expected ${expected}`);
  const chunks = planChunks(size).map(({ length }, i) => {
    const at = MAP_HEADER_SIZE + i * MAP_ENTRY_SIZE;
    return {
      name: Buffer.from(bytes.subarray(at, at + HASH_SIZE)),
      preHash: Buffer.from(bytes.subarray(at + HASH_SIZE, at + MAP_ENTRY_SIZE)),
      size: length,
    };
  });
  return { size, chunks };
}

function checkSealKey(key: Buffer): void {
  if (key.length !== 32) fail('bad-request', `data map key must be 32 bytes, got ${key.length}`);
}

/** nonce(12) || AES-256-GCM ciphertext || tag(16). */
export function sealDataMap(map: DataMap, key: Buffer): Buffer {
  checkSealKey(key);
  const nonce = randomBytes(SEAL_NONCE_SIZE);
  const cipher = createCipheriv('aes-256-gcm', key, nonce);
  cipher.setAAD(SEAL_AAD);
  const body = Buffer.concat([cipher.update(encodeDataMap(map)), cipher.final()]);
  return Buffer.concat([nonce, body, cipher.getAuthTag()]);
}

export function openDataMap(sealed: Buffer, key: Buffer): DataMap {
  checkSealKey(key);
  if (sealed.length < SEAL_NONCE_SIZE + SEAL_TAG_SIZE) fail('bad-hash', 'sealed data map is truncated');
  const nonce = sealed.subarray(0, SEAL_NONCE_SIZE);
  const body = sealed.subarray(SEAL_NONCE_SIZE, sealed.length - SEAL_TAG_SIZE);
  const decipher = createDecipheriv('aes-256-gcm', key, nonce);
  decipher.setAAD(SEAL_AAD);
  decipher.setAuthTag(sealed.subarray(sealed.length - SEAL_TAG_SIZE));
  let plain: Buffer;
  try {
    plain = Buffer.concat([decipher.update(body), decipher.final()]);
  } catch {
    return fail('bad-hash', 'sealed data map failed authentication (tampered or wrong key)');
  }
  return decodeDataMap(plain);
}

/** Opens a regular file for reading, or returns null if it does not exist. */
async function openIfExists(path: string): Promise<FileHandle | null> {
  let fh: FileHandle;
  try {
    fh = await open(path, 'r');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
  if (!(await fh.stat()).isFile()) {
    await fh.close();
    fail('bad-request', `not a regular file: ${path}`);
  }
  return fh;
}

/** Reads exactly buf.length bytes at `position`; false if the file ends first. */
async function readExactly(fh: FileHandle, buf: Buffer, position: number): Promise<boolean> {
  let got = 0;
  while (got < buf.length) {
    const { bytesRead } = await fh.read(buf, got, buf.length - got, position + got);
    if (bytesRead === 0) return false;
    got += bytesRead;
  }
  return true;
}

async function writeAll(fh: FileHandle, buf: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < buf.length) {
    const { bytesWritten } = await fh.write(buf, done, buf.length - done, position + done);
    done += bytesWritten;
  }
}

/** Chunks in flight at once (read, encrypted, stored or fetched, decrypted, written): enough to keep
 * the workers and the network busy, few enough that memory stays flat whatever the file's size. */
export const CHUNKS_IN_FLIGHT = 8;

/**
 * Runs task(0..count-1), at most `width` at a time, started in index order. After a failure no new
 * task starts; the ones running finish, then the first error is thrown.
 */
async function bounded(count: number, width: number, task: (i: number) => Promise<void>, signal?: AbortSignal): Promise<void> {
  let next = 0;
  let failure: { error: unknown } | undefined;
  const lane = async (): Promise<void> => {
    while (!failure && next < count) {
      const i = next++;
      try {
        signal?.throwIfAborted();
        await task(i);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(width, count) }, lane));
  if (failure) throw failure.error;
}

/** A fresh buffer per chunk, holding its plaintext: it moves to a worker, so it is never reused. */
async function readChunk(fh: FileHandle, { offset, length }: { offset: number; length: number }, changed: () => SafeVaultError): Promise<Buffer> {
  const plain = Buffer.allocUnsafeSlow(length);
  if (!(await readExactly(fh, plain, offset))) throw changed();
  return plain;
}

/** The file's size and modification time, to tell whether it changed while it was being stored. */
async function stamp(fh: FileHandle): Promise<string> {
  const { size, mtimeNs, ctimeNs } = await fh.stat({ bigint: true });
  return `${size}:${mtimeNs}:${ctimeNs}`;
}

/** The pre-hashes a worker needs for chunk `index`: its own, then its two predecessors'. */
const keyHashes = <T>(hashes: readonly T[], index: number): T[] => {
  const n = hashes.length;
  return [hashes[index]!, hashes[(index + n - 1) % n]!, hashes[(index + n - 2) % n]!];
};

/**
 * Two streaming passes over the file (hash every chunk, since each chunk's keys depend on its
 * neighbours; then encrypt and store), side by side, with the CPU work on the worker pool and at
 * most CHUNKS_IN_FLIGHT chunks of each pass in memory, so a file of any size is never held whole. Calls
 * store(name, bytes, index) for each chunk, in index order but several at once, and awaits it;
 * onProgress(doneBytes, totalBytes) after each. Throws 'not-found' if the file is missing at the
 * start, and 'conflict' if it changes (size, content or modification time) before the last chunk is
 * stored, or vanishes. An aborted `signal` stops it before the next chunk, throwing the signal's
 * reason (checked again before each store and at the end), once the chunks in flight have settled.
 * Returns the data map.
 */
export async function selfEncryptFile(
  path: string,
  store: (name: Buffer, bytes: Buffer, index: number) => Promise<void>,
  onProgress?: (done: number, total: number) => void,
  signal?: AbortSignal,
  workers: ChunkWorkers = chunkWorkers(),
): Promise<DataMap> {
  const changed = () => new SafeVaultError('conflict', `file changed while it was being stored: ${path}`);
  const fh = await openIfExists(path);
  if (!fh) return fail('not-found', `file not found: ${path}`);
  try {
    const before = await stamp(fh);
    const size = (await fh.stat()).size;
    const plan = planChunks(size);
    const n = plan.length;
    // Pass 1 hashes the last two chunks first: chunk i's keys need only pre-hashes i, i-1 and i-2
    // (wrapping), so pass 2 can take each chunk as soon as its own is hashed.
    const preHashes = Array.from({ length: n }, () => Promise.withResolvers<Buffer>());
    const hashOrder = [n - 2, n - 1, ...Array.from({ length: n - 2 }, (_, i) => i)];
    const hashing = bounded(n, CHUNKS_IN_FLIGHT, async (k) => {
      const i = hashOrder[k]!;
      preHashes[i]!.resolve(await workers.hash(await readChunk(fh, plan[i]!, changed)));
    }, signal);
    // A failed pass 1 fails every chunk still waiting for a hash with its error (reported once, below).
    for (const h of preHashes) h.promise.catch(() => undefined);
    hashing.catch((error: unknown) => preHashes.forEach((h) => h.reject(error)));
    // Pass 2: each chunk is checked against its pass-1 hash as it is encrypted, so a file edited in
    // the meantime cannot produce a data map that mixes two versions.
    const chunks: DataMapChunk[] = new Array<DataMapChunk>(n);
    // Stores start in index order (and then run side by side): each waits for the previous one to start.
    const started = Array.from({ length: n }, () => Promise.withResolvers<void>());
    let done = 0;
    const encrypting = bounded(n, CHUNKS_IN_FLIGHT, async (i) => {
      const { length } = plan[i]!;
      let storing: Promise<void>;
      try {
        const hashes = await Promise.all(keyHashes(preHashes, i).map((h) => h.promise));
        const encrypted = (await workers.encrypt(await readChunk(fh, plan[i]!, changed), i, n, hashes)) ?? fail('conflict', changed().message);
        if (i > 0) await started[i - 1]!.promise;
        // Every chunk may be under way at once, so a cancel is checked before each store, not only each read.
        signal?.throwIfAborted();
        storing = store(encrypted.name, encrypted.stored, i);
        chunks[i] = { name: encrypted.name, preHash: hashes[0]!, size: length };
      } finally {
        started[i]!.resolve();
      }
      await storing;
      done += length;
      onProgress?.(done, size);
    }, signal);
    // Both passes settle before anything is thrown: a store still running when the caller cleans up would be missed.
    const [hashed, encrypted] = await Promise.allSettled([hashing, encrypting]);
    for (const pass of [encrypted, hashed]) if (pass.status === 'rejected') throw pass.reason;
    signal?.throwIfAborted();
    if ((await stamp(fh)) !== before) throw changed();
    return { size, chunks };
  } finally {
    await fh.close();
  }
}

/**
 * Fetches stored chunk `index` (named `name`) and gives it to `open`, which decrypts it after
 * checking it against its name (on a worker, so each chunk is hashed once): `open` gives null for
 * bytes that are not that chunk, and the fetch may then try another source.
 */
export type ChunkFetch = (index: number, name: Buffer, open: (stored: Buffer) => Promise<Buffer | null>) => Promise<Buffer>;

/**
 * Fetches, decrypts and verifies the chunks (CHUNKS_IN_FLIGHT at a time, decrypted on the worker
 * pool) into a temporary file next to outPath, written in order, then renames it into place, so
 * outPath is either absent/unchanged or complete. Removes the temporary file on any error,
 * including an abort of `signal` (checked before each chunk). Returns the bytes written.
 */
export async function selfDecryptToFile(
  map: DataMap,
  fetch: ChunkFetch,
  outPath: string,
  onProgress?: (done: number, total: number) => void,
  signal?: AbortSignal,
  workers: ChunkWorkers = chunkWorkers(),
): Promise<number> {
  checkDataMap(map);
  const n = map.chunks.length;
  const hashes = map.chunks.map((c) => c.preHash);
  // Same directory, so the final rename is atomic; dot-prefixed and random so it never clashes.
  const tmp = join(dirname(outPath), `.${basename(outPath)}.${randomBytes(8).toString('hex')}.partial`);
  const fh = await open(tmp, 'wx');
  try {
    let done = 0;
    try {
      // Each chunk's write waits for the one before it, so the file is written front to back; a
      // chunk that fails fails the ones after it that are waiting.
      const written = Array.from({ length: n }, () => Promise.withResolvers<void>());
      for (const w of written) w.promise.catch(() => undefined); // awaited by the next chunk, if it started
      await bounded(n, CHUNKS_IN_FLIGHT, async (i) => {
        try {
          const chunk = map.chunks[i]!;
          const plain = fetch(i, chunk.name, (stored) => workers.decrypt(stored, chunk, i, n, keyHashes(hashes, i)));
          // Its failure is awaited below, after the writes before it: marked handled meanwhile.
          plain.catch(() => undefined);
          if (i > 0) await written[i - 1]!.promise;
          signal?.throwIfAborted();
          const bytes = await plain;
          await writeAll(fh, bytes, done);
          done += bytes.length;
          onProgress?.(done, map.size);
          written[i]!.resolve();
        } catch (error) {
          written[i]!.reject(error);
          throw error;
        }
      }, signal);
      signal?.throwIfAborted();
      // Flush before the rename, so a crash cannot leave a complete name over incomplete data.
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, outPath);
    return done;
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}
