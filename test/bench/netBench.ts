/**
 * The process network's costs (issue 9): resident memory per vault process, frames and bytes per
 * stored chunk over TCP (libp2p: noise, yamux), and the time to repair after killing k of n vault
 * processes. Progress goes to stderr, the markdown table to stdout.
 *
 * BENCH_NET_VAULTS (12), BENCH_NET_KILL (a third), BENCH_NET_CHUNKS (32), BENCH_NET_CHUNK_BYTES (256 KiB).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MIN_HOLDERS } from '../../electron/engine/constants.ts';
import { toHex, type Name } from '../../electron/engine/names.ts';
import type { WireStats } from '../../electron/engine/transport.ts';
import { hooks, joinClient, startNodes, type NodeProcess } from '../net/nodes.ts';
import { eventually } from '../helpers.ts';

const VAULTS = Number(process.env.BENCH_NET_VAULTS ?? 12);
const KILL = Number(process.env.BENCH_NET_KILL ?? Math.floor(VAULTS / 3));
const CHUNKS = Number(process.env.BENCH_NET_CHUNKS ?? 32);
const CHUNK_BYTES = Number(process.env.BENCH_NET_CHUNK_BYTES ?? 256 * 1024);
const progress = (message: string) => process.stderr.write(`${message}\n`);
const fmt = (n: number, digits = 1) => n.toLocaleString('en-US', { maximumFractionDigits: digits });

const cleanups: (() => unknown)[] = [];
hooks.cleanup = (fn) => cleanups.push(fn);

/** Resident memory of a process, from /proc. */
const rssBytes = (pid: number) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) * 1024;

async function totals(nodes: NodeProcess[]): Promise<WireStats> {
  const sum: WireStats = { messages: 0, bytes: 0, byType: {} };
  for (const stats of await Promise.all(nodes.filter((n) => n.alive).map((n) => n.stats()))) {
    sum.messages += stats.messages;
    sum.bytes += stats.bytes;
  }
  return sum;
}

const root = mkdtempSync(join(tmpdir(), 'safevault-netbench-'));
try {
  const started = Date.now();
  progress(`starting ${VAULTS} vault processes`);
  const nodes = await startNodes((i) => join(root, `v${i}`), VAULTS);
  const formedS = (Date.now() - started) / 1000;
  const { client } = await joinClient(nodes[0]!, VAULTS);
  const rss = nodes.map((n) => rssBytes(n.pid));

  progress(`storing ${CHUNKS} chunks of ${CHUNK_BYTES} bytes`);
  const before = await totals(nodes);
  const storeStart = Date.now();
  const chunks: Name[] = [];
  for (let i = 0; i < CHUNKS; i++) chunks.push((await client.putChunk(randomBytes(CHUNK_BYTES))).name);
  const storeS = (Date.now() - storeStart) / 1000;
  const after = await totals(nodes);

  const victims = nodes.slice(1).slice(-KILL);
  progress(`killing ${KILL} of ${VAULTS} vault processes (SIGKILL)`);
  const killedAt = Date.now();
  for (const victim of victims) victim.kill('SIGKILL');
  await Promise.all(victims.map((v) => v.exited));
  const running = new Set(nodes.filter((n) => n.alive).map((n) => n.id));
  await eventually(
    async () => {
      for (const chunk of chunks) {
        const record = await client.info(chunk);
        if (!record || record.holders.filter((h) => running.has(toHex(h))).length < MIN_HOLDERS) return false;
      }
      return true;
    },
    `every chunk back to ${MIN_HOLDERS} running holders`,
    600_000,
  );
  const repairS = (Date.now() - killedAt) / 1000;
  const mib = (n: number) => `${fmt(n / 1024 ** 2)} MiB`;

  process.stdout.write(
    [
      `| process network (${VAULTS} \`safevault node\` processes on 127.0.0.1) | value |`,
      '|---|---|',
      `| resident memory per vault process (after forming, min / median / max) | ${mib(Math.min(...rss))} / ${mib(rss.sort((a, b) => a - b)[rss.length >> 1]!)} / ${mib(Math.max(...rss))} |`,
      `| time for ${VAULTS} processes to start and all see each other | ${fmt(formedS)} s |`,
      `| frames per stored chunk (${fmt(CHUNK_BYTES / 1024, 0)} KiB, new chunk, requests and replies) | ${fmt((after.messages - before.messages) / CHUNKS)} |`,
      `| frame bytes per stored chunk | ${fmt((after.bytes - before.bytes) / CHUNKS / 1024)} KiB (${fmt((after.bytes - before.bytes) / CHUNKS / CHUNK_BYTES, 2)}x the chunk) |`,
      `| time to store ${CHUNKS} chunks one after another | ${fmt(storeS)} s (${fmt(storeS / CHUNKS, 2)} s each) |`,
      `| time to repair ${CHUNKS} chunks after killing ${KILL} of ${VAULTS} (all back to ${MIN_HOLDERS} running holders) | ${fmt(repairS)} s |`,
      '',
    ].join('\n'),
  );
} finally {
  for (const cleanup of cleanups) await cleanup();
  rmSync(root, { recursive: true, force: true });
}
