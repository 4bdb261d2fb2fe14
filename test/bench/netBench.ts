/**
 * The process network's costs (issue 9): resident memory per vault process, frames and bytes per
 * stored chunk over TCP (libp2p: noise, yamux), the time to repair after killing k of n vault
 * processes, a file's put and get through a storage client over the process network beside Helia's
 * add and cat of the same file in the same run, and how many vault processes this machine runs as
 * one network. Progress goes to stderr, the markdown tables to stdout.
 *
 * BENCH_NET_VAULTS (12; 0 skips all but the biggest network), BENCH_NET_KILL (a third), BENCH_NET_CHUNKS (1000, stored BENCH_NET_PARALLEL
 * (16) at a time; the first BENCH_NET_MEASURED (32) one at a time, for the per-chunk frame count),
 * BENCH_NET_CHUNK_BYTES (64 KiB), BENCH_NET_FILE_MIB (32: the file put and got; 0 skips it),
 * BENCH_NET_REPAIR_S (300: how long the repair is waited for), BENCH_NET_MAX (50: the vault
 * processes started as one network; 0 skips it).
 */
import { hash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GROUP_SIZE, MIN_HOLDERS, QUORUM } from '../../electron/engine/constants.ts';
import type { StorageClient } from '../../electron/engine/client/storageClient.ts';
import { closest, toHex, type Name } from '../../electron/engine/names.ts';
import type { WireStats } from '../../electron/engine/transport.ts';
import { fetchFile, hooks, joinClient, startNodes, storeFile, type NodeProcess } from '../net/nodes.ts';
import { heliaAddCat, writeRandomFile } from './filesBench.ts';

const VAULTS = Number(process.env.BENCH_NET_VAULTS ?? 12);
const KILL = Number(process.env.BENCH_NET_KILL ?? Math.floor(VAULTS / 3));
const CHUNKS = Number(process.env.BENCH_NET_CHUNKS ?? 1000);
const MEASURED = Math.min(CHUNKS, Number(process.env.BENCH_NET_MEASURED ?? 32));
const PARALLEL = Number(process.env.BENCH_NET_PARALLEL ?? 16);
const CHUNK_BYTES = Number(process.env.BENCH_NET_CHUNK_BYTES ?? 64 * 1024);
const FILE_MIB = Number(process.env.BENCH_NET_FILE_MIB ?? 32);
const MAX = Number(process.env.BENCH_NET_MAX ?? 50);
const REPAIR_S = Number(process.env.BENCH_NET_REPAIR_S ?? 300);
const started = Date.now();
const progress = (message: string) => process.stderr.write(`[${((Date.now() - started) / 1000).toFixed(1)}s] ${message}\n`);
const fmt = (n: number, digits = 1) => n.toLocaleString('en-US', { maximumFractionDigits: digits });
const mib = (n: number) => `${fmt(n / 1024 ** 2)} MiB`;
const seconds = (since: number) => (Date.now() - since) / 1000;

let cleanups: (() => unknown)[] = [];
hooks.cleanup = (fn) => cleanups.push(fn);
async function cleanUp(): Promise<void> {
  for (const cleanup of cleanups) await cleanup();
  cleanups = [];
}

/** Resident memory of a process, from /proc. */
const rssBytes = (pid: number) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) * 1024;
const spread = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  return `${mib(sorted[0]!)} / ${mib(sorted[sorted.length >> 1]!)} / ${mib(sorted.at(-1)!)}`;
};

/** Frames every running vault sent so far (its SIGUSR2 line), plus the client's own, in all and by message type. */
async function totals(nodes: NodeProcess[], client: { stats(): WireStats }): Promise<WireStats> {
  const all = [...(await Promise.all(nodes.filter((n) => n.alive).map((n) => n.stats()))), client.stats()];
  const sum: WireStats = { messages: 0, bytes: 0, byType: {} };
  for (const stats of all) {
    sum.messages += stats.messages;
    sum.bytes += stats.bytes;
    for (const [type, { messages, bytes }] of Object.entries(stats.byType)) {
      const entry = (sum.byType[type] ??= { messages: 0, bytes: 0 });
      entry.messages += messages;
      entry.bytes += bytes;
    }
  }
  return sum;
}

/** CPU seconds (user and system) a process has used, from /proc: whether a phase is bound by the 2 cores or by waiting. */
const cpuSeconds = (pid: number) => {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime: fields 14 and 15, in ticks of 1/100 s
};

/** Runs `work` on each item, `parallel` at a time. */
async function eachLimited<T>(items: T[], parallel: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(parallel, items.length) }, async () => {
    while (next < items.length) await work(items[next++]!);
  }));
}

/**
 * Waits until every chunk has MIN_HOLDERS listed holders among `running`, or until `deadline`.
 * Each round looks at the running vaults' disks first (no frames), and asks the group only about a
 * chunk enough of them hold: asking about every chunk every round was a third of the repair's frames,
 * crowding out the repair it waited for. A chunk seen repaired is not asked again. Returns the chunks still short.
 */
async function repaired(client: StorageClient, chunks: Name[], running: NodeProcess[], deadline: number): Promise<Name[]> {
  const ids = new Set(running.map((n) => n.id));
  let left = chunks;
  while (left.length > 0 && Date.now() < deadline) {
    const still: Name[] = [];
    const onDisks = left.filter((chunk) => running.filter((n) => n.holdsOnDisk(chunk)).length >= MIN_HOLDERS);
    await eachLimited(onDisks, PARALLEL, async (chunk) => {
      const record = await client.info(chunk).catch(() => null);
      if (!record || record.holders.filter((h) => ids.has(toHex(h))).length < MIN_HOLDERS) still.push(chunk);
    });
    still.push(...left.filter((chunk) => !onDisks.includes(chunk)));
    if (still.length < left.length) progress(`${chunks.length - still.length} of ${chunks.length} chunks repaired`);
    left = still;
    if (left.length > 0) await new Promise((resolve) => setTimeout(resolve, 500));
  }
  return left;
}

/**
 * What the chunks left short have in common: how many of their data_manager group (as all the
 * vaults saw it before the kill) were killed, and what the group answers about them now.
 */
async function shortChunks(client: StorageClient, left: Name[], managersKilled: (chunk: Name) => number, running: Set<string>): Promise<string> {
  const tally = new Map<string, number>();
  for (const chunk of left) {
    const lost = managersKilled(chunk);
    const record = await client.info(chunk).catch((error: Error) => error.message.slice(0, 60));
    const now = typeof record === 'string' ? `info failed: ${record}` : record ? `${record.holders.filter((h) => running.has(toHex(h))).length} running holders` : 'no record';
    const key = `${lost} of its ${GROUP_SIZE} managers killed, ${now}`;
    tally.set(key, (tally.get(key) ?? 0) + 1);
  }
  return [...tally].map(([key, count]) => `${count}: ${key}`).join('; ');
}

const MBs = (bytes: number, ms: number) => bytes / 1e6 / (ms / 1000);
const sameBytes = async (a: string, b: string) => hash('sha256', await readFile(a)) === hash('sha256', await readFile(b));

const rows: string[] = [];
const fileRows: string[] = [];
const repairFrames: string[] = [];
const root = mkdtempSync(join(tmpdir(), 'safevault-netbench-'));
try {
  if (VAULTS > 0) {
    progress(`starting ${VAULTS} vault processes`);
    const nodes = await startNodes((i) => join(root, `v${i}`), VAULTS);
    const formedS = seconds(started);
    const { client, network } = await joinClient(nodes[0]!, VAULTS);
    const rss = nodes.map((n) => rssBytes(n.pid));

    if (FILE_MIB > 0) {
      const bytes = FILE_MIB * 1024 ** 2;
      const src = join(root, 'file.bin');
      const out = join(root, 'file.out');
      await writeRandomFile(src, bytes);
      progress(`file of ${FILE_MIB} MiB: put and get through the client over the process network`);
      const wireBefore = await totals(nodes, network);
      const putStart = Date.now();
      const map = await storeFile(client, src);
      const putMs = Date.now() - putStart;
      const wireAfter = await totals(nodes, network);
      const getStart = Date.now();
      await fetchFile(client, map, out);
      const getMs = Date.now() - getStart;
      if (!(await sameBytes(src, out))) throw new Error('the file got back over the process network differs from the one put');
      progress(`  put ${fmt(MBs(bytes, putMs))} MB/s, get ${fmt(MBs(bytes, getMs))} MB/s; Helia add and cat of the same file`);
      const helia = await heliaAddCat(root, src);
      const ratio = (ours: number, theirs: number) => `${fmt(MBs(bytes, ours) / MBs(bytes, theirs), 2)}×`;
      fileRows.push(
        `| file put, ${FILE_MIB} MiB (${map.chunks.length} chunks), ${VAULTS} vault processes: MB/s | ${fmt(MBs(bytes, putMs))} | Helia add ${fmt(MBs(bytes, helia.addMs))} | ${ratio(putMs, helia.addMs)} |`,
        `| file get, same file, byte-identical: MB/s | ${fmt(MBs(bytes, getMs))} | Helia cat ${fmt(MBs(bytes, helia.catMs))} | ${ratio(getMs, helia.catMs)} |`,
        `| frame bytes over TCP per stored byte (put; frames: ${fmt((wireAfter.messages - wireBefore.messages) / map.chunks.length, 0)} per chunk) | ${fmt((wireAfter.bytes - wireBefore.bytes) / bytes, 2)} | | |`,
      );
      rmSync(src);
      rmSync(out);
    }

    progress(`storing ${MEASURED} chunks of ${CHUNK_BYTES} bytes one at a time`);
    const before = await totals(nodes, network);
    const storeStart = Date.now();
    const chunks: Name[] = [];
    for (let i = 0; i < MEASURED; i++) chunks.push((await client.putChunk(randomBytes(CHUNK_BYTES))).name);
    const storeS = seconds(storeStart);
    const after = await totals(nodes, network);

    progress(`storing ${CHUNKS - MEASURED} more, ${PARALLEL} at a time`);
    const bulkStart = Date.now();
    await eachLimited(Array.from({ length: CHUNKS - MEASURED }), PARALLEL, async () => {
      chunks.push((await client.putChunk(randomBytes(CHUNK_BYTES))).name);
    });
    const bulkS = seconds(bulkStart);
    const rssLoaded = nodes.map((n) => rssBytes(n.pid));

    const victims = nodes.slice(1).slice(-KILL);
    progress(`killing ${KILL} of ${VAULTS} vault processes (SIGKILL)`);
    const survivors = nodes.filter((n) => !victims.includes(n));
    const cpuBefore = survivors.reduce((sum, n) => sum + cpuSeconds(n.pid), 0);
    const wireBeforeRepair = await totals(survivors, network);
    const killedAt = Date.now();
    for (const victim of victims) victim.kill('SIGKILL');
    await Promise.all(victims.map((v) => v.exited));
    const running = new Set(survivors.map((n) => n.id));
    const managersKilled = (chunk: Name) => closest(chunk, nodes.map((n) => n.name), GROUP_SIZE).filter((m) => victims.some((v) => v.name.equals(m))).length;
    const quorumLost = chunks.filter((chunk) => managersKilled(chunk) > GROUP_SIZE - QUORUM).length;
    const left = await repaired(client, chunks, survivors, killedAt + REPAIR_S * 1000);
    const repairS = seconds(killedAt);
    const repairCpuS = survivors.reduce((sum, n) => sum + cpuSeconds(n.pid), 0) - cpuBefore;
    const wireRepair = await totals(survivors, network);

    rows.push(
      `| resident memory per vault process, formed (min / median / max) | ${spread(rss)} |`,
      `| resident memory per vault process, holding ${fmt(CHUNKS * MIN_HOLDERS / VAULTS, 0)} chunks each (min / median / max) | ${spread(rssLoaded)} |`,
      `| time for ${VAULTS} processes to start and all see each other | ${fmt(formedS)} s |`,
      `| frames per stored chunk (${fmt(CHUNK_BYTES / 1024, 0)} KiB, new chunk, requests and replies, vaults and client) | ${fmt((after.messages - before.messages) / MEASURED)} |`,
      `| frame bytes per stored chunk | ${fmt((after.bytes - before.bytes) / MEASURED / 1024)} KiB (${fmt((after.bytes - before.bytes) / MEASURED / CHUNK_BYTES, 2)}x the chunk) |`,
      `| time to store ${MEASURED} chunks one after another | ${fmt(storeS)} s (${fmt(storeS / MEASURED, 2)} s each) |`,
      `| time to store ${CHUNKS - MEASURED} chunks, ${PARALLEL} at a time | ${fmt(bulkS)} s (${fmt((CHUNKS - MEASURED) / bulkS)} chunks/s) |`,
      left.length === 0
        ? `| time to repair ${CHUNKS} chunks after killing ${KILL} of ${VAULTS} (all back to ${MIN_HOLDERS} running holders) | ${fmt(repairS)} s |`
        : `| chunks not repaired ${REPAIR_S} s after killing ${KILL} of ${VAULTS} (${fmt(CHUNKS - left.length, 0)} were) | ${left.length} (${await shortChunks(client, left, managersKilled, running)}) |`,
      `| chunks whose data_manager group lost its quorum in the kill (more than ${GROUP_SIZE - QUORUM} of its ${GROUP_SIZE} killed) | ${quorumLost} |`,
      `| CPU of the ${survivors.length} running vault processes during the repair (of ${fmt(repairS)} s × 2 cores) | ${fmt(repairCpuS)} s |`,
      `| frames during the repair (vaults, and the bench's dm.info about chunks its vaults' disks show repaired) | ${fmt(wireRepair.messages - wireBeforeRepair.messages, 0)} |`,
    );
    // Where the repair's frames go, by message type, busiest first: what the lead's batching has to cut.
    repairFrames.push(
      ...Object.entries(wireRepair.byType)
        .map(([type, { messages, bytes }]) => ({ type, messages: messages - (wireBeforeRepair.byType[type]?.messages ?? 0), bytes: bytes - (wireBeforeRepair.byType[type]?.bytes ?? 0) }))
        .filter((t) => t.messages > 0)
        .sort((a, b) => b.messages - a.messages)
        .map((t) => `| ${t.type} | ${fmt(t.messages, 0)} | ${fmt(t.bytes / 1024 ** 2)} MiB |`),
    );
    await cleanUp();
  }

  if (MAX > 0) {
    progress(`starting ${MAX} vault processes as one network`);
    const bigStart = Date.now();
    const big = await startNodes((i) => join(root, `max${i}`), MAX, 600_000);
    const bigRss = big.map((n) => rssBytes(n.pid));
    rows.push(
      `| ${MAX} vault processes: time to start and all see each other | ${fmt(seconds(bigStart))} s |`,
      `| ${MAX} vault processes: resident memory each (min / median / max), in all | ${spread(bigRss)}, ${mib(bigRss.reduce((a, b) => a + b, 0))} |`,
    );
  }
} finally {
  await cleanUp();
  rmSync(root, { recursive: true, force: true });
  const repairTable = repairFrames.length > 0 ? ['| frames during the repair, by message type | frames | bytes |', '|---|---:|---:|', ...repairFrames, ''] : [];
  const fileTable = fileRows.length > 0 ? ['| file over the process network (client in the bench process) | SafeVault | Helia (local, no network) | ratio |', '|---|---:|---:|---:|', ...fileRows, ''] : [];
  process.stdout.write([`| process network (\`safevault node\` processes on 127.0.0.1) | value |`, '|---|---|', ...rows, '', ...fileTable, ...repairTable].join('\n'));
}
