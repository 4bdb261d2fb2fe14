/** The desktop host's small pieces on their own: tray states, notifications, settings file, keychain key, argv. */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { test } from 'node:test';
import type ElectronLog from 'electron-log';
import electronLog from 'electron-log/node';
import type { Status } from '../../electron/api/contract.ts';
import type { RecordedEvent } from '../../electron/api/events.ts';
import { masterKeyPath } from '../../electron/engine/secretSealer.ts';
import { desktopConfig } from '../../electron/main/desktopConfig.ts';
import { createLogging } from '../../electron/main/logging.ts';
import { createLoginItem, xdgAutostart } from '../../electron/main/loginItem.ts';
import { desktopMasterKey, sealedKeyPath } from '../../electron/main/masterKey.ts';
import { createNotifier, notificationFor, spaceWatch } from '../../electron/main/notifications.ts';
import { filesFromArgv } from '../../electron/main/singleInstance.ts';
import { hasTrayHost } from '../../electron/main/trayHost.ts';
import { TRAY_STATES, trayIconPath, trayMenu, trayState, type TrayView } from '../../electron/main/tray.ts';
import { tempDir, writeRandomFile } from '../helpers.ts';
import { fakeElectron, fakeNotification, fakeSafeStorage } from './fakeElectron.ts';

const logger = () => {
  const lines: string[] = [];
  const at = (level: string) => (m: string) => void lines.push(`${level} ${m}`);
  return { lines, log: { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') } };
};
const status = (over: Partial<Status> = {}): Status => ({
  dataDir: '/d', vaults: 12, online: 12, clients: ['me'], paused: false, used: 1024 ** 3, donated: 4 * 1024 ** 3, opsInFlight: 0, ...over,
});

test('tray state per engine state, with its icon for light and dark panels', () => {
  const view = (v: Partial<TrayView>): TrayView => ({ connection: 'connected', status: status(), startAtLogin: false, ...v });
  assert.equal(trayState(view({})), 'online');
  assert.equal(trayState(view({ status: status({ opsInFlight: 2 }) })), 'working');
  assert.equal(trayState(view({ connection: 'connecting', status: undefined })), 'working');
  assert.equal(trayState(view({ status: status({ paused: true, opsInFlight: 1 }) })), 'paused');
  assert.equal(trayState(view({ connection: 'disconnected' })), 'error');
  assert.equal(trayState(view({ status: status({ online: 0 }) })), 'error');
  assert.deepEqual(TRAY_STATES, ['online', 'working', 'paused', 'error']);
  assert.equal(trayState(view({ moving: true })), 'working', 'a data folder move in flight');
  assert.equal(trayIconPath('/icons', 'paused', true, 'linux'), join('/icons', 'tray-paused-dark.png'));
  assert.equal(trayIconPath('/icons', 'error', false, 'win32'), join('/icons', 'tray-error-light.png'));
  // macOS: the template image, whatever the theme (the menu bar tints it).
  assert.equal(trayIconPath('/icons', 'paused', true, 'darwin'), join('/icons', 'tray-pausedTemplate.png'));
  assert.equal(trayIconPath('/icons', 'paused', false, 'darwin'), join('/icons', 'tray-pausedTemplate.png'));

  const acted: string[] = [];
  const actions = {
    open: () => acted.push('open'),
    storeFiles: () => acted.push('store'),
    setPaused: (p: boolean) => acted.push(`paused=${p}`),
    setStartAtLogin: (on: boolean) => acted.push(`login=${on}`),
    openLogs: () => acted.push('logs'),
    quit: () => acted.push('quit'),
  };
  const menu = trayMenu(view({ status: status({ paused: true }), startAtLogin: true }), actions);
  assert.equal(menu[0]!.label, 'Paused · 12 of 12 vaults online · 1.0 GiB of 4.0 GiB donated used');
  assert.equal(menu[0]!.enabled, false);
  for (const item of menu) (item.click as (() => void) | undefined)?.();
  assert.deepEqual(acted, ['open', 'store', 'paused=false', 'login=false', 'logs', 'quit']);
  assert.equal(menu.find((i) => i.id === 'pause')!.label, 'Resume vaulting');
});

test('notifications: one per kind per burst, off when the setting says so', () => {
  const { Notification, shown } = fakeNotification();
  const timers: (() => void)[] = [];
  const notifier = createNotifier({ Notification, onClick: () => {}, schedule: (run) => void timers.push(run) });
  for (const f of ['a.jpg', 'b.jpg', 'c.jpg', 'd.jpg']) notifier.notify('storeFinished', f);
  notifier.notify('storeFailed', 'e.jpg: no space');
  assert.equal(timers.length, 2, 'one timer per kind, not per event');
  assert.deepEqual(shown, []);
  timers.splice(0).forEach((run) => run());
  assert.deepEqual(shown, [
    { title: '4 files stored', body: 'a.jpg\nb.jpg\nc.jpg\nand 1 more' },
    { title: 'A file could not be stored', body: 'e.jpg: no space' },
  ]);

  notifier.setEnabled({ storeFinished: false, storeFailed: true, vaultOffline: true, spaceNearlyFull: true });
  notifier.notify('storeFinished', 'f.jpg');
  assert.equal(timers.length, 0);
  notifier.notify('storeFinished', 'g.jpg');
  notifier.tell('SafeVault is still running', 'in the tray');
  assert.deepEqual(shown.at(-1), { title: 'SafeVault is still running', body: 'in the tray' });
});

test('which events notify, and space nearly full once per crossing', () => {
  const at = { seq: 1, at: 0 };
  const ev = (e: object) => ({ ...at, ...e }) as RecordedEvent;
  assert.deepEqual(notificationFor(ev({ type: 'file.stored', client: 'me', file: 'a.jpg', id: 'x', size: 1 }), 'v1'), ['storeFinished', 'a.jpg']);
  assert.deepEqual(notificationFor(ev({ type: 'file.failed', client: 'me', file: 'a.jpg', direction: 'store', message: 'no space', cancelled: false }), 'v1'), ['storeFailed', 'a.jpg: no space']);
  assert.equal(notificationFor(ev({ type: 'file.failed', client: 'me', file: 'a.jpg', direction: 'store', message: 'cancelled', cancelled: true }), 'v1'), undefined);
  assert.equal(notificationFor(ev({ type: 'file.failed', client: 'me', file: 'a.jpg', direction: 'retrieve', message: 'x', cancelled: false }), 'v1'), undefined);
  assert.equal(notificationFor(ev({ type: 'vault.left', vault: 'v1', graceful: false }), 'v1')![0], 'vaultOffline');
  assert.equal(notificationFor(ev({ type: 'vault.left', vault: 'v1', graceful: true }), 'v1'), undefined, 'a pause is not news');
  assert.equal(notificationFor(ev({ type: 'vault.left', vault: 'v2', graceful: false }), 'v1'), undefined, 'only the user’s own vault');

  const warned: string[] = [];
  const watch = spaceWatch((d) => warned.push(d));
  for (const used of [50, 91, 95, 88, 80, 92]) watch(status({ used, donated: 100 }));
  assert.deepEqual(warned, ['91 % of the donated space is used.', '92 % of the donated space is used.']);
});

test('the desktop settings file: round-trip, bad contents fall back to defaults with a warning', () => {
  const userData = tempDir();
  const { lines, log } = logger();
  const config = desktopConfig(userData, log);
  assert.deepEqual(config.get(), { dataDir: join(userData, 'data'), trayNoticeShown: false });
  config.set({ dataDir: '/srv/safevault' });
  assert.deepEqual(desktopConfig(userData, log).get(), { dataDir: '/srv/safevault', trayNoticeShown: false });
  assert.throws(() => config.set({ dataDir: 'relative' }), /absolute/);
  assert.equal(desktopConfig(userData, log).get().dataDir, '/srv/safevault', 'a refused change changes nothing');
  writeFileSync(join(userData, 'desktop.json'), '{ not json');
  assert.equal(desktopConfig(userData, log).get().dataDir, join(userData, 'data'));
  writeFileSync(join(userData, 'desktop.json'), '{"dataDir": 7}');
  assert.equal(desktopConfig(userData, log).get().dataDir, join(userData, 'data'));
  assert.equal(lines.filter((l) => l.startsWith('warn')).length, 2);
});

test('the keychain key: made once, the daemon’s key adopted, none where the keychain is weak', () => {
  const { lines, log } = logger();
  const dataDir = tempDir();
  const key = desktopMasterKey(fakeSafeStorage(), dataDir, 'linux', log)!;
  assert.equal(Buffer.from(key, 'base64').length, 32);
  assert.equal(desktopMasterKey(fakeSafeStorage(), dataDir, 'linux', log), key, 'the same key on the next start');
  assert.equal(readFileSync(sealedKeyPath(dataDir)).includes(Buffer.from(key)), false);

  const daemonDir = tempDir();
  const daemonKey = Buffer.alloc(32, 9);
  writeFileSync(masterKeyPath(daemonDir), daemonKey, { mode: 0o600 });
  assert.equal(desktopMasterKey(fakeSafeStorage(), daemonDir, 'linux', log), daemonKey.toString('base64'));
  assert.equal(existsSync(masterKeyPath(daemonDir)), false, 'the clear key file is gone');

  const weakDir = tempDir();
  assert.equal(desktopMasterKey(fakeSafeStorage({ backend: 'basic_text' }), weakDir, 'linux', log), undefined);
  assert.equal(desktopMasterKey(fakeSafeStorage({ backend: 'basic_text', available: false }), weakDir, 'darwin', log), undefined);
  assert.equal(existsSync(sealedKeyPath(weakDir)), false);
  assert.ok(lines.some((l) => l.startsWith('warn no OS keychain')));
});

test('start at login on Linux: an XDG autostart entry that starts the AppImage (or the executable) hidden', () => {
  const dir = join(tempDir(), 'autostart');
  const { app } = fakeElectron(tempDir(), { platform: 'linux' }).electron;
  const login = createLoginItem(app, 'linux', { dir, exec: '/home/me/My Apps/Safe"Vault$1%.AppImage' });
  assert.equal(login.enabled, false);
  login.set(true);
  assert.equal(login.enabled, true);
  const entry = readFileSync(join(dir, 'safevault.desktop'), 'utf8');
  assert.match(entry, /^\[Desktop Entry\]\nType=Application\n/);
  // Quoted for the space, `"` and `$` escaped, then the escapes escaped (string rule), `%` doubled.
  assert.ok(entry.includes('\nExec="/home/me/My Apps/Safe\\\\"Vault\\\\$1%%.AppImage" --hidden\n'), entry);
  login.set(false);
  assert.equal(login.enabled, false);
  assert.equal(existsSync(join(dir, 'safevault.desktop')), false);
  login.set(false);
  assert.equal(app.getLoginItemSettings().openAtLogin, false, 'Electron’s login item untouched');

  assert.deepEqual(xdgAutostart({ XDG_CONFIG_HOME: '/cfg', APPIMAGE: '/apps/SafeVault.AppImage' }, '/home/me', '/tmp/.mount_x/safevault'), { dir: '/cfg/autostart', exec: '/apps/SafeVault.AppImage' });
  assert.deepEqual(xdgAutostart({ XDG_CONFIG_HOME: 'relative' }, '/home/me', '/opt/SafeVault/safevault'), { dir: '/home/me/.config/autostart', exec: '/opt/SafeVault/safevault' });
});

test('a tray host on Linux: asked of the session bus with gdbus; no answer is no tray, no gdbus assumes one', async () => {
  const dir = tempDir();
  /** A gdbus that records its arguments and answers `reply` (or hangs). */
  const gdbus = (name: string, reply: string) => {
    const path = join(dir, name);
    writeFileSync(path, `#!/bin/sh\necho "$@" > "${path}.args"\n${reply}\n`, { mode: 0o755 });
    return path;
  };
  const owned = gdbus('owned', 'echo "(true,)"');
  assert.equal(await hasTrayHost('linux', owned), true);
  assert.equal(
    readFileSync(`${owned}.args`, 'utf8').trim(),
    'call --session --dest org.freedesktop.DBus --object-path /org/freedesktop/DBus --method org.freedesktop.DBus.NameHasOwner org.kde.StatusNotifierWatcher',
  );
  assert.equal(await hasTrayHost('linux', gdbus('unowned', 'echo "(false,)"')), false, 'GNOME without the AppIndicator extension');
  assert.equal(await hasTrayHost('linux', gdbus('nobus', 'echo "Error connecting" >&2; exit 1')), false, 'no session bus');
  assert.equal(await hasTrayHost('linux', gdbus('hangs', 'exec sleep 30'), 100), false, 'no answer within the timeout');
  assert.equal(await hasTrayHost('linux', join(dir, 'missing')), true, 'no gdbus: assume a tray');
  const never = join(dir, 'never');
  assert.equal(await hasTrayHost('darwin', never), true);
  assert.equal(await hasTrayHost('win32', never), true);
});

test('files on a command line: regular files only, relative to the launch folder, or as file:// URLs', () => {
  const dir = tempDir();
  const a = writeRandomFile(dir, 'a.jpg', 10);
  mkdirSync(join(dir, 'folder'));
  assert.deepEqual(filesFromArgv(['/usr/bin/safevault', 'a.jpg', '--flag', 'folder', 'missing.txt', a], dir, 1), [a, a]);
  assert.deepEqual(filesFromArgv(['/usr/bin/safevault', pathToFileURL(a).href, pathToFileURL(join(dir, 'folder')).href], dir, 1), [a], 'a launcher’s file:// URL (%U)');
  assert.deepEqual(filesFromArgv(['electron', '.', 'a.jpg'], dir, 2), [a]);
});

test('logging: electron-log writes rotating files; the Logs view reads the tail of both, newest last, across a rotation', async () => {
  const dir = tempDir('safevault-logs-');
  const fileLog = electronLog.create({ logId: `units-${dir}` });
  fileLog.transports.console.level = false;
  // Small files, so a few hundred lines rotate: what is tested is the reading, not electron-log's size.
  const log = createLogging(fileLog as unknown as ElectronLog.MainLogger, dir, { maxBytes: 8 * 1024, tailBytes: 12 * 1024 });
  assert.deepEqual(await log.lines({}), [], 'no files yet: no lines');
  log.info('first line');
  const seen = await log.lines({});
  assert.deepEqual(seen.map((l) => [l.level, l.message]), [['info', 'first line']]);
  for (let i = 0; i < 300; i++) {
    if (i % 50 === 0) log.warn(`warning ${i}`);
    else log.engine('info', `line ${i} ${'x'.repeat(40)}`);
  }
  log.error('failed: Error: boom\n    at somewhere (file.ts:1:1)');
  assert.ok(existsSync(join(dir, 'main.old.log')), 'the full file was rotated');
  const current = readFileSync(join(dir, 'main.log'), 'utf8');
  assert.ok(current.length < 8 * 1024 + 200);

  const lines = await log.lines({ limit: 10_000 });
  const seqs = lines.map((l) => l.seq);
  assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b), 'oldest first, seqs growing across the two files');
  assert.equal(new Set(seqs).size, seqs.length);
  const numbers = lines.map((l) => /^engine: line (\d+) /.exec(l.message)?.[1]).filter(Boolean).map(Number);
  const rotated = readFileSync(join(dir, 'main.old.log'), 'utf8');
  assert.ok(rotated.includes(` ${lines[0]!.message}\n`) && current.includes(`${lines.at(-2)!.message}\n`), 'lines from the rotated file, then the current one');
  assert.ok(lines.some((l) => l.message.startsWith('engine: line 299 ')));
  assert.deepEqual(numbers, [...numbers].sort((a, b) => a - b), 'newest last');
  assert.ok(!lines.some((l) => l.message === 'first line'), 'only the tail: the oldest lines are past the bound');
  assert.equal(lines.at(-1)!.level, 'error');
  assert.equal(lines.at(-1)!.message, 'failed: Error: boom\n    at somewhere (file.ts:1:1)', 'a message’s later lines stay with it');

  assert.deepEqual((await log.lines({ level: 'warn', limit: 10_000 })).map((l) => l.level).sort(), ['error', ...lines.filter((l) => l.level === 'warn').map(() => 'warn')].sort());
  assert.deepEqual(await log.lines({ limit: 3 }), lines.slice(-3), 'without since: the newest, oldest first');
  // A poller that saw up to a line before the next rotation gets exactly what came after it.
  const last = lines.at(-1)!.seq;
  const rotatedBefore = readFileSync(join(dir, 'main.old.log'), 'utf8');
  // About 8.5 KiB: more than the current file has room for (so it rotates), less than the tail.
  for (let i = 0; i < 100; i++) log.info(`later ${i} ${'y'.repeat(40)}`);
  assert.notEqual(readFileSync(join(dir, 'main.old.log'), 'utf8'), rotatedBefore, 'rotated again meanwhile');
  const after = await log.lines({ since: last, limit: 10_000 });
  assert.deepEqual(after.map((l) => l.message), Array.from({ length: 100 }, (_, i) => `later ${i} ${'y'.repeat(40)}`));
  assert.deepEqual((await log.lines({ since: last, limit: 2 })).map((l) => l.message), [`later 0 ${'y'.repeat(40)}`, `later 1 ${'y'.repeat(40)}`]);
});
