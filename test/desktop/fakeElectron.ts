/**
 * The one fake in the desktop tests: Electron's main-process modules, as thin as the host's use of
 * them allows (the binary cannot run here). utilityProcess.fork forks the REAL engine host in Node,
 * which speaks the same protocol over process.send that it speaks over parentPort in Electron.
 * The unit tests take single pieces (fakeNotification, fakeSafeStorage) from here too.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { existsSync, mkdirSync } from 'node:fs';
import { registerHooks } from 'node:module';
import { join } from 'node:path';
import { after } from 'node:test';
import type ElectronLog from 'electron-log';
import electronLog from 'electron-log/node';
import type { DesktopBridge } from '../../electron/api/contract.ts';
import type { ElectronParts } from '../../electron/main/desktop.ts';

type Handler = (event: unknown, ...args: unknown[]) => unknown;
const prevented = () => {
  const event = { defaultPrevented: false, preventDefault: () => void (event.defaultPrevented = true) };
  return event;
};

/** Notification: each one shown is recorded in `shown`. */
export function fakeNotification() {
  const shown: { title: string; body: string }[] = [];
  class FakeNotification extends EventEmitter {
    static isSupported = () => true;
    readonly options: { title?: string; body?: string };
    constructor(options: { title?: string; body?: string }) {
      super();
      this.options = options;
    }
    show() {
      shown.push({ title: this.options.title ?? '', body: this.options.body ?? '' });
    }
  }
  return { Notification: FakeNotification as unknown as ElectronParts['Notification'], shown };
}

/** safeStorage: a keychain stand-in, reversible but never the plain text; the backend as the OS would report it. */
export const fakeSafeStorage = ({ backend = 'gnome_libsecret', available = true } = {}) => ({
  isEncryptionAvailable: () => available,
  getSelectedStorageBackend: () => backend as 'gnome_libsecret',
  encryptString: (plain: string) => Buffer.from(`keychain:${Buffer.from(plain).toString('hex')}`),
  decryptString: (sealed: Buffer) => Buffer.from(sealed.toString().replace(/^keychain:/, ''), 'hex').toString(),
});

/**
 * `cleanup` registers the killing of leftover engine hosts. node:test's `after` suits a test body, but
 * called from a `before` hook it runs as soon as that hook ends (killing the engine the suite just
 * started), so a suite's harness passes its own.
 */
export function fakeElectron(
  root: string,
  {
    singleInstance = true,
    trayWorks = true,
    packaged = true,
    platform = 'linux' as NodeJS.Platform,
    cleanup = after as (run: () => void) => void,
  } = {},
) {
  const paths: Record<string, string> = {};
  for (const name of ['userData', 'logs', 'downloads']) mkdirSync((paths[name] = join(root, name)), { recursive: true });
  const children: ChildProcess[] = [];
  cleanup(() => children.forEach((c) => c.kill('SIGKILL')));

  let loginItem = { openAtLogin: false, wasOpenedAtLogin: false };
  const app = Object.assign(new EventEmitter(), {
    isPackaged: packaged,
    quitted: false,
    getPath: (name: string) => paths[name] ?? join(root, name),
    getAppPath: () => root,
    requestSingleInstanceLock: () => singleInstance,
    whenReady: () => Promise.resolve(),
    getLoginItemSettings: () => ({ ...loginItem }),
    /** As Electron: a login item on macOS and Windows only; elsewhere setting it does nothing. */
    setLoginItemSettings(s: { openAtLogin: boolean }) {
      if (platform === 'darwin' || platform === 'win32') loginItem = { ...loginItem, openAtLogin: s.openAtLogin };
    },
    /** As Electron: before-quit first, which may cancel; then the app is gone. */
    quit() {
      const event = prevented();
      app.emit('before-quit', event);
      if (!event.defaultPrevented) app.quitted = true;
    },
  });

  /** The page's side of IPC: what the preload's ipcRenderer hears. */
  const rendererEvents = new EventEmitter();
  const windows: FakeWindow[] = [];
  class FakeWebContents extends EventEmitter {
    sent: [string, unknown][] = [];
    openHandler?: (details: { url: string }) => { action: string };
    send(channel: string, value: unknown) {
      this.sent.push([channel, value]);
      rendererEvents.emit(channel, {}, value);
    }
    isDestroyed = () => false;
    setWindowOpenHandler(handler: (details: { url: string }) => { action: string }) {
      this.openHandler = handler;
    }
  }
  class FakeWindow extends EventEmitter {
    webContents = new FakeWebContents();
    visible = false;
    destroyed = false;
    url?: string;
    readonly options: { webPreferences: Record<string, unknown> } & Record<string, unknown>;
    constructor(options: FakeWindow['options']) {
      super();
      this.options = options;
      windows.push(this);
      app.emit('web-contents-created', {}, this.webContents);
    }
    loadURL(url: string) {
      this.url = url;
      queueMicrotask(() => this.emit('ready-to-show'));
      return Promise.resolve();
    }
    show = () => void (this.visible = true);
    hide = () => void (this.visible = false);
    focus = () => {};
    isMinimized = () => false;
    restore = () => {};
    /** As a user clicking the close button. */
    close() {
      const event = prevented();
      this.emit('close', event);
      if (event.defaultPrevented) return;
      this.destroyed = true;
      this.visible = false;
      this.emit('closed');
      if (windows.every((w) => w.destroyed)) app.emit('window-all-closed');
    }
  }

  const trays: FakeTray[] = [];
  class FakeTray extends EventEmitter {
    image: string;
    tooltip = '';
    menu: { items: { id?: string; label?: string; checked?: boolean; enabled?: boolean; click?: () => void }[] } = { items: [] };
    destroyed = false;
    constructor(image: string) {
      super();
      if (!trayWorks) throw new Error('no status notifier host');
      this.image = image;
      trays.push(this);
    }
    setImage = (image: string) => void (this.image = image);
    setToolTip = (tip: string) => void (this.tooltip = tip);
    setContextMenu = (menu: FakeTray['menu']) => void (this.menu = menu);
    destroy = () => void (this.destroyed = true);
    item(id: string) {
      return this.menu.items.find((i) => i.id === id)!;
    }
  }

  const { Notification, shown: notifications } = fakeNotification();

  const handlers = new Map<string, Handler>();
  const ipcMain = {
    handle: (channel: string, handler: Handler) => void handlers.set(channel, handler),
    /** As ipcRenderer.invoke from a frame of `origin`: Electron refuses a channel nobody handles. */
    async invoke(origin: string | null, channel: string, ...args: unknown[]) {
      const handler = handlers.get(channel);
      if (!handler) throw new Error(`Error invoking remote method '${channel}': Error: No handler registered for '${channel}'`);
      return handler({ senderFrame: origin === null ? null : { origin } }, ...args);
    },
    handlers,
  };

  const dialogAnswers: unknown[] = [];
  const opened: string[] = [];
  const permissions: { request?: (wc: unknown, permission: string, cb: (ok: boolean) => void) => void; check?: () => boolean } = {};
  const schemes: unknown[] = [];
  let appHandler: ((request: { url: string }) => Promise<Response>) | undefined;

  const electron = {
    app,
    BrowserWindow: FakeWindow,
    Tray: FakeTray,
    Menu: { buildFromTemplate: (items: unknown[]) => ({ items }) },
    nativeTheme: Object.assign(new EventEmitter(), { shouldUseDarkColors: false, themeSource: 'system' }),
    Notification,
    dialog: {
      showOpenDialog: async () => dialogAnswers.shift(),
      showSaveDialog: async (...args: unknown[]) => dialogAnswers.shift() ?? args,
    },
    shell: {
      openExternal: async (url: string) => void opened.push(url),
      openPath: async (path: string) => (opened.push(path), ''),
    },
    ipcMain,
    protocol: {
      registerSchemesAsPrivileged: (s: unknown[]) => void schemes.push(...s),
      handle: (_scheme: string, handler: typeof appHandler) => void (appHandler = handler),
    },
    session: {
      defaultSession: {
        setPermissionRequestHandler: (h: typeof permissions.request) => void (permissions.request = h),
        setPermissionCheckHandler: (h: typeof permissions.check) => void (permissions.check = h),
      },
    },
    safeStorage: fakeSafeStorage(),
    utilityProcess: {
      fork(entry: string) {
        const child = fork(entry, [], { serialization: 'advanced', stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
        children.push(child);
        // A message racing the child's exit fails with EPIPE here; a utilityProcess drops it silently.
        child.on('error', () => {});
        return Object.assign(new EventEmitter(), {
          stdout: child.stdout,
          stderr: child.stderr,
          postMessage: (m: unknown) => void (child.connected && child.send(m as never)),
          kill: () => child.kill('SIGKILL'),
          wire(this: EventEmitter) {
            child.on('message', (m) => this.emit('message', m));
            child.on('exit', (code) => this.emit('exit', code));
            return this;
          },
        }).wire();
      },
    },
  };

  // The real electron-log (its Node build: the same file transport as main's), writing real files in
  // the fake's logs folder; each line is also kept in `logLines` for the tests to read at once.
  const logLines: string[] = [];
  const fileLog = electronLog.create({ logId: `fake-${root}` });
  fileLog.transports.console.level = false;
  const capture = Object.assign((message: { level: string; data: unknown[] }) => void logLines.push(`${message.level} ${message.data.join(' ')}`), { level: 'silly' as const, transforms: [] });
  Object.assign(fileLog.transports, { capture });
  // A test's temp dir may be removed before the app's last lines at quit: those lines skip the file.
  fileLog.hooks.push((message, transport) => (transport === fileLog.transports.file && !existsSync(paths['logs']!) ? false : message));

  /** The preload's electron: its calls reach this fake's ipcMain as from the app's own page. */
  const exposed: Record<string, unknown> = {};
  const preloadElectron = {
    contextBridge: { exposeInMainWorld: (key: string, api: unknown) => void (exposed[key] = api) },
    ipcRenderer: {
      invoke: (channel: string, ...args: unknown[]) => ipcMain.invoke('app://safevault', channel, ...args),
      on: (channel: string, listener: (...args: unknown[]) => void) => rendererEvents.on(channel, listener),
      removeListener: (channel: string, listener: (...args: unknown[]) => void) => rendererEvents.removeListener(channel, listener),
    },
    webUtils: { getPathForFile: (file: { path: string }) => file.path },
  };

  return {
    electron: electron as unknown as ElectronParts,
    preloadElectron,
    exposed,
    fileLog: fileLog as unknown as ElectronLog.MainLogger,
    app,
    windows,
    trays,
    notifications,
    ipcMain,
    dialogAnswers,
    opened,
    permissions,
    schemes,
    children,
    logLines,
    nativeTheme: electron.nativeTheme,
    get loginItem() {
      return loginItem;
    },
    appRequest: (url: string) => appHandler!({ url }),
  };
}

/** The preload is a module with a side effect (exposeInMainWorld), so it is loaded once per process. */
let preloaded: ReturnType<typeof fakeElectron> | null = null;
export async function loadPreload(fake: ReturnType<typeof fakeElectron>): Promise<DesktopBridge> {
  if (preloaded) throw new Error('one desktop per test process: the preload is loaded once');
  preloaded = fake;
  (globalThis as { fakePreloadElectron?: unknown }).fakePreloadElectron = fake.preloadElectron;
  const hooks = registerHooks({
    resolve: (specifier, context, next) =>
      specifier === 'electron'
        ? { url: 'data:text/javascript,export const { contextBridge, ipcRenderer, webUtils } = globalThis.fakePreloadElectron;', shortCircuit: true }
        : next(specifier, context),
  });
  await import('../../electron/preload/index.ts');
  hooks.deregister();
  return fake.exposed['safevault'] as DesktopBridge;
}
