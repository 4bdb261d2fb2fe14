/**
 * Electron's security checklist in one place: the app served from a privileged app:// scheme (only
 * files under the built renderer, with a strict CSP), secure webPreferences, no navigation, no new
 * windows, no webviews, https-only external links, every permission denied.
 */
import { readFile } from 'node:fs/promises';
import { extname, resolve, sep } from 'node:path';
import type { App, Protocol, Session, Shell, WebPreferences } from 'electron';
import { contentSecurityPolicy } from '../daemon/static.ts';
import type { Logger } from './logging.ts';

const APP_SCHEME = 'app';
export const APP_ORIGIN = 'app://safevault';
export const APP_URL = `${APP_ORIGIN}/index.html`;

/** The window's policy, the one the daemon serves it with: nothing but the app's own scripts and styles. */
export const CONTENT_SECURITY_POLICY = contentSecurityPolicy();

/** The window's webPreferences: isolated, sandboxed, no Node, no webviews. */
export const secureWebPreferences = (preload: string): WebPreferences => ({
  preload,
  contextIsolation: true,
  sandbox: true,
  nodeIntegration: false,
  nodeIntegrationInWorker: false,
  nodeIntegrationInSubFrames: false,
  webviewTag: false,
  webSecurity: true,
  allowRunningInsecureContent: false,
  experimentalFeatures: false,
  navigateOnDragDrop: false,
  spellcheck: false,
});

/** Must run before the app is ready: app:// behaves like https (secure context, fetch, its own origin). */
export function registerAppScheme(protocol: Pick<Protocol, 'registerSchemesAsPrivileged'>): void {
  protocol.registerSchemesAsPrivileged([{ scheme: APP_SCHEME, privileges: { standard: true, secure: true, supportFetchAPI: true } }]);
}

export function serveApp(protocol: Pick<Protocol, 'handle'>, rendererDir: string): void {
  protocol.handle(APP_SCHEME, (request) => appResponse(rendererDir, request.url));
}

/** The file an app:// URL names, or null for another host or anything outside `rendererDir`. */
function resolveAppPath(rendererDir: string, url: string): string | null {
  let parsed: URL;
  let pathname: string;
  try {
    parsed = new URL(url);
    pathname = decodeURIComponent(parsed.pathname);
  } catch {
    return null;
  }
  if (parsed.protocol !== `${APP_SCHEME}:` || parsed.host !== 'safevault' || pathname.includes('\0')) return null;
  const root = resolve(rendererDir);
  const path = resolve(root, `.${pathname === '/' ? '/index.html' : pathname}`);
  return path.startsWith(root + sep) ? path : null;
}

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.webp': 'image/webp',
  '.woff2': 'font/woff2',
  '.wasm': 'application/wasm',
};

async function appResponse(rendererDir: string, url: string): Promise<Response> {
  const path = resolveAppPath(rendererDir, url);
  const headers = { 'content-security-policy': CONTENT_SECURITY_POLICY, 'x-content-type-options': 'nosniff' };
  if (!path) return new Response('not found', { status: 404, headers });
  // A route of the single-page app (no extension) gets the app itself.
  const file = extname(path) ? path : resolve(rendererDir, 'index.html');
  try {
    const body = await readFile(file);
    return new Response(body, { headers: { ...headers, 'content-type': CONTENT_TYPES[extname(file)] ?? 'application/octet-stream' } });
  } catch {
    return new Response('not found', { status: 404, headers });
  }
}

/** Opens a link in the user's browser only if it is https; anything else is refused and logged. */
function openExternalSafely(shell: Pick<Shell, 'openExternal'>, url: string, log: Logger): boolean {
  let protocol = '';
  try {
    protocol = new URL(url).protocol;
  } catch {
    // not a URL: refused below
  }
  if (protocol !== 'https:') {
    log.warn(`refused to open ${JSON.stringify(url.slice(0, 200))}: only https links open outside the app`);
    return false;
  }
  void shell.openExternal(url);
  return true;
}

/** Every web contents: no navigation away, no new windows (https links go to the browser), no webviews. */
export function hardenWebContents(app: Pick<App, 'on'>, shell: Pick<Shell, 'openExternal'>, log: Logger): void {
  app.on('web-contents-created', (_event, contents) => {
    const refuse = (event: { preventDefault(): void }, url: string) => {
      event.preventDefault();
      log.warn(`refused navigation to ${url.slice(0, 200)}`);
    };
    contents.on('will-navigate', refuse);
    contents.on('will-redirect', refuse);
    contents.on('will-attach-webview', (event) => {
      event.preventDefault();
      log.warn('refused a webview');
    });
    contents.setWindowOpenHandler(({ url }) => {
      openExternalSafely(shell, url, log);
      return { action: 'deny' };
    });
  });
}

/** Camera, microphone, notifications from the page, geolocation …: the window needs none, so all are denied. */
export function denyPermissions(session: Pick<Session, 'setPermissionRequestHandler' | 'setPermissionCheckHandler'>, log: Logger): void {
  session.setPermissionRequestHandler((_contents, permission, callback) => {
    log.warn(`denied a permission request: ${permission}`);
    callback(false);
  });
  session.setPermissionCheckHandler(() => false);
}
