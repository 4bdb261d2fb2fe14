/**
 * The file path against Helia (IPFS in JS, unixfs on a filesystem blockstore), on the same file in
 * the same process, alternating run by run: put and get throughput, bytes between vaults per stored
 * byte (counted by the hub), resident memory idle and during a big put, and what fsync would cost.
 */
import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, fsyncSync, mkdirSync, openSync, closeSync, renameSync, writeFileSync, writeSync } from 'node:fs';
import { open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { unixfs } from '@helia/unixfs';
import { FsBlockstore } from 'blockstore-fs';
import { createHeliaLight } from 'helia';
import { openEngine } from '../../electron/engine/engine.ts';
import { asLocal } from '../helpers.ts';

const MiB = 1024 * 1024;

export interface FileRuns {
  bytes: number;
  svPutMBs: number;
  svGetMBs: number;
  heliaAddMBs: number;
  heliaCatMBs: number;
  /** Bytes on the wire between vaults (and from the client) per byte stored, during the put. */
  wirePerStoredByte: number;
  messagesPerChunk: number;
}

export interface MemoryRun {
  bytes: number;
  idleRss: number;
  peakRss: number;
  /** The peak in each quarter of the put, by bytes stored: flat when the later quarters do not climb. */
  quarterPeaks: number[];
  putMBs: number;
}

export interface FsyncCost {
  chunks: number;
  plainMs: number;
  fsyncMs: number;
}

const median = (values: number[]): number => [...values].sort((a, b) => a - b)[values.length >> 1]!;
const MBs = (bytes: number, ms: number): number => bytes / 1e6 / (ms / 1000);

async function timed<T>(fn: () => Promise<T>): Promise<{ ms: number; result: T }> {
  const t0 = performance.now();
  const result = await fn();
  return { ms: performance.now() - t0, result };
}

/** A file of random bytes written a block at a time, so not even the benchmark holds it whole. */
export async function writeRandomFile(path: string, bytes: number): Promise<void> {
  const fh = await open(path, 'w');
  for (let at = 0; at < bytes; at += 4 * MiB) await fh.write(randomBytes(Math.min(4 * MiB, bytes - at)));
  await fh.close();
}

/**
 * Helia's add then cat of `src` on a fresh filesystem blockstore under `dir` (so it deduplicates
 * against no earlier run), with no networking: the baseline every SafeVault file path is set beside.
 */
export async function heliaAddCat(dir: string, src: string): Promise<{ addMs: number; catMs: number }> {
  const blocks = join(dir, 'helia-blocks');
  const node = createHeliaLight({ blockstore: new FsBlockstore(blocks) });
  try {
    const fs = unixfs(node);
    const add = await timed(() => fs.addByteStream(createReadStream(src)));
    const cat = await timed(() => pipeline(Readable.from(fs.cat(add.result)), createWriteStream(join(dir, 'helia.out'))));
    return { addMs: add.ms, catMs: cat.ms };
  } finally {
    await node.stop();
    await rm(blocks, { recursive: true, force: true });
    await rm(join(dir, 'helia.out'), { force: true });
  }
}

/** `runs` rounds, each Helia then SafeVault on fresh stores (so neither deduplicates against an earlier round). */
export async function filesAgainstHelia(dir: string, src: string, bytes: number, runs: number, progress: (m: string) => void): Promise<FileRuns> {
  const sv = { put: [] as number[], get: [] as number[], wire: [] as number[], messages: [] as number[] };
  const helia = { add: [] as number[], cat: [] as number[] };
  for (let run = 0; run < runs; run++) {
    const { addMs, catMs } = await heliaAddCat(dir, src);
    helia.add.push(addMs);
    helia.cat.push(catMs);
    progress(`  helia run ${run + 1}: add ${MBs(bytes, addMs).toFixed(1)} MB/s, cat ${MBs(bytes, catMs).toFixed(1)} MB/s`);

    const dataDir = join(dir, `engine-${run}`);
    const engine = asLocal(await openEngine({ dataDir, vaults: 12 }));
    try {
      const before = engine.network.hub.stats();
      const put = await timed(() => engine.putFile({ as: 'bench', path: src }));
      const after = engine.network.hub.stats();
      const get = await timed(() => engine.getFile({ as: 'bench', id: put.result.id, out: join(dir, 'safevault.out') }));
      sv.put.push(put.ms);
      sv.get.push(get.ms);
      sv.wire.push((after.bytes - before.bytes) / (bytes + put.result.chunks.length));
      sv.messages.push((after.messages - before.messages) / put.result.chunks.length);
      progress(`  safevault run ${run + 1}: put ${MBs(bytes, put.ms).toFixed(1)} MB/s, get ${MBs(bytes, get.ms).toFixed(1)} MB/s`);
    } finally {
      await engine.close();
      await rm(dataDir, { recursive: true, force: true });
    }
  }
  return {
    bytes,
    svPutMBs: MBs(bytes, median(sv.put)),
    svGetMBs: MBs(bytes, median(sv.get)),
    heliaAddMBs: MBs(bytes, median(helia.add)),
    heliaCatMBs: MBs(bytes, median(helia.cat)),
    wirePerStoredByte: median(sv.wire),
    messagesPerChunk: median(sv.messages),
  };
}

/** Resident memory of this process with the 12-vault network idle, then sampled through a put of `bytes`. */
export async function memoryDuringPut(dir: string, bytes: number, progress: (m: string) => void): Promise<MemoryRun> {
  const src = join(dir, 'big.bin');
  await writeRandomFile(src, bytes);
  const dataDir = join(dir, 'engine-big');
  const engine = await openEngine({ dataDir, vaults: 12 });
  try {
    await new Promise((resolve) => setTimeout(resolve, 2000)); // idle: after start-up's work has settled
    const idleRss = process.memoryUsage().rss;
    const quarterPeaks = [idleRss, idleRss, idleRss, idleRss];
    let quarter = 0;
    const stopWatching = engine.onEvent((e) => {
      if (e.type === 'file.progress' && e.direction === 'store') quarter = Math.min(3, Math.floor((4 * e.done) / e.total));
    });
    const sampler = setInterval(() => (quarterPeaks[quarter] = Math.max(quarterPeaks[quarter]!, process.memoryUsage().rss)), 50);
    let ms: number;
    try {
      ({ ms } = await timed(() => engine.putFile({ as: 'bench', path: src })));
    } finally {
      clearInterval(sampler);
      stopWatching();
    }
    const peakRss = Math.max(...quarterPeaks);
    const shown = quarterPeaks.map((rss) => (rss / MiB).toFixed(0)).join(' / ');
    progress(`  ${bytes / MiB} MiB put: ${MBs(bytes, ms).toFixed(1)} MB/s, resident ${(idleRss / MiB).toFixed(0)} -> peak per quarter ${shown} MiB`);
    return { bytes, idleRss, peakRss, quarterPeaks, putMBs: MBs(bytes, ms) };
  } finally {
    await engine.close();
    await rm(dataDir, { recursive: true, force: true });
    await rm(src, { force: true });
  }
}

/**
 * A storage node's write of `chunks` 1 MiB chunks as it does it (temp file, then rename), and the
 * same with an fsync of each file before its rename: what an fsync'd acknowledgement would cost.
 */
export function fsyncCost(dir: string, chunks: number): FsyncCost {
  const bytes = randomBytes(MiB);
  const write = (sub: string, sync: boolean): number => {
    const at = join(dir, sub);
    mkdirSync(at, { recursive: true });
    const t0 = performance.now();
    for (let i = 0; i < chunks; i++) {
      const path = join(at, `chunk-${i}`);
      if (!sync) {
        writeFileSync(`${path}.tmp`, bytes);
      } else {
        const fd = openSync(`${path}.tmp`, 'w');
        writeSync(fd, bytes);
        fsyncSync(fd);
        closeSync(fd);
      }
      renameSync(`${path}.tmp`, path);
    }
    return performance.now() - t0;
  };
  const plainMs = write('plain', false);
  const fsyncMs = write('fsync', true);
  return { chunks, plainMs, fsyncMs };
}
