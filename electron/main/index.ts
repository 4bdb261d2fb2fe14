/** The desktop app's main process: the one place that imports Electron and hands it to the host. */
import { homedir } from 'node:os';
import { join } from 'node:path';
import {
  app,
  BrowserWindow,
  dialog,
  ipcMain,
  Menu,
  nativeTheme,
  Notification,
  protocol,
  safeStorage,
  session,
  shell,
  Tray,
  utilityProcess,
} from 'electron';
import fileLog from 'electron-log/main';
import { startDesktop } from './desktop.ts';
import { xdgAutostart } from './loginItem.ts';
import { hasTrayHost } from './trayHost.ts';

// Built layout (electron-vite): out/main/{index,engineHost}.js, out/preload/index.cjs, out/renderer/.
const out = join(import.meta.dirname, '..');
const resources = app.getAppPath();
startDesktop(
  { app, BrowserWindow, dialog, ipcMain, Menu, nativeTheme, Notification, protocol, safeStorage, session, shell, Tray, utilityProcess },
  fileLog,
  {
    rendererDir: join(out, 'renderer'),
    preload: join(out, 'preload', 'index.cjs'),
    engineHost: join(out, 'main', 'engineHost.js'),
    trayIcons: join(resources, 'electron', 'main', 'resources', 'tray'),
    windowIcon: join(resources, 'build', 'icons', '512x512.png'),
  },
  {
    argv: process.argv,
    cwd: process.cwd(),
    platform: process.platform,
    hasTray: () => hasTrayHost(process.platform),
    autostart: xdgAutostart(process.env, homedir(), process.execPath),
    devServerUrl: app.isPackaged ? undefined : process.env['ELECTRON_RENDERER_URL'],
  },
);
