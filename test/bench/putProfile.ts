/**
 * One file put (64 MiB unless BENCH_MIB says) on a fresh 12-vault local network, after a small
 * warm-up put, for profiling (`node --cpu-prof test/bench/putProfile.ts`): the put's MB/s, the main
 * thread's CPU time through the put and until the vaults fall quiet (reports to node managers may
 * finish after the put), all threads' CPU, the put's window on the profile's clock, and the messages
 * per chunk by type. CPU time is steadier than MB/s on a shared machine.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { openEngine } from '../../electron/engine/engine.ts';
import { asLocal } from '../helpers.ts';
import { writeRandomFile } from './filesBench.ts';

const BYTES = Number(process.env.BENCH_MIB ?? 64) * 1024 * 1024;
const cpuMs = (since: NodeJS.CpuUsage): number => {
  const used = process.threadCpuUsage(since);
  return (used.user + used.system) / 1000;
};

const dir = mkdtempSync(join(tmpdir(), 'safevault-put-'));
try {
  const src = join(dir, 'file.bin');
  await writeRandomFile(src, BYTES);
  const engine = asLocal(await openEngine({ dataDir: join(dir, 'engine'), vaults: 12 }));
  try {
    // A small put first, as the benchmark's later rounds find them: the worker threads started, the code compiled.
    const warm = join(dir, 'warm.bin');
    await writeRandomFile(warm, 3 * 1024 * 1024);
    await engine.putFile({ as: 'warm-up', path: warm });
    const before = engine.network.hub.stats();
    const cpu = process.threadCpuUsage();
    const processCpu = process.cpuUsage();
    const t0 = performance.now();
    const from = process.hrtime.bigint() / 1000n;
    const put = await engine.putFile({ as: 'bench', path: src });
    const ms = performance.now() - t0;
    const putCpu = cpuMs(cpu);
    const allCpu = process.cpuUsage(processCpu);
    // The put's window on the profile's clock (µs), to read only its samples.
    const window = `${from} ${process.hrtime.bigint() / 1000n}`;
    let after = engine.network.hub.stats();
    for (let quiet = 0; quiet < 3; ) {
      await sleep(200);
      const now = engine.network.hub.stats();
      quiet = now.messages === after.messages ? quiet + 1 : 0;
      after = now;
    }
    const totalCpu = cpuMs(cpu);
    const chunks = put.chunks.length;
    const lines = [
      `put ${(BYTES / 1e6 / (ms / 1000)).toFixed(1)} MB/s in ${ms.toFixed(0)} ms; main thread CPU ${putCpu.toFixed(0)} ms in the put (all threads ${((allCpu.user + allCpu.system) / 1000).toFixed(0)} ms), ${totalCpu.toFixed(0)} ms until quiet`,
      `window ${window}`,
      `messages per chunk ${((after.messages - before.messages) / chunks).toFixed(1)}`,
    ];
    for (const [type, { messages, bytes }] of Object.entries(after.byType).sort((a, b) => b[1].messages - a[1].messages)) {
      const was = before.byType[type] ?? { messages: 0, bytes: 0 };
      if (messages > was.messages) lines.push(`  ${type}: ${((messages - was.messages) / chunks).toFixed(1)} per chunk, ${((bytes - was.bytes) / (messages - was.messages)).toFixed(0)} bytes each`);
    }
    process.stdout.write(lines.join('\n') + '\n');
  } finally {
    await engine.close();
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
