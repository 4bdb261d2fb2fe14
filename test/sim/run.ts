/** `npm run soak -- --seeds N [--from S]`: runs the simulation over many seeds and prints every failing one (replay it with --from S --seeds 1). */
import { parseArgs } from 'node:util';
import { runSeed } from './simulation.ts';

const { values } = parseArgs({ options: { seeds: { type: 'string', default: '20' }, from: { type: 'string', default: '1' }, verbose: { type: 'boolean', default: false } } });
const from = Number(values.from);
const count = Number(values.seeds);
let failed = 0;
const latencies: number[] = [];
const started = Date.now();
for (let seed = from; seed < from + count; seed++) {
  const result = await runSeed(seed);
  latencies.push(...result.latencies);
  if (result.failures.length > 0) {
    failed++;
    console.log(`seed ${seed}: ${result.failures.length} failures (replay: npm run soak -- --from ${seed} --seeds 1)`);
    for (const failure of result.failures.slice(0, values.verbose ? 100 : 5)) console.log(`  ${failure}`);
  } else if (values.verbose) console.log(`seed ${seed}: ok (${result.ops} ops, ${result.churn} churn events, ${result.messages} messages)`);
}
latencies.sort((a, b) => a - b);
const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))] ?? 0;
console.log(`${count - failed} of ${count} seeds passed, ${failed} failed; operation latency under churn p50 ${pct(50)} ms, p99 ${pct(99)} ms (virtual); ${((Date.now() - started) / 1000).toFixed(0)} s`);
process.exitCode = failed > 0 ? 1 : 0;
