/** Start at login: the OS login item, opened hidden (to the tray). */
import type { App } from 'electron';

const HIDDEN_FLAG = '--hidden';

export interface LoginItem {
  readonly enabled: boolean;
  set(on: boolean): void;
}

export function createLoginItem(app: Pick<App, 'getLoginItemSettings' | 'setLoginItemSettings'>): LoginItem {
  return {
    get enabled() {
      return app.getLoginItemSettings({ args: [HIDDEN_FLAG] }).openAtLogin;
    },
    set(on) {
      app.setLoginItemSettings({ openAtLogin: on, openAsHidden: true, args: [HIDDEN_FLAG] });
    },
  };
}

/** Whether this launch should stay in the tray: started at login. */
export const launchedHidden = (argv: readonly string[], app: Pick<App, 'getLoginItemSettings'>): boolean =>
  argv.includes(HIDDEN_FLAG) || app.getLoginItemSettings().wasOpenedAtLogin === true;
