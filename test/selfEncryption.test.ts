import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { hash, randomBytes } from 'node:crypto';
import { appendFile, mkdtemp, open, readFile, readdir, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MAX_CHUNK_SIZE } from '../electron/engine/constants.ts';
import { fail, SafeVaultError } from '../electron/api/errors.ts';
import type { ErrorCode } from '../electron/api/errors.ts';
import {
  MAX_PLAIN_CHUNK_SIZE as P,
  decodeDataMap,
  decryptChunk,
  encodeDataMap,
  encryptChunk,
  openDataMap,
  planChunks,
  sealDataMap,
  selfDecryptToFile,
  selfEncryptFile,
} from '../electron/engine/client/selfEncryption.ts';
import type { ChunkFetch, DataMap } from '../electron/engine/client/selfEncryption.ts';

const MiB = 1024 * 1024;
const isCode = (code: ErrorCode) => (e: unknown) => e instanceof SafeVaultError && e.code === code;
const sha256 = (b: Buffer): Buffer => hash('sha256', b, 'buffer');

let dir: string;
let seq = 0;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'safevault-se-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A fresh empty directory, so tests can check that nothing is left behind in it. */
async function freshDir(): Promise<string> {
  return mkdtemp(join(dir, `d${seq++}-`));
}

async function writeTemp(data: Buffer): Promise<string> {
  const path = join(await freshDir(), 'in.bin');
  await writeFile(path, data);
  return path;
}

/** Encrypts a file into an in-memory store, checking the callbacks' order along the way. */
async function encryptToStore(path: string): Promise<{ map: DataMap; stored: Buffer[] }> {
  const stored: Buffer[] = [];
  const progress: number[] = [];
  let total = -1;
  const map = await selfEncryptFile(
    path,
    async (name, bytes, index) => {
      assert.equal(index, stored.length);
      assert.ok(bytes.length <= MAX_CHUNK_SIZE);
      assert.deepEqual(name, sha256(bytes));
      stored.push(bytes);
    },
    (done, t) => {
      progress.push(done);
      total = t;
    },
  );
  assert.equal(stored.length, map.chunks.length);
  assert.equal(progress.length, map.chunks.length);
  assert.equal(progress.at(-1), map.size);
  assert.equal(total, map.size);
  return { map, stored };
}

/** A fetch from one copy of each chunk: what `open` refuses is no other source's to serve. */
const fetchFrom =
  (stored: Buffer[]): ChunkFetch =>
  async (index, _name, decrypt) =>
    (await decrypt(stored[index]!)) ?? fail('bad-hash', `chunk ${index} is not the chunk named`);

describe('planChunks', () => {
  test('small files still make three chunks', () => {
    assert.deepEqual(planChunks(0), [
      { offset: 0, length: 0 },
      { offset: 0, length: 0 },
      { offset: 0, length: 0 },
    ]);
    assert.deepEqual(planChunks(1).map((c) => c.length), [1, 0, 0]);
    assert.deepEqual(planChunks(2).map((c) => c.length), [1, 1, 0]);
    assert.deepEqual(planChunks(3).map((c) => c.length), [1, 1, 1]);
  });

  test('chunks are contiguous, near-equal, within P, and cover the file', () => {
    for (const size of [0, 1, 2, 3, 4, 1000, 3 * P - 1, 3 * P, 3 * P + 1, 3 * MiB + 1, 10 * MiB + 7, 1e10 + 3]) {
      const plan = planChunks(size);
      let offset = 0;
      for (const c of plan) {
        assert.equal(c.offset, offset);
        assert.ok(c.length <= P, `size ${size}`);
        offset += c.length;
      }
      assert.equal(offset, size);
      const lo = Math.floor(size / plan.length);
      assert.ok(plan.every((c) => c.length === lo || c.length === lo + 1), `size ${size}`);
    }
  });

  test('chunk count grows past three only when a chunk would exceed P', () => {
    assert.equal(planChunks(3 * P).length, 3);
    assert.equal(planChunks(3 * P + 1).length, 4);
    assert.equal(planChunks(3 * MiB + 1).length, 4);
  });

  test('rejects impossible sizes', () => {
    assert.throws(() => planChunks(-1), isCode('bad-request'));
    assert.throws(() => planChunks(1.5), isCode('bad-request'));
  });

  test('a stored chunk of incompressible data at the largest plaintext size fits MAX_CHUNK_SIZE', () => {
    const preHashes = [randomBytes(32), randomBytes(32), randomBytes(32)];
    const stored = encryptChunk(randomBytes(P), 0, preHashes);
    assert.ok(stored.length <= MAX_CHUNK_SIZE, `${stored.length} > ${MAX_CHUNK_SIZE}`);
    assert.throws(() => encryptChunk(randomBytes(P + 1), 0, preHashes), isCode('too-large'));
  });
});

describe('round trip', () => {
  for (const [label, size] of [
    ['0 bytes', 0],
    ['1 byte', 1],
    ['1000 bytes', 1000],
    ['3*P bytes', 3 * P],
    ['5 MiB', 5 * MiB],
  ] as const) {
    test(`${label} of random data comes back byte-identical`, async () => {
      const data = randomBytes(size);
      const { map, stored } = await encryptToStore(await writeTemp(data));
      assert.equal(map.size, size);
      assert.deepEqual(
        map.chunks.map((c) => c.size),
        planChunks(size).map((c) => c.length),
      );
      const outDir = await freshDir();
      const outPath = join(outDir, 'out.bin');
      const progress: number[] = [];
      const written = await selfDecryptToFile(map, fetchFrom(stored), outPath, (done) => progress.push(done));
      assert.equal(written, size);
      assert.equal(progress.at(-1), size);
      assert.ok((await readFile(outPath)).equals(data));
      assert.deepEqual(await readdir(outDir), ['out.bin']);
    });
  }

  test('replaces an existing output file', async () => {
    const data = randomBytes(5000);
    const { map, stored } = await encryptToStore(await writeTemp(data));
    const outPath = join(await freshDir(), 'out.bin');
    await writeFile(outPath, 'old contents');
    await selfDecryptToFile(map, fetchFrom(stored), outPath);
    assert.ok((await readFile(outPath)).equals(data));
  });
});

describe('convergence', () => {
  test('the same content gives the same chunks; one changed byte changes them', async () => {
    const data = randomBytes(100_000);
    const a = await encryptToStore(await writeTemp(data));
    const b = await encryptToStore(await writeTemp(data));
    assert.deepEqual(
      a.map.chunks.map((c) => c.name),
      b.map.chunks.map((c) => c.name),
    );
    assert.deepEqual(a.stored, b.stored);

    const changed = Buffer.from(data);
    changed[10] = changed[10]! ^ 1;
    const c = await encryptToStore(await writeTemp(changed));
    // With three chunks every chunk depends on the changed one (its own hash or a neighbour's).
    for (const [i, chunk] of c.map.chunks.entries()) {
      assert.notDeepEqual(chunk.name, a.map.chunks[i]!.name, `chunk ${i}`);
    }
  });

  test('stored chunks do not contain the plaintext', async () => {
    const data = Buffer.alloc(3000, 'secret!');
    const { stored } = await encryptToStore(await writeTemp(data));
    for (const s of stored) assert.equal(s.indexOf('secret'), -1);
  });
});

test('compressible data makes smaller chunks than random data', async () => {
  const zeros = await encryptToStore(await writeTemp(Buffer.alloc(2 * MiB)));
  const random = await encryptToStore(await writeTemp(randomBytes(2 * MiB)));
  const total = (s: Buffer[]) => s.reduce((n, b) => n + b.length, 0);
  assert.ok(total(zeros.stored) * 10 < total(random.stored), `${total(zeros.stored)} vs ${total(random.stored)}`);
  assert.ok(total(random.stored) >= 2 * MiB);
});

describe('tampering', () => {
  test('a flipped byte in a stored chunk is bad-hash and leaves no output or temp file', async () => {
    const data = randomBytes(50_000);
    const { map, stored } = await encryptToStore(await writeTemp(data));
    const bad = stored.map((s) => Buffer.from(s));
    bad[1]![5] = bad[1]![5]! ^ 0x80;
    assert.throws(() => decryptChunk(bad[1]!, 1, map), isCode('bad-hash'));

    const outDir = await freshDir();
    const outPath = join(outDir, 'out.bin');
    await assert.rejects(selfDecryptToFile(map, fetchFrom(bad), outPath), isCode('bad-hash'));
    assert.deepEqual(await readdir(outDir), []);
  });

  test('a failed decryption leaves an existing output file unchanged', async () => {
    const { map, stored } = await encryptToStore(await writeTemp(randomBytes(50_000)));
    const outDir = await freshDir();
    const outPath = join(outDir, 'out.bin');
    await writeFile(outPath, 'keep me');
    const failing: ChunkFetch = async (i, name, decrypt) => (i === 2 ? Promise.reject(new Error('network down')) : fetchFrom(stored)(i, name, decrypt));
    await assert.rejects(selfDecryptToFile(map, failing, outPath), /network down/);
    assert.equal(await readFile(outPath, 'utf8'), 'keep me');
    assert.deepEqual(await readdir(outDir), ['out.bin']);
  });

  test('a wrong pre-hash is bad-hash, for the chunk and for its neighbours', async () => {
    const { map, stored } = await encryptToStore(await writeTemp(randomBytes(50_000)));
    for (const i of [0, 1, 2]) assert.ok(decryptChunk(stored[i]!, i, map).length > 0);
    const wrong: DataMap = {
      size: map.size,
      chunks: map.chunks.map((c, i) => (i === 1 ? { ...c, preHash: randomBytes(32) } : c)),
    };
    for (const i of [0, 1, 2]) assert.throws(() => decryptChunk(stored[i]!, i, wrong), isCode('bad-hash'), `chunk ${i}`);
  });

  test('a stored chunk under the wrong index is bad-hash', async () => {
    const { map, stored } = await encryptToStore(await writeTemp(randomBytes(50_000)));
    assert.throws(() => decryptChunk(stored[0]!, 1, map), isCode('bad-hash'));
  });
});

describe('data map', () => {
  let map: DataMap;
  before(async () => {
    ({ map } = await encryptToStore(await writeTemp(randomBytes(3 * MiB + 10))));
  });

  test('encode/decode round trip', () => {
    const bytes = encodeDataMap(map);
    assert.equal(bytes.length, 13 + map.chunks.length * 64);
    assert.deepEqual(decodeDataMap(bytes), map);
    const empty: DataMap = { size: 0, chunks: planChunks(0).map(() => ({ name: randomBytes(32), preHash: randomBytes(32), size: 0 })) };
    assert.deepEqual(decodeDataMap(encodeDataMap(empty)), empty);
  });

  test('decode rejects garbage as bad-request', () => {
    const bytes = encodeDataMap(map);
    for (const garbage of [
      Buffer.alloc(0),
      bytes.subarray(0, 12),
      bytes.subarray(0, bytes.length - 1),
      Buffer.concat([bytes, Buffer.of(0)]),
      Buffer.concat([Buffer.from('XXXX'), bytes.subarray(4)]),
      randomBytes(500),
    ]) {
      assert.throws(() => decodeDataMap(garbage), isCode('bad-request'));
    }
    const hugeSize = Buffer.from(bytes);
    hugeSize.writeBigUInt64BE(2n ** 52n, 5);
    assert.throws(() => decodeDataMap(hugeSize), isCode('bad-request'));
  });

  test('encode rejects inconsistent maps', () => {
    assert.throws(() => encodeDataMap({ size: map.size, chunks: map.chunks.slice(1) }), isCode('bad-request'));
    assert.throws(() => encodeDataMap({ size: map.size + 1, chunks: map.chunks }), isCode('bad-request'));
  });

  test('seal/open round trip with a random nonce', () => {
    const key = randomBytes(32);
    const sealed = sealDataMap(map, key);
    assert.deepEqual(openDataMap(sealed, key), map);
    assert.notDeepEqual(sealDataMap(map, key), sealed);
  });

  test('open with a wrong key or a flipped byte is bad-hash', () => {
    const key = randomBytes(32);
    const sealed = sealDataMap(map, key);
    assert.throws(() => openDataMap(sealed, randomBytes(32)), isCode('bad-hash'));
    for (const at of [0, 12, sealed.length >> 1, sealed.length - 1]) {
      const bad = Buffer.from(sealed);
      bad[at] = bad[at]! ^ 1;
      assert.throws(() => openDataMap(bad, key), isCode('bad-hash'), `byte ${at}`);
    }
    assert.throws(() => openDataMap(sealed.subarray(0, 20), key), isCode('bad-hash'));
  });
});

describe('file changes while storing', () => {
  test('truncated between the passes -> conflict', async () => {
    const path = await writeTemp(randomBytes(30_000));
    await assert.rejects(
      selfEncryptFile(path, async (_name, _bytes, index) => {
        if (index === 0) await truncate(path, 100);
      }),
      isCode('conflict'),
    );
  });

  test('same size, different content between the passes -> conflict', async () => {
    const path = await writeTemp(randomBytes(30_000));
    await assert.rejects(
      selfEncryptFile(path, async (_name, _bytes, index) => {
        if (index !== 0) return;
        const fh = await open(path, 'r+');
        await fh.write(Buffer.from('changed'), 0, 7, 25_000);
        await fh.close();
      }),
      isCode('conflict'),
    );
  });

  test('grown after the last chunk was read -> conflict', async () => {
    const path = await writeTemp(randomBytes(30_000));
    await assert.rejects(
      selfEncryptFile(path, async (_name, _bytes, index) => {
        if (index === 2) await appendFile(path, 'more');
      }),
      isCode('conflict'),
    );
  });

  test('a missing file -> not-found', async () => {
    await assert.rejects(
      selfEncryptFile(join(dir, 'no-such-file'), async () => {}),
      isCode('not-found'),
    );
  });
});

test('chunks that arrive out of order are still written in order', async () => {
  const data = randomBytes(50_000);
  const { map, stored } = await encryptToStore(await writeTemp(data));
  // Chunk 0 arrives only once the last chunk has been asked for, so every other chunk is ready first.
  const lastAsked = Promise.withResolvers<void>();
  const fetch: ChunkFetch = async (i, name, decrypt) => {
    if (i === map.chunks.length - 1) lastAsked.resolve();
    if (i === 0) await lastAsked.promise;
    return fetchFrom(stored)(i, name, decrypt);
  };
  const outPath = join(await freshDir(), 'out.bin');
  const progress: number[] = [];
  await selfDecryptToFile(map, fetch, outPath, (done) => progress.push(done));
  assert.ok((await readFile(outPath)).equals(data));
  assert.deepEqual(progress, [...progress].sort((a, b) => a - b));
});
