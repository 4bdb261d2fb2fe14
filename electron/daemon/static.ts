/**
 * The built renderer, served at `/` without a token: the files hold no data (every API path needs the
 * token), so a page can load and then authorise itself with the token from its URL fragment.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { extname, join, resolve, sep } from 'node:path';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.woff': 'font/woff',
  '.map': 'application/json; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
};

/**
 * The window's policy, for both hosts: only our own scripts and styles, and connections only to the
 * app itself plus `connect` (the daemon's socket; the desktop app needs none).
 * style-src-attr allows style="…" attributes (never <style> elements or scripts): ECharts writes its
 * tooltips as HTML strings with inline style attributes, which a bare style-src 'self' would strip.
 * Vue's :style bindings and vue-virtual's positioning go through the CSSOM, which CSP does not restrict.
 * img-src and font-src allow data: because Vite inlines small assets as data URLs.
 */
export function contentSecurityPolicy(connect: readonly string[] = []): string {
  return [
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "style-src-attr 'unsafe-inline'",
    "img-src 'self' data:",
    "font-src 'self' data:",
    `connect-src ${["'self'", ...connect].join(' ')}`,
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
}

/** Headers every non-API answer carries, static or not. */
export function securityHeaders(port: number): Record<string, string> {
  return {
    'Content-Security-Policy': contentSecurityPolicy([`ws://127.0.0.1:${port}`, `ws://localhost:${port}`]),
    'X-Content-Type-Options': 'nosniff',
    'Referrer-Policy': 'no-referrer',
    'X-Frame-Options': 'DENY',
    'Cross-Origin-Opener-Policy': 'same-origin',
  };
}

export const NOT_BUILT = 'The SafeVault window is not built: run `npm run build` in the repository, then reload.';

/**
 * Answers a GET/HEAD for `pathname` from `root`: the file if it exists inside root, index.html for
 * app routes (no extension: the single-page app's router takes it from there), else 404. Refuses any
 * path that would leave root, however encoded.
 */
export async function serveStatic(root: string, pathname: string, req: IncomingMessage, res: ServerResponse, port: number): Promise<void> {
  const headers = securityHeaders(port);
  const answer = (status: number, text: string) => {
    res.writeHead(status, { ...headers, 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(text), 'Cache-Control': 'no-store' });
    res.end(req.method === 'HEAD' ? undefined : text);
  };
  if (req.method !== 'GET' && req.method !== 'HEAD') return answer(405, 'use GET');
  let decoded: string;
  try {
    decoded = decodeURIComponent(pathname);
  } catch {
    return answer(400, 'bad path');
  }
  const base = resolve(root);
  const segments = decoded.split(/[\\/]/);
  if (decoded.includes('\0') || segments.some((s) => s === '..')) return answer(400, 'bad path');
  const wanted = resolve(base, `.${decoded}`);
  if (wanted !== base && !wanted.startsWith(base + sep)) return answer(400, 'bad path');

  const file = await regularFile(wanted === base ? join(base, 'index.html') : wanted);
  const index = join(base, 'index.html');
  const target = file ?? (extname(decoded) === '' ? await regularFile(index) : undefined);
  if (!target) return (await regularFile(index)) ? answer(404, `not found: ${pathname}`) : answer(pathname === '/' ? 503 : 404, NOT_BUILT);
  res.writeHead(200, {
    ...headers,
    'Content-Type': TYPES[extname(target.path)] ?? 'application/octet-stream',
    'Content-Length': target.size,
    // Vite fingerprints what it puts in assets/; the rest (index.html above all) must be fresh.
    'Cache-Control': target.path.startsWith(join(base, 'assets') + sep) ? 'public, max-age=31536000, immutable' : 'no-cache',
  });
  if (req.method === 'HEAD') return void res.end();
  createReadStream(target.path).on('error', () => res.destroy()).pipe(res);
}

async function regularFile(path: string): Promise<{ path: string; size: number } | undefined> {
  const info = await stat(path).catch(() => undefined);
  return info?.isFile() ? { path, size: info.size } : undefined;
}
