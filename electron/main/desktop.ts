/**
 * The desktop host, composed: every concern's module gets the Electron pieces it uses from here.
 * index.ts passes the real Electron; the tests pass thin fakes (test/desktop/fakeElectron.ts).
 */
import { basename, join } from 'node:path';
import type * as Electron from 'electron';
import type ElectronLog from 'electron-log';
import type { ConnectionState, Params, Results, Settings, Status } from '../api/contract.ts';
import { isSafeVaultError } from '../api/errors.ts';
import { channels } from '../preload/channels.ts';
import { dataFolderMover } from './dataFolder.ts';
import { desktopConfig } from './desktopConfig.ts';
import { utilityEngine } from './engineProcess.ts';
import { createEngineSupervisor } from './engineSupervisor.ts';
import { serveIpc, type EngineCall } from './ipc.ts';
import { createLogging } from './logging.ts';
import { createLoginItem, launchedHidden, type Autostart } from './loginItem.ts';
import { desktopMasterKey } from './masterKey.ts';
import { createNotifier, notificationFor, spaceWatch } from './notifications.ts';
import { APP_ORIGIN, APP_URL, denyPermissions, hardenWebContents, registerAppScheme, serveApp } from './security.ts';
import { argsToSkip, claimSingleInstance, filesFromArgv } from './singleInstance.ts';
import { createTray, type AppTray, type TrayView } from './tray.ts';
import { createMainWindow } from './windows.ts';

export type ElectronParts = Pick<
  typeof Electron,
  | 'app'
  | 'BrowserWindow'
  | 'Tray'
  | 'Menu'
  | 'nativeTheme'
  | 'Notification'
  | 'dialog'
  | 'shell'
  | 'ipcMain'
  | 'protocol'
  | 'session'
  | 'safeStorage'
  | 'utilityProcess'
>;

export interface DesktopPaths {
  /** The built renderer (index.html and its assets), served as app://safevault. */
  rendererDir: string;
  preload: string;
  engineHost: string;
  trayIcons: string;
  windowIcon: string;
}

export interface DesktopOptions {
  argv: readonly string[];
  cwd: string;
  platform: NodeJS.Platform;
  /** electron-vite's dev server (not packaged): loaded instead of app:// and allowed to call. */
  devServerUrl?: string;
  /** Whether the desktop shows tray icons (trayHost.ts); where it does not, closing the window quits. */
  hasTray(): Promise<boolean>;
  /** Where start at login is written where Electron has no login item (Linux). */
  autostart: Autostart;
  /** Vaults of a new local network (the engine's default when unset). */
  vaults?: number;
}

/** How long quit waits for the engine to close before killing it. */
const QUIT_TIMEOUT_MS = 10_000;
const STATUS_POLL_MS = 5000;
const DEFAULT_CLIENT = 'me';

export function startDesktop(electron: ElectronParts, fileLog: ElectronLog.MainLogger, paths: DesktopPaths, options: DesktopOptions): boolean {
  const { app, protocol, dialog, shell, nativeTheme } = electron;
  registerAppScheme(protocol);
  const log = createLogging(fileLog, app.getPath('logs'));
  const config = desktopConfig(app.getPath('userData'), log);
  const loginItem = createLoginItem(app, options.platform, options.autostart);
  const hidden = launchedHidden(options.argv, app);

  let connection: ConnectionState = 'disconnected';
  let status: Status | undefined;
  let myVault: string | undefined;
  /** The account the window last used: the tray's and the launcher's files are stored as it. */
  let activeClient: string | undefined;
  let tray: AppTray | undefined;
  const waitingFiles: string[] = [];

  const supervisor = createEngineSupervisor({
    spawn: utilityEngine(electron.utilityProcess, paths.engineHost, log),
    init: () => {
      const { dataDir } = config.get();
      return { type: 'init', dataDir, vaults: options.vaults, masterKey: desktopMasterKey(electron.safeStorage, dataDir, options.platform, log) };
    },
    log: (level, message) => log[level](message),
    onEngineLog: (level, message) => log.engine(level, message),
  });

  const applySettings = (settings: Settings) => {
    notifier.setEnabled(settings.notifications);
    nativeTheme.themeSource = settings.theme === 'auto' ? 'system' : settings.theme;
    if (loginItem.enabled !== settings.startAtLogin) loginItem.set(settings.startAtLogin);
    renderTray();
  };

  /**
   * Every engine call from the window or the tray; settings and pause take effect in the shell too.
   * The Logs view reads main's log files, which hold the engine's lines as well as main's.
   */
  const call: EngineCall = async (method, params) => {
    if (method === 'logs') return (await log.lines(params as Params<'logs'>)) as Results[typeof method];
    if ('as' in params && typeof params.as === 'string') activeClient = params.as;
    const result = await supervisor.call(method, params);
    if (method === 'getSettings' || method === 'setSettings') applySettings(result as Settings);
    if (method === 'setPaused') {
      status = result as Status;
      renderTray();
    }
    return result;
  };

  const window = createMainWindow({
    BrowserWindow: electron.BrowserWindow,
    preload: paths.preload,
    url: options.devServerUrl ?? APP_URL,
    icon: paths.windowIcon,
    hidesOnClose: () => tray !== undefined,
    onHidden: () => {
      if (config.get().trayNoticeShown) return;
      notifier.tell('SafeVault is still running', 'It keeps vaulting in the tray. Quit from the tray menu.');
      config.set({ trayNoticeShown: true });
    },
  });

  const notifier = createNotifier({ Notification: electron.Notification, onClick: () => window.show() });
  const watchSpace = spaceWatch((detail) => notifier.notify('spaceNearlyFull', detail));

  let moving = false;
  const mover = dataFolderMover({
    current: () => config.get().dataDir,
    stopEngine: () => supervisor.stop(QUIT_TIMEOUT_MS),
    startEngine: () => supervisor.start(),
    save: (dataDir) => void config.set({ dataDir }),
    onProgress: (progress) => {
      moving = !progress.done;
      window.send(channels.dataFolderMove, progress);
      renderTray();
    },
    log,
  });

  const trayView = (): TrayView => ({ connection, status, startAtLogin: loginItem.enabled, moving });
  const renderTray = () => tray?.update(trayView());

  const refresh = async () => {
    if (connection !== 'connected') return;
    try {
      status = await call('status', {});
      watchSpace(status);
    } catch (error) {
      log.warn(`status: ${(error as Error).message}`);
    }
    renderTray();
  };
  let refreshQueued = false;
  const refreshSoon = () => {
    if (refreshQueued) return;
    refreshQueued = true;
    setTimeout(() => {
      refreshQueued = false;
      void refresh();
    }, 500).unref();
  };

  const storeFiles = (files: string[]) => {
    if (connection !== 'connected') return void waitingFiles.push(...files);
    const as = activeClient ?? status?.clients[0] ?? DEFAULT_CLIENT;
    for (const path of files) {
      call('putFile', { as, path }).catch((error: unknown) => {
        log.warn(`store ${path}: ${(error as Error).message}`);
        // The engine reports failures of a store it began (file.failed); the rest are said here.
        if (!isSafeVaultError(error) || error.code === 'bad-request' || error.code === 'unavailable') {
          notifier.notify('storeFailed', `${basename(path)}: ${(error as Error).message}`);
        }
      });
    }
  };

  const onConnected = async () => {
    try {
      applySettings(await call('getSettings', {}));
      myVault = (await call('myVault', {})).id;
    } catch (error) {
      log.warn(`engine settings: ${(error as Error).message}`);
    }
    await refresh();
    storeFiles(waitingFiles.splice(0));
  };

  supervisor.onState((state) => {
    connection = state;
    if (state !== 'connected') status = undefined;
    window.send(channels.connection, state);
    renderTray();
    if (state === 'connected') void onConnected();
  });

  supervisor.onEvent((event) => {
    window.send(channels.event, event);
    const note = notificationFor(event, myVault);
    if (note) notifier.notify(...note);
    if (event.type.startsWith('file.') || event.type.startsWith('vault.')) refreshSoon();
  });

  if (!claimSingleInstance({ app, onFiles: storeFiles, onSecondLaunch: () => window.show() })) return false;
  hardenWebContents(app, shell, log);

  let stopped = false;
  let quitting = false;
  const poll = setInterval(() => void refresh(), STATUS_POLL_MS);
  poll.unref();
  app.on('before-quit', (event) => {
    window.allowClose();
    if (stopped) return;
    event.preventDefault();
    if (quitting) return;
    quitting = true;
    clearInterval(poll);
    // A data folder half copied must finish (or be undone) before the app goes: wait for the move.
    mover.close();
    const move = mover.running?.catch(() => undefined);
    if (move) log.info('quitting: waiting for the data folder move to end');
    void Promise.resolve(move)
      .then(() => {
        log.info('quitting: closing the engine');
        return supervisor.stop(QUIT_TIMEOUT_MS);
      })
      .finally(() => {
        stopped = true;
        tray?.destroy();
        tray = undefined;
        app.quit();
      });
  });
  // Without a tray the window is the app: closing it quits.
  app.on('window-all-closed', () => {
    if (!tray) app.quit();
  });
  app.on('activate', () => window.show());

  void app.whenReady().then(() => {
    serveApp(protocol, paths.rendererDir);
    denyPermissions(electron.session.defaultSession, log);
    const allowedOrigins = new Set([APP_ORIGIN]);
    if (options.devServerUrl) allowedOrigins.add(new URL(options.devServerUrl).origin);
    serveIpc({
      ipcMain: electron.ipcMain,
      call,
      connection: () => connection,
      chooseSavePath: async (name) => {
        const parent = window.current;
        const saveOptions = { defaultPath: join(app.getPath('downloads'), name) };
        const chosen = parent ? await dialog.showSaveDialog(parent, saveOptions) : await dialog.showSaveDialog(saveOptions);
        return chosen.canceled || !chosen.filePath ? null : chosen.filePath;
      },
      chooseFolder: async () => {
        const parent = window.current;
        const folderOptions = { title: 'Choose the data folder', properties: ['openDirectory', 'createDirectory'] as ('openDirectory' | 'createDirectory')[] };
        const chosen = parent ? await dialog.showOpenDialog(parent, folderOptions) : await dialog.showOpenDialog(folderOptions);
        return chosen.canceled ? null : (chosen.filePaths[0] ?? null);
      },
      moveDataFolder: (target) => mover.move(target),
      allowedOrigins,
      log,
    });
    supervisor.start();
    if (!hidden) window.show();
    storeFiles(filesFromArgv(options.argv, options.cwd, argsToSkip(app)));
    const makeTray = () =>
      createTray(
        {
          Tray: electron.Tray,
          Menu: electron.Menu,
          nativeTheme,
          iconDir: paths.trayIcons,
          platform: options.platform,
          actions: {
            open: () => window.show(),
            storeFiles: async () => {
              const picked = await dialog.showOpenDialog({ title: 'Store files', properties: ['openFile', 'multiSelections'] });
              if (!picked.canceled) storeFiles(picked.filePaths);
            },
            setPaused: (paused) => void call('setPaused', { paused }).catch((e: Error) => log.warn(`pause: ${e.message}`)),
            setStartAtLogin: (on) => {
              loginItem.set(on);
              renderTray();
              call('setSettings', { startAtLogin: on }).catch((e: Error) => log.warn(`start at login: ${e.message}`));
            },
            openLogs: () => void shell.openPath(app.getPath('logs')),
            quit: () => app.quit(),
          },
        },
        trayView(),
      );
    const noTray = (why: string) => {
      log.warn(`no tray on this desktop (${why}): closing the window quits`);
      // Started hidden at login, the window would otherwise never show.
      if (hidden) window.show();
    };
    void options.hasTray().then((shows) => {
      if (quitting) return;
      if (!shows) return noTray('no StatusNotifierWatcher on the session bus');
      try {
        tray = makeTray();
      } catch (error) {
        noTray((error as Error).message);
      }
    });
  });
  return true;
}
