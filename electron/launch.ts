/**
 * `npm start` and `npm run desktop`: the desktop app where Electron's binary is installed; where it is
 * not (ELECTRON_SKIP_BINARY_DOWNLOAD, as on CI), one line says so and the daemon serves the window to
 * the browser instead. `--desktop` insists on the desktop app.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';

/** The Electron binary's path, or null when the npm package was installed without it. */
export function electronBinary(): string | null {
  try {
    // The electron package's main is the binary's path; it throws when the binary was never downloaded.
    const path = createRequire(import.meta.url)('electron') as unknown;
    return typeof path === 'string' && existsSync(path) ? path : null;
  } catch {
    return null;
  }
}

export type Launch = { run: 'desktop' } | { run: 'browser'; note: string } | { run: 'refuse'; error: string };

export function chooseLaunch(binary: string | null, forceDesktop: boolean): Launch {
  if (binary) return { run: 'desktop' };
  const missing = "Electron's binary is not installed here (npm ci without ELECTRON_SKIP_BINARY_DOWNLOAD installs it)";
  return forceDesktop ? { run: 'refuse', error: `${missing}.` } : { run: 'browser', note: `${missing}: running the daemon with the window in your browser.` };
}

/** electron-vite preview builds main, preload and renderer, then starts Electron on them. */
const COMMANDS = { desktop: ['npx', ['electron-vite', 'preview']], browser: ['npm', ['run', '--silent', 'start:browser']] } as const;

if (import.meta.main) {
  const launch = chooseLaunch(electronBinary(), process.argv.includes('--desktop'));
  if (launch.run === 'refuse') {
    console.error(launch.error);
    process.exit(1);
  }
  if (launch.run === 'browser') console.log(launch.note);
  const [command, args] = COMMANDS[launch.run];
  const child = spawn(command, args, { stdio: 'inherit', shell: process.platform === 'win32' });
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => child.kill(signal));
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
}
