/** `npm start`: builds the window only when a source file is newer than the last build (or there is none). */
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..', '..');
const built = join(root, 'out', 'renderer', 'index.html');
const sources = [join(root, 'renderer'), join(root, 'electron', 'api'), join(root, 'electron.vite.config.ts')];
const skip = new Set(['e2e', 'test', 'screenshots', 'scripts']);

function newest(path: string): number {
  const stat = statSync(path);
  if (!stat.isDirectory()) return stat.mtimeMs;
  return Math.max(0, ...readdirSync(path).filter((name) => !skip.has(name)).map((name) => newest(join(path, name))));
}

const builtAt = (() => {
  try {
    return statSync(built).mtimeMs;
  } catch {
    return 0;
  }
})();

if (Math.max(...sources.map(newest)) > builtAt) {
  const { status } = spawnSync('npm', ['run', 'build:renderer'], { cwd: root, stdio: 'inherit' });
  if (status !== 0) process.exit(status ?? 1);
}
