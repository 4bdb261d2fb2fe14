/**
 * The protocol's cost on the wire (issue 7): messages and bytes per stored chunk and per holder
 * lost, counted by the in-process hub (every message is a real codec frame), and the operation
 * latency of the simulation under churn. Progress goes to stderr, the markdown table to stdout.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StorageClient } from '../../electron/engine/client/storageClient.ts';
import { openDatabase } from '../../electron/engine/db.ts';
import { EventBus } from '../../electron/engine/events.ts';
import { createIdentity } from '../../electron/engine/identity.ts';
import { LocalNetwork } from '../../electron/engine/network.ts';
import type { WireStats } from '../../electron/engine/transport.ts';
import { runSeed } from '../sim/simulation.ts';

const CHUNKS = Number(process.env.BENCH_CHUNKS ?? 32);
const CHUNK_BYTES = 1024 * 1024 - 1024;
const SOAK_SEEDS = Number(process.env.BENCH_SOAK_SEEDS ?? 10);
const progress = (message: string) => process.stderr.write(`${message}\n`);
function diff(after: WireStats, before: WireStats): WireStats {
  const byType: WireStats['byType'] = {};
  for (const [type, { messages, bytes }] of Object.entries(after.byType)) {
    byType[type] = { messages: messages - (before.byType[type]?.messages ?? 0), bytes: bytes - (before.byType[type]?.bytes ?? 0) };
  }
  return { messages: after.messages - before.messages, bytes: after.bytes - before.bytes, byType };
}
/** Frames that carry a chunk's bytes between vaults (or up from the client): of the types that can, those frames that do (a store order may only name where to fetch them). */
const chunkFrames = (s: WireStats) =>
  ['chunk.stage', 'stage.fetch:reply', 'node.store', 'node.get:reply'].reduce((n, t) => n + Math.round((s.byType[t]?.bytes ?? 0) / CHUNK_BYTES), 0);
const fmt = (n: number, digits = 1) => n.toLocaleString('en-US', { maximumFractionDigits: digits });

async function wire() {
  const dir = mkdtempSync(join(tmpdir(), 'safevault-wire-'));
  const db = openDatabase(join(dir, 'app.sqlite'));
  const network = new LocalNetwork(join(dir, 'vaults'), db, new EventBus());
  try {
    await network.start(12);
    const identity = createIdentity();
    const client = new StorageClient('bench', identity, network.networkOf(identity.name), new EventBus());
    progress(`storing ${CHUNKS} chunks of ${CHUNK_BYTES} bytes on 12 vaults`);
    const before = network.hub.stats();
    for (let i = 0; i < CHUNKS; i++) await client.putChunk(randomBytes(CHUNK_BYTES));
    await network.settled();
    const stored = diff(network.hub.stats(), before);

    // The vault holding the most chunks leaves: its chunks get new copies elsewhere.
    const leaving = network.running().sort((a, b) => b.storageNode.usage().count - a.storageNode.usage().count)[0]!;
    const held = leaving.storageNode.usage().count;
    progress(`vault ${leaving.id.slice(0, 8)} holding ${held} chunks leaves`);
    const beforeLeave = network.hub.stats();
    await network.stopVault(leaving.id);
    const lost = diff(network.hub.stats(), beforeLeave);
    return { stored, lost, held };
  } finally {
    network.close();
    db.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function soak() {
  const latencies: number[] = [];
  let failed = 0;
  for (let seed = 1; seed <= SOAK_SEEDS; seed++) {
    progress(`simulation seed ${seed}/${SOAK_SEEDS}`);
    const result = await runSeed(seed);
    latencies.push(...result.latencies);
    if (result.failures.length) failed++;
  }
  latencies.sort((a, b) => a - b);
  const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))]!;
  return { p50: pct(50), p99: pct(99), ops: latencies.length, failed };
}

const w = await wire();
const s = await soak();
const rows = [
  ['| measure | value |', '|---|---|'],
  [`| messages per stored chunk (1 MiB, 12 vaults, new chunk) | ${fmt(w.stored.messages / CHUNKS)} |`],
  [`| bytes on the wire per stored byte | ${fmt(w.stored.bytes / (CHUNKS * CHUNK_BYTES), 2)} |`],
  [`| frames carrying the chunk per stored chunk (1 upload, staging fetches, holder copies) | ${fmt(chunkFrames(w.stored) / CHUNKS, 2)} |`],
  [`| messages per chunk re-replicated when its holder leaves (${w.held} chunks) | ${fmt(w.lost.messages / Math.max(1, w.held))} |`],
  [`| frames carrying the chunk per chunk re-replicated (the new holder fetches it from a surviving one) | ${fmt(chunkFrames(w.lost) / Math.max(1, w.held), 2)} |`],
  [`| bytes on the wire per chunk re-replicated | ${fmt(w.lost.bytes / Math.max(1, w.held), 0)} |`],
  [`| operation latency under churn, p50 / p99 (simulated ms, ${s.ops} ops, ${SOAK_SEEDS} seeds, ${s.failed} failed) | ${s.p50} / ${s.p99} |`],
];
console.log(rows.flat().join('\n'));
