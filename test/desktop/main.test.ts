/** The desktop host's wiring with Electron faked (fakeElectron.ts) and the real engine host forked. */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import type { Method } from '../../electron/api/contract.ts';
import { openDatabase } from '../../electron/engine/db.ts';
import { aesGcmSealer } from '../../electron/engine/secretSealer.ts';
import { startDesktop } from '../../electron/main/desktop.ts';
import { sealedKeyPath } from '../../electron/main/masterKey.ts';
import { APP_ORIGIN, APP_URL, CONTENT_SECURITY_POLICY } from '../../electron/main/security.ts';
import { channels } from '../../electron/preload/channels.ts';
import { eventually, tempDir, writeRandomFile } from '../helpers.ts';
import { fakeElectron } from './fakeElectron.ts';

const ENGINE_HOST = join(import.meta.dirname, '../../electron/host/engineHost.ts');

/** `trayHost: false`: a desktop without a StatusNotifier host (the check of trayHost.ts says no). */
function launch({ trayHost = true, ...options }: Parameters<typeof fakeElectron>[1] & { trayHost?: boolean } = {}, argv: string[] = ['safevault'], platform: NodeJS.Platform = 'linux') {
  const root = tempDir('safevault-desktop-');
  const rendererDir = join(root, 'renderer');
  mkdirSync(join(rendererDir, 'assets'), { recursive: true });
  writeFileSync(join(rendererDir, 'index.html'), '<!doctype html><title>SafeVault</title>');
  writeFileSync(join(rendererDir, 'assets', 'app.js'), 'console.log(1)');
  writeFileSync(join(root, 'secret.txt'), 'not for the window');
  const fake = fakeElectron(root, { ...options, platform });
  const paths = { rendererDir, preload: join(root, 'preload.cjs'), engineHost: ENGINE_HOST, trayIcons: join(root, 'tray'), windowIcon: join(root, 'icon.png') };
  const autostart = { dir: join(root, 'autostart'), exec: '/opt/SafeVault/safevault' };
  const started = startDesktop(fake.electron, fake.fileLog, paths, { argv, cwd: root, platform, hasTray: async () => trayHost, autostart, vaults: 6 });
  /** Start at login on Linux: the XDG autostart entry. */
  const autostartEntry = join(autostart.dir, 'safevault.desktop');
  const dataDir = join(root, 'userData', 'data');
  const connected = () => eventually(() => fake.windows[0]?.webContents.sent.some(([c, v]) => c === channels.connection && v === 'connected') || fake.trays[0]?.item('status').label?.includes('vaults online'), 'the engine connected', 20_000);
  const call = (method: Method, params: unknown, origin: string | null = APP_ORIGIN) => fake.ipcMain.invoke(origin, channels.api, method, params) as Promise<{ ok: boolean; result?: any; error?: { code: string; message: string } }>;
  const quit = async () => {
    fake.app.quit();
    await eventually(() => fake.app.quitted, 'the app quit', 20_000);
  };
  return { fake, root, paths, started, dataDir, autostartEntry, connected, call, quit };
}

test('the window: isolated, sandboxed, no Node, no webviews, loaded from app://', async (t) => {
  const { fake, started, paths, connected, quit } = launch();
  t.after(quit);
  assert.equal(started, true);
  assert.deepEqual(fake.schemes, [{ scheme: 'app', privileges: { standard: true, secure: true, supportFetchAPI: true } }]);
  const window = await eventually(() => fake.windows[0], 'a window');
  const prefs = window.options.webPreferences;
  assert.equal(prefs.contextIsolation, true);
  assert.equal(prefs.sandbox, true);
  assert.equal(prefs.nodeIntegration, false);
  assert.equal(prefs.nodeIntegrationInSubFrames, false);
  assert.equal(prefs.webviewTag, false);
  assert.equal(prefs.webSecurity, true);
  assert.equal(prefs.allowRunningInsecureContent, false);
  assert.equal(prefs.preload, paths.preload);
  assert.equal(window.url, APP_URL);
  await eventually(() => window.visible, 'shown when ready');
  await connected();
});

test('security: navigation, new windows and webviews refused; https-only links; permissions denied', async (t) => {
  const { fake, quit } = launch();
  t.after(quit);
  const contents = (await eventually(() => fake.windows[0], 'a window')).webContents;
  for (const event of ['will-navigate', 'will-redirect', 'will-attach-webview']) {
    let prevented = false;
    contents.emit(event, { preventDefault: () => (prevented = true) }, 'https://evil.example/');
    assert.ok(prevented, `${event} is refused`);
  }
  for (const url of ['https://safevault.example/help', 'http://plain.example/', 'file:///etc/passwd', 'javascript:alert(1)', 'not a url']) {
    assert.deepEqual(contents.openHandler!({ url }), { action: 'deny' });
  }
  assert.deepEqual(fake.opened, ['https://safevault.example/help']);
  assert.ok(fake.logLines.some((l) => l.startsWith('warn refused to open "file:///etc/passwd"')));

  let granted: boolean | undefined;
  fake.permissions.request!({}, 'media', (ok) => (granted = ok));
  assert.equal(granted, false);
  assert.equal(fake.permissions.check!(), false);
});

test('app:// serves only the built renderer, with a strict CSP, and no traversal', async (t) => {
  const { fake, quit } = launch();
  t.after(quit);
  await eventually(() => fake.windows[0], 'ready');
  const index = await fake.appRequest('app://safevault/index.html');
  assert.equal(index.status, 200);
  assert.equal(index.headers.get('content-security-policy'), CONTENT_SECURITY_POLICY);
  assert.equal(index.headers.get('content-type'), 'text/html; charset=utf-8');
  assert.match(await index.text(), /<title>SafeVault/);
  assert.equal((await fake.appRequest('app://safevault/assets/app.js')).headers.get('content-type'), 'text/javascript; charset=utf-8');
  assert.match(await (await fake.appRequest('app://safevault/files')).text(), /<title>SafeVault/, 'a route gets the app');
  for (const url of [
    'app://safevault/../secret.txt',
    'app://safevault/%2e%2e/secret.txt',
    'app://safevault/assets/%2e%2e%2f%2e%2e%2fsecret.txt',
    'app://safevault/..%5csecret.txt',
    'app://other/index.html',
    'app://safevault/missing.js',
    'app://safevault/%00.js',
  ]) {
    const response = await fake.appRequest(url);
    assert.equal(response.status, 404, url);
    assert.doesNotMatch(await response.text(), /not for the window/);
  }
  assert.match(CONTENT_SECURITY_POLICY, /default-src 'self'/);
  assert.match(CONTENT_SECURITY_POLICY, /script-src 'self'(;|$)/);
  assert.match(CONTENT_SECURITY_POLICY, /connect-src 'self'(;|$)/, 'the desktop window talks over IPC only');
  assert.match(CONTENT_SECURITY_POLICY, /object-src 'none'/);
  // Only style attributes may be inline (ECharts' tooltips); never scripts, eval or <style>.
  assert.deepEqual(CONTENT_SECURITY_POLICY.split('; ').filter((d) => d.includes('unsafe')), ["style-src-attr 'unsafe-inline'"]);
  assert.doesNotMatch(CONTENT_SECURITY_POLICY, /\*/);
});

test('IPC: the contract behind an origin check and its schemas; nothing else reaches the engine', async (t) => {
  const { fake, root, connected, call, quit } = launch();
  t.after(quit);
  await connected();
  const expected = [channels.api, channels.chooseSavePath, channels.chooseFolder, channels.moveDataFolder, channels.connection].sort();
  assert.deepEqual([...fake.ipcMain.handlers.keys()].sort(), expected, 'the contract on one channel, the dialogs, the move, the connection; no other');
  // An unknown method: a clear error, and main's log says so.
  for (const [method, shown] of [['eval', '"eval"'], ['constructor', '"constructor"'], [undefined, 'undefined']] as const) {
    const unknown = await fake.ipcMain.invoke(APP_ORIGIN, channels.api, method, {});
    assert.deepEqual(unknown, { ok: false, error: { code: 'bad-request', message: `unknown method: ${shown}` } });
    assert.ok(fake.logLines.includes(`warn ipc: unknown method: ${shown}`), `${shown} is logged`);
  }
  assert.equal((await fake.ipcMain.invoke('https://evil.example', channels.api, 'eval', {}) as { error: { message: string } }).error.message, 'api: refused a call from origin https://evil.example');

  const status = await call('status', {});
  assert.equal(status.ok, true);
  assert.equal(status.result.vaults, 6);

  const file = writeRandomFile(root, 'private.bin', 50_000);
  for (const origin of ['https://evil.example', 'file://', null]) {
    const refused = await call('putFile', { as: 'me', path: file }, origin);
    assert.equal(refused.ok, false);
    assert.equal(refused.error!.code, 'unauthorized');
    assert.match(refused.error!.message, /^putFile: refused a call from (origin |a frame that is gone)/);
  }
  assert.ok(fake.logLines.some((l) => l.includes('refused a call from origin https://evil.example')));
  assert.deepEqual((await call('listFiles', { as: 'me' })).result, [], 'the refused store never happened');

  const malformed = await call('listFiles', { as: '../etc' });
  assert.deepEqual(malformed.error?.code, 'bad-request');
  assert.match(malformed.error!.message, /^listFiles: as: a client name/);
  assert.equal((await call('status', { extra: 1 })).error?.code, 'bad-request');
  assert.equal((await call('putFile', { as: 'me', path: 'relative/path' })).error?.code, 'bad-request');
  // The network settings go to the engine host, which checks addresses before it changes anything.
  const badPeer = await call('setSettings', { mode: 'network', bootstrap: ['192.168.1.10:4001'] });
  assert.equal(badPeer.error?.code, 'bad-request');
  assert.match(badPeer.error!.message, /^bootstrap address "192\.168\.1\.10:4001" is not a multiaddr/);
  assert.equal((await call('getSettings', {})).result.mode, 'local');
  assert.deepEqual((await call('peers', {})).result, { mode: 'local', addresses: [], peers: [] });

  const stored = await call('putFile', { as: 'me', path: file });
  assert.equal(stored.ok, true, JSON.stringify(stored.error));
  assert.equal(stored.result.name, 'private.bin');

  assert.equal(((await fake.ipcMain.invoke(APP_ORIGIN, channels.chooseSavePath, '../../.bashrc')) as { error: { code: string } }).error.code, 'bad-request');
  fake.dialogAnswers.push({ canceled: false, filePath: '/home/me/private.bin' });
  assert.deepEqual(await fake.ipcMain.invoke(APP_ORIGIN, channels.chooseSavePath, 'private.bin'), { ok: true, result: '/home/me/private.bin' });
  fake.dialogAnswers.push({ canceled: true });
  assert.deepEqual(await fake.ipcMain.invoke(APP_ORIGIN, channels.chooseSavePath, 'private.bin'), { ok: true, result: null });
  assert.deepEqual(await fake.ipcMain.invoke(APP_ORIGIN, channels.connection), { ok: true, result: 'connected' });

  // One log: the engine's lines reach main's file once, beside main's own; the Logs view reads that file.
  assert.equal(fake.logLines.filter((l) => /^info engine: engine started in .* with 6 vaults online$/.test(l)).length, 1);
  assert.equal((await call('setPaused', { paused: true })).ok, true);
  await eventually(() => fake.logLines.some((l) => /^info engine: own vault \w+ paused$/.test(l)), 'the engine’s line in main’s file');
  assert.equal(fake.logLines.filter((l) => /^info engine: own vault \w+ paused$/.test(l)).length, 1);
  const warnings = (await call('logs', { level: 'warn' })).result as { level: string; message: string }[];
  assert.ok(warnings.some((l) => l.level === 'warn' && l.message === 'ipc: putFile: refused a call from origin https://evil.example'), 'main’s refusal, from the file');
  assert.ok(warnings.every((l) => l.level === 'warn' || l.level === 'error'));
  const all = (await call('logs', {})).result as { message: string }[];
  assert.equal(all.filter((l) => /^engine: own vault \w+ paused$/.test(l.message)).length, 1, 'the engine’s line, from the file');
  assert.match(readFileSync(join(root, 'logs', 'main.log'), 'utf8'), /\] warn ipc: putFile: refused a call from origin https:\/\/evil\.example\n/, 'in the OS log folder');
});

test('tray: the engine state in the icon and the status line; the menu acts', async (t) => {
  const { fake, root, autostartEntry, connected, call, quit } = launch();
  t.after(quit);
  await connected();
  const tray = fake.trays[0]!;
  await eventually(() => tray.image.endsWith('tray-online-light.png'), 'online icon');
  assert.match(tray.item('status').label!, /^6 of 6 vaults online · .* of .* donated used$/);
  assert.deepEqual(
    tray.menu.items.map((i) => i.label).filter(Boolean),
    [tray.item('status').label, 'Open SafeVault', 'Store files…', 'Pause vaulting', 'Start at login', 'Open logs folder', 'Quit SafeVault'],
  );

  fake.nativeTheme.shouldUseDarkColors = true;
  fake.nativeTheme.emit('updated');
  assert.ok(tray.image.endsWith('tray-online-dark.png'));

  tray.item('logs').click!();
  assert.deepEqual(fake.opened, [join(root, 'logs')]);

  tray.item('login').click!();
  assert.match(readFileSync(autostartEntry, 'utf8'), /^Exec="\/opt\/SafeVault\/safevault" --hidden$/m, 'Linux: an XDG autostart entry, started hidden');
  assert.equal(fake.loginItem.openAtLogin, false, 'Electron has no login item on Linux');
  assert.equal(tray.item('login').checked, true);
  tray.item('login').click!();
  assert.equal(existsSync(autostartEntry), false);
  assert.equal(tray.item('login').checked, false);
  await eventually(async () => (await call('getSettings', {})).result.startAtLogin === false && !existsSync(autostartEntry), 'saved off');

  tray.item('pause').click!();
  await eventually(() => tray.image.endsWith('tray-paused-dark.png'), 'paused icon');
  assert.equal(tray.item('pause').label, 'Resume vaulting');
  assert.match(tray.item('status').label!, /^Paused · /);
  tray.item('pause').click!();
  await eventually(() => tray.image.endsWith('tray-online-dark.png') && tray.item('pause').label === 'Pause vaulting', 'resumed');

  const file = writeRandomFile(root, 'from-tray.bin', 40_000);
  fake.dialogAnswers.push({ canceled: false, filePaths: [file] });
  tray.item('store').click!();
  await eventually(async () => (await call('listFiles', { as: 'me' })).result.some((f: { name: string }) => f.name === 'from-tray.bin'), 'stored from the tray');

  // The engine dies: the icon says so, and the supervisor brings it back (after the 1 s backoff).
  fake.children.at(-1)!.kill('SIGKILL');
  await eventually(() => tray.image.endsWith('tray-error-dark.png'), 'error icon');
  assert.match(tray.item('status').label!, /stopped/);
  assert.equal(tray.item('store').enabled, false);
  assert.ok(fake.windows[0]!.webContents.sent.some(([c, v]) => c === channels.connection && v === 'disconnected'), 'the window hears it too');
  await eventually(() => tray.image.endsWith('tray-online-dark.png'), 'back online', 20_000);
  assert.equal(fake.children.length, 2);
});

test('tray on macOS: the template images (tinted by the menu bar), the state in their shape, whatever the theme; the OS login item', async (t) => {
  const { fake, paths, autostartEntry, connected, quit } = launch({}, ['safevault'], 'darwin');
  t.after(quit);
  const tray = await eventually(() => fake.trays[0], 'a tray');
  tray.item('login').click!();
  assert.equal(fake.loginItem.openAtLogin, true, 'macOS: the OS login item');
  assert.equal(tray.item('login').checked, true);
  assert.equal(existsSync(autostartEntry), false, 'no XDG entry');
  assert.equal(tray.image, join(paths.trayIcons, 'tray-workingTemplate.png'), 'starting');
  await connected();
  await eventually(() => tray.image === join(paths.trayIcons, 'tray-onlineTemplate.png'), 'online template');
  fake.nativeTheme.shouldUseDarkColors = true;
  fake.nativeTheme.emit('updated');
  assert.equal(tray.image, join(paths.trayIcons, 'tray-onlineTemplate.png'), 'no dark variant: macOS tints the template');
  fake.children.at(-1)!.kill('SIGKILL');
  await eventually(() => tray.image === join(paths.trayIcons, 'tray-errorTemplate.png'), 'error template');
});

test('close hides to the tray (the notice once); Quit closes the engine cleanly', async () => {
  const { fake, root, connected, quit } = launch();
  await connected();
  const window = fake.windows[0]!;
  window.close();
  assert.equal(window.destroyed, false);
  assert.equal(window.visible, false);
  window.close();
  assert.deepEqual(fake.notifications.map((n) => n.title), ['SafeVault is still running']);
  assert.equal(JSON.parse(readFileSync(join(root, 'userData', 'desktop.json'), 'utf8')).trayNoticeShown, true);

  fake.trays[0]!.item('open').click!();
  assert.equal(window.visible, true);

  const engine = fake.children[0]!;
  fake.trays[0]!.item('quit').click!();
  assert.equal(fake.app.quitted, false, 'quit waits for the engine');
  await quit();
  assert.equal(engine.exitCode, 0, 'the engine closed by itself');
  assert.equal(fake.trays[0]!.destroyed, true);
  assert.equal(fake.children.length, 1, 'no restart while quitting');
});

for (const [desktop, options, why] of [
  ['no StatusNotifier host', { trayHost: false }, 'no StatusNotifierWatcher on the session bus'],
  ['a tray that fails', { trayWorks: false }, 'no status notifier host'],
] as const) {
  test(`without a tray (${desktop}), closing the window quits`, async () => {
    const { fake, connected } = launch(options);
    await connected();
    assert.equal(fake.trays.length, 0);
    assert.ok(fake.logLines.includes(`warn no tray on this desktop (${why}): closing the window quits`));
    fake.windows[0]!.close();
    assert.equal(fake.windows[0]!.destroyed, true);
    await eventually(() => fake.app.quitted, 'quit');
    assert.equal(fake.children[0]!.exitCode, 0);
  });
}

test('started hidden at login without a tray: the window shows, since nothing else could bring it', async (t) => {
  const { fake, connected, quit } = launch({ trayHost: false }, ['/opt/SafeVault/safevault', '--hidden']);
  t.after(quit);
  await connected();
  await eventually(() => fake.windows[0]?.visible, 'the window shown');
  assert.equal(fake.trays.length, 0);
});

test('started hidden at login with a tray: no window until asked', async (t) => {
  const { fake, connected, quit } = launch({}, ['/opt/SafeVault/safevault', '--hidden']);
  t.after(quit);
  await connected();
  assert.equal(fake.windows.length, 0);
  fake.trays[0]!.item('open').click!();
  await eventually(() => fake.windows[0]!.visible, 'shown');
});

test('single instance: a second launch hands its files over; a refused lock quits at once', async (t) => {
  const first = launch();
  t.after(first.quit);
  await first.connected();
  const photo = writeRandomFile(first.root, 'photo.jpg', 30_000);
  mkdirSync(join(first.root, 'a-folder'), { recursive: true });
  first.fake.windows[0]!.hide();
  first.fake.app.emit('second-instance', {}, ['/opt/SafeVault/safevault', '--no-sandbox', 'photo.jpg', 'a-folder', '/no/such/file'], first.root);
  assert.equal(first.fake.windows[0]!.visible, true, 'the window comes forward');
  await eventually(async () => (await first.call('listFiles', { as: 'me' })).result.length === 1, 'the handed-over file is stored');
  assert.equal((await first.call('listFiles', { as: 'me' })).result[0].name, 'photo.jpg');

  // macOS: a file dropped on the dock icon.
  const dropped = writeRandomFile(first.root, 'dropped.png', 20_000);
  let prevented = false;
  first.fake.app.emit('open-file', { preventDefault: () => (prevented = true) }, dropped);
  assert.ok(prevented);
  await eventually(async () => (await first.call('listFiles', { as: 'me' })).result.some((f: { name: string }) => f.name === 'dropped.png'), 'the dropped file is stored');

  const second = launch({ singleInstance: false }, ['/opt/SafeVault/safevault', photo]);
  assert.equal(second.started, false);
  assert.equal(second.fake.app.quitted, true);
  assert.equal(second.fake.windows.length, 0);
  assert.equal(second.fake.children.length, 0, 'no second engine');
});

test('files given at launch wait for the engine, then are stored as the account the window uses', async (t) => {
  const root = tempDir();
  const file = writeRandomFile(root, 'at-launch.txt', 10_000);
  const { connected, call, quit } = launch({}, ['/opt/SafeVault/safevault', file]);
  t.after(quit);
  await connected();
  await eventually(async () => (await call('listFiles', { as: 'me' })).result.length === 1, 'stored after start');
});

test('safeStorage seals the master key; the engine seals client secrets with it, nothing in clear beside the database', async () => {
  const { fake, dataDir, connected, call, quit } = launch();
  await connected();
  const file = writeRandomFile(dataDir, 'x.bin', 10_000);
  assert.equal((await call('putFile', { as: 'me', path: file })).ok, true);
  await quit();
  assert.equal(existsSync(join(dataDir, 'master.key')), false, 'no clear key file');
  const sealedKey = readFileSync(sealedKeyPath(dataDir));
  const key = Buffer.from((fake.electron.safeStorage.decryptString(sealedKey)), 'base64');
  assert.equal(key.length, 32);
  assert.equal(sealedKey.includes(key), false);
  const db = openDatabase(join(dataDir, 'app.sqlite'));
  const secret = db.prepare<[], Buffer>('SELECT secret FROM client').pluck().get()!;
  db.close();
  assert.ok(aesGcmSealer(key).open(secret).length > 0, 'the client secret opens only with the keychain key');
  assert.throws(() => aesGcmSealer(Buffer.alloc(32)).open(secret));
});

test('settings round-trip: the window’s changes take effect in the shell, notifications follow them, and they survive an engine restart', async (t) => {
  const { fake, root, autostartEntry, connected, call, quit } = launch();
  t.after(quit);
  await connected();
  assert.equal((await call('putFile', { as: 'me', path: writeRandomFile(root, 'first.bin', 20_000) })).ok, true);
  await eventually(() => fake.notifications.some((n) => n.title === 'File stored' && n.body === 'first.bin'), 'a store notification');

  const notifications = { storeFinished: false, storeFailed: true, vaultOffline: true, spaceNearlyFull: true };
  const changed = await call('setSettings', { startAtLogin: true, theme: 'dark', notifications });
  assert.equal(changed.ok, true, JSON.stringify(changed.error));
  assert.ok(existsSync(autostartEntry), 'start at login');
  assert.equal(fake.nativeTheme.themeSource, 'dark');
  assert.equal(fake.trays[0]!.item('login').checked, true);
  assert.deepEqual((await call('getSettings', {})).result.notifications, notifications);
  const refused = await call('setSettings', { theme: 'neon' });
  assert.equal(refused.error?.code, 'bad-request');
  assert.equal((await call('getSettings', {})).result.theme, 'dark', 'a refused change changes nothing');

  // Stores are muted now, failures are not: the failure's notice comes, the store's never does.
  assert.equal((await call('putFile', { as: 'me', path: writeRandomFile(root, 'quiet.bin', 20_000) })).ok, true);
  assert.equal((await call('putFile', { as: 'me', path: join(root, 'vanished.bin') })).ok, false);
  await eventually(() => fake.notifications.some((n) => n.title === 'A file could not be stored' && n.body.startsWith('vanished.bin: ')), 'a failure notification');
  assert.equal(fake.notifications.filter((n) => n.title.includes('stored') && n.body.includes('quiet.bin')).length, 0);

  // The autostart entry is removed behind the app's back; after an engine restart the saved settings apply again.
  rmSync(autostartEntry);
  fake.nativeTheme.themeSource = 'system';
  fake.children.at(-1)!.kill('SIGKILL');
  await eventually(() => fake.children.length === 2 && existsSync(autostartEntry) && fake.nativeTheme.themeSource === 'dark', 'settings re-applied from app.sqlite', 20_000);

  // The user's own vault dies (which vaults are news is unit-tested in units.test.ts).
  const mine = (await call('myVault', {})).result.id as string;
  assert.equal((await call('killVault', { id: mine })).ok, true);
  await eventually(() => fake.notifications.some((n) => n.title === 'Your vault is offline'), 'an offline notification');
});

test('the data folder moves: engine stopped, data copied and intact, setting saved, engine restarted there; bad targets refused', async (t) => {
  const { fake, root, dataDir, connected, call, quit } = launch();
  t.after(quit);
  await connected();
  const source = writeRandomFile(root, 'keep.bin', 300_000);
  const stored = await call('putFile', { as: 'me', path: source });
  assert.equal(stored.ok, true, JSON.stringify(stored.error));
  const move = (target: unknown) => fake.ipcMain.invoke(APP_ORIGIN, channels.moveDataFolder, target) as Promise<{ ok: boolean; result?: { dataDir: string }; error?: { code: string; message: string } }>;

  // Refused before anything stops: the engine never leaves, nothing is written anywhere.
  const full = join(root, 'full');
  mkdirSync(full);
  writeFileSync(join(full, 'mine.txt'), 'the user\'s own');
  const notEmpty = await move(full);
  assert.equal(notEmpty.error?.code, 'conflict');
  assert.match(notEmpty.error!.message, /full is not empty: choose an empty folder or a new one$/);
  const underAFile = await move(join(source, 'data'));
  assert.equal(underAFile.error?.code, 'bad-request');
  assert.match(underAFile.error!.message, /^cannot use .*keep\.bin\/data: ENOTDIR$/);
  assert.equal((await move('relative/folder')).error?.code, 'bad-request');
  assert.equal((await fake.ipcMain.invoke('https://evil.example', channels.moveDataFolder, join(root, 'x')) as { error: { code: string } }).error.code, 'unauthorized');
  assert.equal(fake.children.length, 1, 'the engine never stopped for a refused move');
  assert.deepEqual(readdirSync(full), ['mine.txt']);

  // The folder picker is the native dialog.
  fake.dialogAnswers.push({ canceled: false, filePaths: [join(root, 'picked')] });
  assert.deepEqual(await fake.ipcMain.invoke(APP_ORIGIN, channels.chooseFolder), { ok: true, result: join(root, 'picked') });

  const target = join(root, 'elsewhere', 'SafeVault data');
  const window = fake.windows[0]!;
  const sentBefore = window.webContents.sent.length;
  const moved = await move(target);
  assert.deepEqual(moved, { ok: true, result: { dataDir: target } });
  const pushed = window.webContents.sent.slice(sentBefore);
  const progress = pushed.filter(([c]) => c === channels.dataFolderMove).map(([, v]) => v as { copied: number; total: number; done: boolean });
  assert.ok(progress.length >= 2 && progress.at(-1)!.done && progress.at(-1)!.copied === progress.at(-1)!.total && progress.at(-1)!.total > 300_000, 'progress reached the window');
  assert.ok(pushed.some(([c, v]) => c === channels.connection && v === 'disconnected'), 'the window saw the engine stop');
  assert.deepEqual(JSON.parse(readFileSync(join(root, 'userData', 'desktop.json'), 'utf8')).dataDir, target, 'the setting is saved');
  assert.equal(existsSync(dataDir), false, 'the old folder is gone');

  await connected();
  await eventually(async () => (await call('status', {})).result?.dataDir === target, 'the engine runs in the new folder', 20_000);
  assert.equal(fake.children.length, 2, 'one restart, no more');
  assert.equal(fake.children[0]!.exitCode, 0, 'the engine was closed cleanly, not killed');
  assert.ok(existsSync(sealedKeyPath(target)), 'the sealed key moved with the data');
  const files = (await call('listFiles', { as: 'me' })).result as { id: string }[];
  assert.deepEqual(files.map((f) => f.id), [stored.result.id]);
  const out = join(root, 'back.bin');
  assert.equal((await call('getFile', { as: 'me', id: stored.result.id, out })).ok, true);
  assert.deepEqual(readFileSync(out), readFileSync(source), 'byte-identical from the moved folder');
  const mine = (await call('logs', {})).result as { message: string }[];
  assert.ok(mine.some((l) => l.message.startsWith('data folder moved to ')), 'the move is in the Logs view');
});

test('quit waits for a data folder move in flight, which ends saved; the engine is not started again', async () => {
  const { fake, root, connected, call } = launch();
  await connected();
  assert.equal((await call('putFile', { as: 'me', path: writeRandomFile(root, 'big.bin', 3_000_000) })).ok, true);
  const target = join(root, 'moved');
  const config = () => JSON.parse(readFileSync(join(root, 'userData', 'desktop.json'), 'utf8')) as { dataDir: string };
  // What the settings file says at the very moment the app is allowed to go.
  let atQuit: string | undefined;
  const quitNow = fake.app.quit.bind(fake.app);
  fake.app.quit = () => {
    quitNow();
    if (fake.app.quitted && atQuit === undefined) atQuit = config().dataDir;
  };
  const moving = fake.ipcMain.invoke(APP_ORIGIN, channels.moveDataFolder, target) as Promise<{ ok: boolean }>;
  await eventually(() => fake.trays[0]!.item('status').label === 'Moving the data folder…', 'the tray says so');
  fake.trays[0]!.item('quit').click!();
  assert.equal(fake.app.quitted, false, 'quit waits');
  assert.deepEqual(await moving, { ok: true, result: { dataDir: target } });
  await eventually(() => fake.app.quitted, 'the app quit', 20_000);
  assert.equal(atQuit, target, 'the move had ended and was saved before the app went');
  assert.equal(fake.children.length, 1, 'no engine started in the new folder just to be closed');
  assert.ok(existsSync(join(target, 'app.sqlite')));
  await assert.rejects(Promise.resolve(fake.ipcMain.invoke(APP_ORIGIN, channels.moveDataFolder, join(root, 'again'))).then((a) => {
    if (!(a as { ok: boolean }).ok) throw new Error((a as { error: { message: string } }).error.message);
  }), /quitting/);
});
