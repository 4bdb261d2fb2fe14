/**
 * The process network's costs (issue 9): resident memory per vault process, frames and bytes per
 * stored chunk over TCP (libp2p: noise, yamux), the time to repair after killing k of n vault
 * processes, and how many vault processes this machine runs as one network. Progress goes to
 * stderr, the markdown table to stdout.
 *
 * BENCH_NET_VAULTS (12), BENCH_NET_KILL (a third), BENCH_NET_CHUNKS (1000, stored BENCH_NET_PARALLEL
 * (16) at a time; the first BENCH_NET_MEASURED (32) one at a time, for the per-chunk frame count),
 * BENCH_NET_CHUNK_BYTES (64 KiB), BENCH_NET_MAX (50: the vault processes started as one network; 0 skips it).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MIN_HOLDERS } from '../../electron/engine/constants.ts';
import type { StorageClient } from '../../electron/engine/client/storageClient.ts';
import { toHex, type Name } from '../../electron/engine/names.ts';
import type { WireStats } from '../../electron/engine/transport.ts';
import { hooks, joinClient, startNodes, type NodeProcess } from '../net/nodes.ts';

const VAULTS = Number(process.env.BENCH_NET_VAULTS ?? 12);
const KILL = Number(process.env.BENCH_NET_KILL ?? Math.floor(VAULTS / 3));
const CHUNKS = Number(process.env.BENCH_NET_CHUNKS ?? 1000);
const MEASURED = Math.min(CHUNKS, Number(process.env.BENCH_NET_MEASURED ?? 32));
const PARALLEL = Number(process.env.BENCH_NET_PARALLEL ?? 16);
const CHUNK_BYTES = Number(process.env.BENCH_NET_CHUNK_BYTES ?? 64 * 1024);
const MAX = Number(process.env.BENCH_NET_MAX ?? 50);
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

/** Frames every running vault sent so far (its SIGUSR2 line), plus the client's own. */
async function totals(nodes: NodeProcess[], client: { stats(): WireStats }): Promise<{ messages: number; bytes: number }> {
  const all = [...(await Promise.all(nodes.filter((n) => n.alive).map((n) => n.stats()))), client.stats()];
  return { messages: all.reduce((sum, s) => sum + s.messages, 0), bytes: all.reduce((sum, s) => sum + s.bytes, 0) };
}

/** Runs `work` on each item, `parallel` at a time. */
async function eachLimited<T>(items: T[], parallel: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(parallel, items.length) }, async () => {
    while (next < items.length) await work(items[next++]!);
  }));
}

/** Waits until every chunk has MIN_HOLDERS listed holders among `running`; a chunk seen repaired is not asked again. */
async function repaired(client: StorageClient, chunks: Name[], running: Set<string>): Promise<void> {
  let left = chunks;
  while (left.length > 0) {
    const still: Name[] = [];
    await eachLimited(left, PARALLEL, async (chunk) => {
      const record = await client.info(chunk).catch(() => null);
      if (!record || record.holders.filter((h) => running.has(toHex(h))).length < MIN_HOLDERS) still.push(chunk);
    });
    if (still.length < left.length) progress(`${chunks.length - still.length} of ${chunks.length} chunks repaired`);
    left = still;
    // A pause between rounds of asking, so the asking does not crowd out the repair it waits for.
    if (left.length > 0) await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

const rows: string[] = [];
const root = mkdtempSync(join(tmpdir(), 'safevault-netbench-'));
try {
  progress(`starting ${VAULTS} vault processes`);
  const nodes = await startNodes((i) => join(root, `v${i}`), VAULTS);
  const formedS = seconds(started);
  const { client, network } = await joinClient(nodes[0]!, VAULTS);
  const rss = nodes.map((n) => rssBytes(n.pid));

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
  const killedAt = Date.now();
  for (const victim of victims) victim.kill('SIGKILL');
  await Promise.all(victims.map((v) => v.exited));
  await repaired(client, chunks, new Set(nodes.filter((n) => n.alive).map((n) => n.id)));
  const repairS = seconds(killedAt);

  rows.push(
    `| resident memory per vault process, formed (min / median / max) | ${spread(rss)} |`,
    `| resident memory per vault process, holding ${fmt(CHUNKS * MIN_HOLDERS / VAULTS, 0)} chunks each (min / median / max) | ${spread(rssLoaded)} |`,
    `| time for ${VAULTS} processes to start and all see each other | ${fmt(formedS)} s |`,
    `| frames per stored chunk (${fmt(CHUNK_BYTES / 1024, 0)} KiB, new chunk, requests and replies, vaults and client) | ${fmt((after.messages - before.messages) / MEASURED)} |`,
    `| frame bytes per stored chunk | ${fmt((after.bytes - before.bytes) / MEASURED / 1024)} KiB (${fmt((after.bytes - before.bytes) / MEASURED / CHUNK_BYTES, 2)}x the chunk) |`,
    `| time to store ${MEASURED} chunks one after another | ${fmt(storeS)} s (${fmt(storeS / MEASURED, 2)} s each) |`,
    `| time to store ${CHUNKS - MEASURED} chunks, ${PARALLEL} at a time | ${fmt(bulkS)} s (${fmt((CHUNKS - MEASURED) / bulkS)} chunks/s) |`,
    `| time to repair ${CHUNKS} chunks after killing ${KILL} of ${VAULTS} (all back to ${MIN_HOLDERS} running holders) | ${fmt(repairS)} s |`,
  );
  await cleanUp();

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
  process.stdout.write([`| process network (\`safevault node\` processes on 127.0.0.1) | value |`, '|---|---|', ...rows, ''].join('\n'));
}
