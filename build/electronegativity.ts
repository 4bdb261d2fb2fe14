/**
 * Electronegativity (Doyensec's Electron security scanner) over the desktop sources: fails on any
 * finding above low that electronegativity.json does not accept with a reason. `npm run security`,
 * and a test in `npm test` (it runs offline in about two seconds).
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, relative } from 'node:path';

interface Issue {
  id: string;
  file: string;
  location: { line: number; column: number };
  severity: { name: string; value: number };
  confidence: { name: string };
  description?: string;
}
interface Accepted {
  check: string;
  /** Relative to the scanned folder; "N/A" for global checks. */
  file: string;
  reason: string;
}
interface Config {
  scan: string;
  electronVersion: string;
  /** Checks that need the network (Electron's release list) and so cannot run here. */
  exclude: string[];
  accepted: Accepted[];
}

const root = join(import.meta.dirname, '..');
const run = createRequire(import.meta.url)('@doyensec/electronegativity') as (options: object) => Promise<{ issues: Issue[] }>;

interface ScanResult {
  findings: { check: string; file: string; line: number; severity: string; confidence: string }[];
  refused: string[];
}

/** Scans `input` (by default the folder electronegativity.json names). */
async function scan(input?: string): Promise<ScanResult> {
  const config = JSON.parse(readFileSync(join(root, 'electronegativity.json'), 'utf8')) as Config;
  // The scanner first fetches translations over the network; offline, its HTTP library (got) throws
  // from a retry timer after the scan has already gone ahead in English. Only those errors are ignored.
  const offline = (error: Error) => {
    if (!error.stack?.includes(`${join('node_modules', 'got')}`) && !error.stack?.includes('p-cancelable')) throw error;
  };
  process.on('uncaughtException', offline);
  const log = console.log;
  console.log = () => {}; // its banner and tables; the findings are reported below
  try {
    const folder = input ?? join(root, config.scan);
    const { issues } = await run({
      input: folder,
      isRelative: true,
      severitySet: 'informational',
      confidenceSet: 'tentative',
      excludeFromScan: config.exclude,
      electronVersionOverride: config.electronVersion,
      customScan: [],
    });
    const findings = issues.map((i) => ({
      check: i.id,
      file: i.file === 'N/A' ? 'N/A' : relative(folder, join(folder, i.file)),
      line: i.location.line,
      severity: i.severity.name,
      confidence: i.confidence.name,
    }));
    const accepted = (f: ScanResult['findings'][number]) => config.accepted.some((a) => a.check === f.check && a.file === f.file);
    const refused = findings
      .filter((f) => !['LOW', 'INFORMATIONAL'].includes(f.severity) && !accepted(f))
      .map((f) => `${f.check} (${f.severity}, ${f.confidence}) at ${f.file}:${f.line}`);
    return { findings, refused };
  } finally {
    console.log = log;
    // The retry fires a moment after the scan; keep ignoring it until then.
    setTimeout(() => process.off('uncaughtException', offline), 5000).unref();
  }
}

if (import.meta.main) {
  const { findings, refused } = await scan(process.argv[2]);
  for (const f of findings) console.log(`${refused.some((r) => r.startsWith(f.check) && r.includes(`${f.file}:${f.line}`)) ? 'REFUSED ' : 'accepted'} ${f.check} ${f.severity} ${f.file}:${f.line}`);
  if (refused.length) {
    console.error(`electronegativity: ${refused.length} finding(s) above low not explained in electronegativity.json`);
    process.exit(1);
  }
  console.log(`electronegativity: ${findings.length} finding(s), each low or accepted in electronegativity.json`);
}
