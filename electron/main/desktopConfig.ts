/**
 * The few settings that cannot live in the app database because they say where it is: the data folder,
 * plus whether the hidden-to-tray notice was shown. A small JSON file in the user-data folder.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, isAbsolute, join } from 'node:path';
import { z } from 'zod';
import type { Logger } from './logging.ts';

const schema = z.strictObject({
  dataDir: z.string().refine(isAbsolute, 'the data folder must be an absolute path'),
  trayNoticeShown: z.boolean(),
});
export type DesktopConfig = z.infer<typeof schema>;

export interface DesktopConfigStore {
  get(): DesktopConfig;
  set(change: Partial<DesktopConfig>): DesktopConfig;
}

export function desktopConfig(userData: string, log: Logger): DesktopConfigStore {
  const path = join(userData, 'desktop.json');
  const defaults: DesktopConfig = { dataDir: join(userData, 'data'), trayNoticeShown: false };
  let current = defaults;
  try {
    const parsed = schema.partial().safeParse(JSON.parse(readFileSync(path, 'utf8')));
    if (parsed.success) current = { ...defaults, ...parsed.data };
    else log.warn(`${path}: ${parsed.error.issues[0]!.message}; using the defaults`);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') log.warn(`${path} unreadable (${(error as Error).message}); using the defaults`);
  }
  return {
    get: () => current,
    set(change) {
      const next = schema.parse({ ...current, ...change });
      mkdirSync(dirname(path), { recursive: true });
      // Written whole then renamed, so a crash never leaves half a file.
      writeFileSync(`${path}.tmp`, JSON.stringify(next, null, 2));
      renameSync(`${path}.tmp`, path);
      current = next;
      return next;
    },
  };
}
