/**
 * The desktop app as far as it can run without the Electron binary: the real main process
 * (startDesktop: its app:// handler, its IPC with origin check and contract validation, its engine host
 * supervisor forking the real engine host in Node) over test/desktop's thin electron fake, and the real
 * preload loaded against that fake. A page gets `window.safevault` whose every call crosses into Node
 * (page.exposeFunction) and goes through that preload into main as from app://safevault; events and
 * the connection state are pushed back into the page.
 */
import { createServer, type Server } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { methods, type ConnectionState, type DesktopBridge } from '../../electron/api/contract.ts';
import { startDesktop } from '../../electron/main/desktop.ts';
import { fakeElectron, loadPreload } from '../../test/desktop/fakeElectron.ts';
import { eventually, root } from './harness.ts';

export interface DesktopHost {
  /** A loopback http server answering exactly as main's app:// handler does. */
  url: string;
  bridge: DesktopBridge;
  /** What the next "Save as…" dialog answers. */
  dialogAnswers: unknown[];
  /** How many calls the pages made through window.safevault. */
  calls: number;
  /** Main's log file lines (electron-log's, faked): the supervisor's restarts are there. */
  logLines: readonly string[];
  /** Engine host processes started so far, the running one last. */
  engines(): number;
  /** Kills the running engine host as a crash would: SIGKILL, no goodbye. */
  killEngine(): void;
  /** Where main keeps its desktop.json (the data folder setting). */
  userData: string;
  /** Wires `page` so its window.safevault is this desktop's preload; files given by name come from `filesDir`. */
  wire(page: Page, filesDir: string): Promise<void>;
  stop(): Promise<void>;
}

export async function startDesktopHost(vaults = 12): Promise<DesktopHost> {
  const dir = await mkdtemp(join(tmpdir(), 'safevault-e2e-desktop-'));
  // Leftover engine hosts are killed in stop(), at the end of the suite, not when its before hook ends.
  let killLeftovers = () => {};
  const fake = fakeElectron(dir, { cleanup: (run) => void (killLeftovers = run) });
  const paths = { rendererDir: join(root, 'out', 'renderer'), preload: '', engineHost: join(root, 'electron', 'host', 'engineHost.ts'), trayIcons: dir, windowIcon: '' };
  if (!startDesktop(fake.electron, fake.fileLog, paths, { argv: ['safevault'], cwd: dir, platform: 'linux', hasTray: async () => true, autostart: { dir: join(dir, 'autostart'), exec: 'safevault' }, vaults })) throw new Error('the desktop did not start');
  const bridge = await loadPreload(fake);

  let connection: ConnectionState = 'connecting';
  const pages = new Set<Page>();
  const push = (kind: 'event' | 'connection' | 'dataFolder', value: unknown) => {
    // A page navigating away drops the push, as a closed window would.
    for (const page of pages) void page.evaluate(([k, v]) => (window as unknown as { safevaultPush(k: string, v: unknown): void }).safevaultPush(k, v), [kind, value] as const).catch(() => undefined);
  };
  bridge.onConnection((state) => {
    connection = state;
    push('connection', state);
  });
  bridge.onEvent((event) => push('event', event));
  bridge.onDataFolderMove((progress) => push('dataFolder', progress));

  const server: Server = createServer((request, response) => {
    void fake.appRequest(`app://safevault${request.url}`).then(async (answer) => {
      response.writeHead(answer.status, Object.fromEntries(answer.headers));
      response.end(Buffer.from(await answer.arrayBuffer()));
    }, (error: Error) => response.writeHead(500).end(error.message));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };

  const host: DesktopHost = {
    url: `http://127.0.0.1:${port}`,
    bridge,
    dialogAnswers: fake.dialogAnswers,
    calls: 0,
    logLines: fake.logLines,
    engines: () => fake.children.length,
    killEngine: () => void fake.children.at(-1)!.kill('SIGKILL'),
    userData: fake.app.getPath('userData'),
    async wire(page, filesDir) {
      pages.add(page);
      page.once('close', () => pages.delete(page));
      await page.exposeFunction('safevaultInvoke', async (name: string, arg: unknown) => {
        host.calls++;
        if (name === 'connection') return { ok: true, result: connection };
        try {
          return { ok: true, result: await (bridge as unknown as Record<string, (a: unknown) => Promise<unknown>>)[name]!(arg) };
        } catch (error) {
          // The preload rejects with a plain {name, code, message}: it crosses into the page whole.
          return { ok: false, error };
        }
      });
      await page.addInitScript(
        ({ names, dir }) => {
          type Answer = { ok: true; result: unknown } | { ok: false; error: unknown };
          const w = window as unknown as { safevaultInvoke(name: string, arg?: unknown): Promise<Answer>; safevaultPush(kind: string, value: unknown): void; safevault: unknown };
          const call = async (name: string, arg?: unknown) => {
            const answer = await w.safevaultInvoke(name, arg);
            if (answer.ok) return answer.result;
            throw answer.error;
          };
          const listeners: Record<string, Set<(value: unknown) => void>> = { event: new Set(), connection: new Set(), dataFolder: new Set() };
          w.safevaultPush = (kind, value) => listeners[kind]!.forEach((l) => l(value));
          const on = (kind: string, listener: (value: unknown) => void) => {
            listeners[kind]!.add(listener);
            return () => void listeners[kind]!.delete(listener);
          };
          w.safevault = {
            ...Object.fromEntries(names.map((m) => [m, (params: unknown) => call(m, params)])),
            onEvent: (listener: (value: unknown) => void) => on('event', listener),
            onConnection(listener: (value: unknown) => void) {
              const off = on('connection', listener);
              void call('connection').then(listener);
              return off;
            },
            // The one faked piece of the page: Electron's webUtils gives a dropped File's path; here a
            // File is mapped to the file of the same name the test wrote into `dir`.
            getPathForFile: (file: File) => `${dir}/${file.name}`,
            chooseSavePath: (name: string) => call('chooseSavePath', name),
            chooseFolder: () => call('chooseFolder'),
            moveDataFolder: (target: string) => call('moveDataFolder', target),
            onDataFolderMove: (listener: (value: unknown) => void) => on('dataFolder', listener),
          };
        },
        { names: Object.keys(methods), dir: filesDir },
      );
    },
    async stop() {
      await new Promise((resolve) => server.close(resolve));
      fake.app.quit();
      await eventually(() => fake.app.quitted, 'the desktop to quit', 20_000);
      killLeftovers();
      await rm(dir, { recursive: true, force: true });
    },
  };
  await eventually(() => connection === 'connected', 'the engine host to connect', 60_000);
  return host;
}
