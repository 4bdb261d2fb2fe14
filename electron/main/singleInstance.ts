/**
 * One SafeVault per user: a second launch hands its files to the first (to be stored) and quits.
 * Files come from the command line (`safevault photo.jpg`, the launcher's "Open with") or, on macOS,
 * from open-file (a drop on the dock icon).
 */
import { statSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { App } from 'electron';

/**
 * The regular files named on a command line; flags and anything else are skipped, as are the first
 * `skip` arguments (the program, and the app's path when run unpackaged as `electron .`). Files may
 * come as file:// URLs: the Linux desktop entry's Exec takes %U.
 */
export function filesFromArgv(argv: readonly string[], cwd: string, skip: number): string[] {
  return argv
    .slice(skip)
    .filter((arg) => !arg.startsWith('-'))
    .map((arg) => (arg.startsWith('file://') ? fileURLToPath(arg) : isAbsolute(arg) ? arg : resolve(cwd, arg)))
    .filter((path) => {
      try {
        return statSync(path).isFile();
      } catch {
        return false;
      }
    });
}

export interface SingleInstanceOptions {
  app: Pick<App, 'requestSingleInstanceLock' | 'on' | 'quit' | 'isPackaged'>;
  /** Files to store, from a second launch or the OS. */
  onFiles(paths: string[]): void;
  /** A second launch: show the window. */
  onSecondLaunch(): void;
}

/** False when another instance holds the lock: this one has handed over and is quitting. */
export function claimSingleInstance({ app, onFiles, onSecondLaunch }: SingleInstanceOptions): boolean {
  if (!app.requestSingleInstanceLock()) {
    app.quit();
    return false;
  }
  app.on('second-instance', (_event, argv, cwd) => {
    onSecondLaunch();
    const files = filesFromArgv(argv, cwd, argsToSkip(app));
    if (files.length) onFiles(files);
  });
  app.on('open-file', (event, path) => {
    event.preventDefault();
    onFiles([path]);
  });
  return true;
}

export const argsToSkip = (app: Pick<App, 'isPackaged'>): number => (app.isPackaged ? 1 : 2);
