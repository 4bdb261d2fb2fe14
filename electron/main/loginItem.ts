/**
 * Start at login, opened hidden (to the tray). On macOS and Windows that is the OS login item, through
 * Electron; elsewhere Electron's login item does nothing, so an XDG autostart entry is written instead.
 */
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import type { App } from 'electron';

const HIDDEN_FLAG = '--hidden';

export interface LoginItem {
  readonly enabled: boolean;
  set(on: boolean): void;
}

/** Linux (and other XDG desktops): where the autostart entry goes, and the program it starts. */
export interface Autostart {
  dir: string;
  exec: string;
}

/**
 * `$XDG_CONFIG_HOME/autostart` (a relative one is ignored, as the spec says), else ~/.config/autostart.
 * An AppImage runs from a mount that is gone after it quits: the entry starts the AppImage itself.
 */
export function xdgAutostart(env: NodeJS.ProcessEnv, home: string, execPath: string): Autostart {
  const config = env['XDG_CONFIG_HOME'] && isAbsolute(env['XDG_CONFIG_HOME']) ? env['XDG_CONFIG_HOME'] : join(home, '.config');
  return { dir: join(config, 'autostart'), exec: env['APPIMAGE'] || execPath };
}

/** A desktop entry's Exec argument: quoted (paths have spaces), then string-escaped, `%` doubled. */
const execArgument = (arg: string) => `"${arg.replace(/["`$\\]/g, '\\$&')}"`.replace(/\\/g, '\\\\').replace(/%/g, '%%');

export function createLoginItem(
  app: Pick<App, 'getLoginItemSettings' | 'setLoginItemSettings'>,
  platform: NodeJS.Platform,
  autostart: Autostart,
): LoginItem {
  if (platform === 'darwin' || platform === 'win32') {
    return {
      get enabled() {
        return app.getLoginItemSettings({ args: [HIDDEN_FLAG] }).openAtLogin;
      },
      set(on) {
        app.setLoginItemSettings({ openAtLogin: on, openAsHidden: true, args: [HIDDEN_FLAG] });
      },
    };
  }
  const entry = join(autostart.dir, 'safevault.desktop');
  return {
    get enabled() {
      return existsSync(entry);
    },
    set(on) {
      if (!on) return rmSync(entry, { force: true });
      mkdirSync(autostart.dir, { recursive: true });
      const lines = ['[Desktop Entry]', 'Type=Application', 'Name=SafeVault', 'Comment=Keeps vaulting in the tray', `Exec=${execArgument(autostart.exec)} ${HIDDEN_FLAG}`, 'Icon=safevault', 'Terminal=false'];
      writeFileSync(entry, `${lines.join('\n')}\n`);
    },
  };
}

/** Whether this launch should stay in the tray: started at login. */
export const launchedHidden = (argv: readonly string[], app: Pick<App, 'getLoginItemSettings'>): boolean =>
  argv.includes(HIDDEN_FLAG) || app.getLoginItemSettings().wasOpenedAtLogin === true;
