/**
 * The preload for real, with `electron` resolved to the fake's renderer side: the bridge it exposes is
 * exactly the DesktopBridge, and its calls go through main's IPC checks to the real engine host.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { methods, type ConnectionState } from '../../electron/api/contract.ts';
import type { RecordedEvent } from '../../electron/api/events.ts';
import { startDesktop } from '../../electron/main/desktop.ts';
import { eventually, tempDir, writeRandomFile } from '../helpers.ts';
import { fakeElectron, loadPreload } from './fakeElectron.ts';

test('the preload exposes exactly the DesktopBridge, wired through main to the engine', async (t) => {
  const root = tempDir('safevault-preload-');
  const fake = fakeElectron(root);
  const paths = { rendererDir: root, preload: '', engineHost: join(import.meta.dirname, '../../electron/host/engineHost.ts'), trayIcons: root, windowIcon: '' };
  assert.equal(startDesktop(fake.electron, fake.fileLog, paths, { argv: ['safevault'], cwd: root, platform: 'linux', hasTray: async () => true, autostart: { dir: join(root, 'autostart'), exec: 'safevault' }, vaults: 6 }), true);
  t.after(async () => {
    fake.app.quit();
    await eventually(() => fake.app.quitted, 'quit', 20_000);
  });

  const bridge = await loadPreload(fake);
  assert.deepEqual(Object.keys(bridge).sort(), [...Object.keys(methods), 'onEvent', 'onConnection', 'getPathForFile', 'chooseSavePath', 'chooseFolder', 'moveDataFolder', 'onDataFolderMove'].sort());

  const states: ConnectionState[] = [];
  bridge.onConnection((s) => states.push(s));
  await eventually(() => states.includes('connected'), 'connected', 20_000);

  const events: RecordedEvent[] = [];
  const unsubscribe = bridge.onEvent((e) => events.push(e));
  const file = writeRandomFile(root, 'bridged.bin', 60_000);
  const stored = await bridge.putFile({ as: 'me', path: bridge.getPathForFile({ path: file }) });
  assert.equal(stored.name, 'bridged.bin');
  await eventually(() => events.some((e) => e.type === 'chunk.stored'), 'events reach the page');
  unsubscribe();
  const seen = events.length;
  await bridge.putFile({ as: 'me', path: writeRandomFile(root, 'quiet.bin', 60_000) });
  assert.equal(events.length, seen, 'no events after unsubscribing');

  // A plain {code, message} (contextBridge would strip an Error down to its message).
  const refusal = await bridge.listFiles({ as: '../x' }).catch((e: unknown) => e);
  assert.deepEqual(Object.keys(refusal as object).sort(), ['code', 'message', 'name']);
  assert.equal((refusal as { code: string }).code, 'bad-request');
  assert.match((refusal as { message: string }).message, /^listFiles: as: a client name/);
  fake.dialogAnswers.push({ canceled: false, filePath: '/home/me/bridged.bin' });
  assert.equal(await bridge.chooseSavePath('bridged.bin'), '/home/me/bridged.bin');
  fake.dialogAnswers.push({ canceled: false, filePaths: ['/media/big'] });
  assert.equal(await bridge.chooseFolder(), '/media/big');
  const refused = await bridge.moveDataFolder('not/absolute').catch((e: unknown) => e);
  assert.deepEqual(refused, { name: 'SafeVaultError', code: 'bad-request', message: 'moveDataFolder: paths must be absolute' });
});
