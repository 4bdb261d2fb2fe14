/**
 * Whether this desktop shows tray icons. On Linux Electron's tray is a StatusNotifierItem: where no
 * StatusNotifierWatcher holds its name on the session bus (GNOME without the AppIndicator extension),
 * `new Tray()` succeeds but no icon appears, and a window hidden to it could never be brought back.
 */
import { execFile } from 'node:child_process';

const NAME_HAS_OWNER = ['call', '--session', '--dest', 'org.freedesktop.DBus', '--object-path', '/org/freedesktop/DBus', '--method', 'org.freedesktop.DBus.NameHasOwner', 'org.kde.StatusNotifierWatcher'];

export function hasTrayHost(platform: NodeJS.Platform, gdbus = 'gdbus', timeoutMs = 1000): Promise<boolean> {
  if (platform !== 'linux') return Promise.resolve(true);
  return new Promise((resolve) => {
    execFile(gdbus, NAME_HAS_OWNER, { timeout: timeoutMs }, (error, stdout) => {
      // Without gdbus the bus cannot be asked: assume a tray, as Electron does.
      if ((error as NodeJS.ErrnoException | null)?.code === 'ENOENT') return resolve(true);
      resolve(!error && stdout.trim() === '(true,)');
    });
  });
}
