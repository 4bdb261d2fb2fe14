/**
 * The client the whole renderer uses, chosen once at start: the desktop preload if present, else the
 * daemon's WebSocket with the token from the URL. Stores reach it through `api()`; tests install a fake.
 */
import type { DesktopBridge } from '../../../electron/api/contract.ts';
import type { ApiClient } from './client.ts';
import { preloadBridge } from './preloadBridge.ts';
import { takeToken } from './token.ts';
import { websocketBridge } from './websocketBridge.ts';

let current: ApiClient | null = null;

export function installApi(client: ApiClient): void {
  current = client;
}

export function api(): ApiClient {
  if (!current) throw new Error('no API client installed');
  return current;
}

/** The host's client, or null when a browser page came without a token (it must show "not authorised"). */
export function chooseBridge(): ApiClient | null {
  const desktop = (window as { safevault?: DesktopBridge }).safevault;
  if (desktop) return preloadBridge(desktop);
  const token = takeToken();
  return token ? websocketBridge(token) : null;
}
