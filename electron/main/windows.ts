/** The one SafeVault window: made on first show, hidden to the tray on close where there is a tray. */
import type { BrowserWindow } from 'electron';
import { secureWebPreferences } from './security.ts';

export interface WindowOptions {
  BrowserWindow: typeof BrowserWindow;
  preload: string;
  url: string;
  icon: string;
  /** True while a tray can bring the window back, so closing hides instead. */
  hidesOnClose(): boolean;
  onHidden(): void;
}

export interface MainWindow {
  readonly current: BrowserWindow | undefined;
  show(): void;
  send(channel: string, value: unknown): void;
  /** Quitting: closing really closes from now on. */
  allowClose(): void;
}

export function createMainWindow(options: WindowOptions): MainWindow {
  let window: BrowserWindow | undefined;
  let closing = false;

  const create = (): BrowserWindow => {
    const created = new options.BrowserWindow({
      title: 'SafeVault',
      width: 1200,
      height: 800,
      minWidth: 800,
      minHeight: 560,
      show: false,
      icon: options.icon,
      autoHideMenuBar: true,
      webPreferences: secureWebPreferences(options.preload),
    });
    created.once('ready-to-show', () => created.show());
    created.on('close', (event) => {
      if (closing || !options.hidesOnClose()) return;
      event.preventDefault();
      created.hide();
      options.onHidden();
    });
    created.on('closed', () => {
      if (window === created) window = undefined;
    });
    void created.loadURL(options.url);
    return created;
  };

  return {
    get current() {
      return window;
    },
    show() {
      if (!window) return void (window = create());
      if (window.isMinimized()) window.restore();
      window.show();
      window.focus();
    },
    send(channel, value) {
      if (window && !window.webContents.isDestroyed()) window.webContents.send(channel, value);
    },
    allowClose() {
      closing = true;
    },
  };
}
