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
  return Buffer.concat([cipher.update(data), cipher.final()]);
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
  checkChunkRef(index, preHashes.length);
  if (plain.length > MAX_PLAIN_CHUNK_SIZE) fail('too-large', `chunk of ${plain.length} bytes exceeds ${MAX_PLAIN_CHUNK_SIZE}`);
  const deflated = deflateIfWorthIt(plain);
  // Incompressible data is kept raw, so a stored chunk never exceeds plaintext + 1 flag byte.
  const payload =
    deflated && deflated.length < plain.length
      ? Buffer.concat([Buffer.of(FLAG_DEFLATED), deflated])
      : Buffer.concat([Buffer.of(FLAG_RAW), plain]);
  const { key, iv, padKey } = chunkKeys(index, preHashes.length, (i) => preHashes[i]!);
  return ctr(padKey, ZERO_IV, ctr(key, iv, payload));
}

/** Decrypts stored chunk `index`, verifying both its name and its plaintext hash. */
export function decryptChunk(stored: Buffer, index: number, map: DataMap): Buffer {
  checkChunkRef(index, map.chunks.length);
  const chunk = map.chunks[index]!;
  if (!sha256(stored).equals(chunk.name)) fail('bad-hash', `chunk ${index} does not match its name`);
  const { key, iv, padKey } = chunkKeys(index, map.chunks.length, (i) => map.chunks[i]!.preHash);
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

/** Pass 1 of selfEncryptFile: every chunk's plaintext hash, since each chunk's keys depend on its neighbours. */
async function hashPass(
  path: string,
  changed: () => SafeVaultError,
): Promise<{ size: number; plan: { offset: number; length: number }[]; preHashes: Buffer[] }> {
  const fh = await openIfExists(path);
  if (!fh) return fail('not-found', `file not found: ${path}`);
  try {
    const size = (await fh.stat()).size;
    const plan = planChunks(size);
    // The first chunk is the largest, so one buffer serves every chunk.
    const buf = Buffer.allocUnsafe(plan[0]!.length);
    const preHashes: Buffer[] = [];
    for (const { offset, length } of plan) {
      const plain = buf.subarray(0, length);
      if (!(await readExactly(fh, plain, offset))) throw changed();
      preHashes.push(sha256(plain));
    }
    return { size, plan, preHashes };
  } finally {
    await fh.close();
  }
}

/**
 * Two passes over the file (hash, then encrypt), so memory stays at about one chunk. Calls
 * store(name, bytes, index) for each chunk in order and awaits it; onProgress(doneBytes, totalBytes)
 * after each. Throws 'not-found' if the file is missing at the start, and 'conflict' if it changes
 * size or content between the passes, or vanishes. An aborted `signal` stops it before the next chunk,
 * throwing the signal's reason. Returns the data map.
 */
export async function selfEncryptFile(
  path: string,
  store: (name: Buffer, bytes: Buffer, index: number) => Promise<void>,
  onProgress?: (done: number, total: number) => void,
  signal?: AbortSignal,
): Promise<DataMap> {
  const changed = () => new SafeVaultError('conflict', `file changed while it was being stored: ${path}`);

  const { size, plan, preHashes } = await hashPass(path, changed);
  const buf = Buffer.allocUnsafe(plan[0]!.length);
  // Pass 2: encrypt and store, re-checking each chunk against pass 1 so a file edited in the
  // meantime cannot produce a data map that mixes two versions.
  const fh = await openIfExists(path);
  if (!fh) throw changed();
  try {
    if ((await fh.stat()).size !== size) throw changed();
    const chunks: DataMapChunk[] = [];
    let done = 0;
    for (const [i, { offset, length }] of plan.entries()) {
      signal?.throwIfAborted();
      const plain = buf.subarray(0, length);
      if (!(await readExactly(fh, plain, offset)) || !sha256(plain).equals(preHashes[i]!)) throw changed();
      const stored = encryptChunk(plain, i, preHashes);
      const name = sha256(stored);
      await store(name, stored, i);
      chunks.push({ name, preHash: preHashes[i]!, size: length });
      done += length;
      onProgress?.(done, size);
    }
    if ((await fh.stat()).size !== size) throw changed();
    return { size, chunks };
  } finally {
    await fh.close();
  }
}

/**
 * Fetches, decrypts and verifies each chunk into a temporary file next to outPath, then renames it
 * into place, so outPath is either absent/unchanged or complete. Removes the temporary file on any
 * error, including an abort of `signal` (checked before each chunk). Returns the bytes written.
 */
export async function selfDecryptToFile(
  map: DataMap,
  fetch: (index: number, name: Buffer) => Promise<Buffer>,
  outPath: string,
  onProgress?: (done: number, total: number) => void,
  signal?: AbortSignal,
): Promise<number> {
  checkDataMap(map);
  // Same directory, so the final rename is atomic; dot-prefixed and random so it never clashes.
  const tmp = join(dirname(outPath), `.${basename(outPath)}.${randomBytes(8).toString('hex')}.partial`);
  const fh = await open(tmp, 'wx');
  try {
    let done = 0;
    try {
      for (const [i, chunk] of map.chunks.entries()) {
        signal?.throwIfAborted();
        const plain = decryptChunk(await fetch(i, chunk.name), i, map);
        await writeAll(fh, plain, done);
        done += plain.length;
        onProgress?.(done, map.size);
      }
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
