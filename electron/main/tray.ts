/**
 * The tray: an icon whose look shows online / working / paused / error (1x and 2x, for light and dark
 * panels; on macOS black-and-alpha template images the menu bar tints itself) and the menu a
 * tray-resident app needs.
 */
import { join } from 'node:path';
import type { Menu, MenuItemConstructorOptions, NativeTheme, Tray } from 'electron';
import type { ConnectionState, Status } from '../api/contract.ts';
import { bytes } from '../daemon/format.ts';

export const TRAY_STATES = ['online', 'working', 'paused', 'error'] as const;
export type TrayState = (typeof TRAY_STATES)[number];

export interface TrayView {
  connection: ConnectionState;
  /** The latest status, when the engine has answered one since it last started. */
  status?: Status;
  startAtLogin: boolean;
  /** The data folder is being moved (the engine is stopped meanwhile). */
  moving?: boolean;
}

export interface TrayActions {
  open(): void;
  storeFiles(): void;
  setPaused(paused: boolean): void;
  setStartAtLogin(on: boolean): void;
  openLogs(): void;
  quit(): void;
}

export function trayState({ connection, status, moving }: TrayView): TrayState {
  if (moving) return 'working';
  if (connection === 'connecting') return 'working';
  if (connection === 'disconnected' || !status || status.online === 0) return 'error';
  if (status.paused) return 'paused';
  return status.opsInFlight > 0 ? 'working' : 'online';
}

function statusLine({ connection, status, moving }: TrayView): string {
  if (moving) return 'Moving the data folder…';
  if (connection === 'connecting' || (connection === 'connected' && !status)) return 'Starting the vault engine…';
  if (connection === 'disconnected' || !status) return 'Vault engine stopped: restarting…';
  const line = `${status.online} of ${status.vaults} vaults online · ${bytes(status.used)} of ${bytes(status.donated)} donated used`;
  return status.paused ? `Paused · ${line}` : line;
}

/**
 * The icon for a state; `dark` picks the variant drawn for a dark panel. Electron finds the @2x file
 * beside it. macOS gets the template image (a name ending in "Template"), which its menu bar recolours
 * for light, dark and highlighted itself, so the state there is in the badge's shape, not its colour.
 */
export const trayIconPath = (iconDir: string, state: TrayState, dark: boolean, platform: NodeJS.Platform): string =>
  join(iconDir, platform === 'darwin' ? `tray-${state}Template.png` : `tray-${state}-${dark ? 'dark' : 'light'}.png`);

export function trayMenu(view: TrayView, actions: TrayActions): MenuItemConstructorOptions[] {
  const ready = view.connection === 'connected' && view.status !== undefined;
  const paused = view.status?.paused ?? false;
  return [
    { id: 'status', label: statusLine(view), enabled: false },
    { type: 'separator' },
    { id: 'open', label: 'Open SafeVault', click: () => actions.open() },
    { id: 'store', label: 'Store files…', enabled: ready, click: () => actions.storeFiles() },
    { id: 'pause', label: paused ? 'Resume vaulting' : 'Pause vaulting', enabled: ready, click: () => actions.setPaused(!paused) },
    { id: 'login', label: 'Start at login', type: 'checkbox', checked: view.startAtLogin, click: () => actions.setStartAtLogin(!view.startAtLogin) },
    { type: 'separator' },
    { id: 'logs', label: 'Open logs folder', click: () => actions.openLogs() },
    { id: 'quit', label: 'Quit SafeVault', click: () => actions.quit() },
  ];
}

export interface TrayOptions {
  Tray: typeof Tray;
  Menu: Pick<typeof Menu, 'buildFromTemplate'>;
  nativeTheme: Pick<NativeTheme, 'shouldUseDarkColors' | 'on'>;
  iconDir: string;
  platform: NodeJS.Platform;
  actions: TrayActions;
}

export interface AppTray {
  update(view: TrayView): void;
  destroy(): void;
}

export function createTray({ Tray, Menu, nativeTheme, iconDir, platform, actions }: TrayOptions, initial: TrayView): AppTray {
  let view = initial;
  const icon = () => trayIconPath(iconDir, trayState(view), nativeTheme.shouldUseDarkColors, platform);
  const tray = new Tray(icon());
  const render = () => {
    tray.setImage(icon());
    tray.setToolTip(`SafeVault: ${statusLine(view)}`);
    tray.setContextMenu(Menu.buildFromTemplate(trayMenu(view, actions)));
  };
  tray.on('click', () => actions.open());
  nativeTheme.on('updated', render);
  render();
  return {
    update(next) {
      view = next;
      render();
    },
    destroy: () => tray.destroy(),
  };
}
