/**
 * The installers' configuration, checked where electron-builder cannot run (no Electron dists here):
 * the schema electron-builder itself validates, targets, files, fuses, icons at their pixel sizes,
 * the build entries, and the launcher's choice.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { getConfig, validateConfiguration } from 'app-builder-lib/out/util/config/config.js';
import { DebugLogger } from 'builder-util';
import { loadConfigFromFile } from 'electron-vite';
import { chooseLaunch } from '../../electron/launch.ts';
import { TRAY_STATES } from '../../electron/main/tray.ts';

const root = join(import.meta.dirname, '../..');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));

/** Width and height from a PNG's IHDR chunk, after checking it is a PNG. */
function pngSize(path: string): [number, number] {
  const head = readFileSync(path).subarray(0, 24);
  assert.deepEqual([...head.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], `${path} is a PNG`);
  assert.equal(head.subarray(12, 16).toString('latin1'), 'IHDR');
  return [head.readUInt32BE(16), head.readUInt32BE(20)];
}

test('electron-builder accepts the config; targets, files, native module and fuses are as intended', async () => {
  const config = await getConfig(root, null, null);
  await validateConfiguration(config, new DebugLogger(false));
  const targets = (t: unknown) => (t as string[]).slice().sort();
  assert.deepEqual(targets(config.linux!.target), ['AppImage', 'deb']);
  assert.deepEqual(targets(config.win!.target), ['nsis']);
  assert.deepEqual(targets(config.mac!.target), ['dmg']);
  assert.equal(pkg.main, 'out/main/index.js');
  // electron-builder normalizes `files` into file sets.
  const files = (config.files as { filter: string[] }[]).flatMap((set) => set.filter);
  assert.ok(files.includes('out/**/*'), 'the built main, engine host, preload and renderer');
  assert.ok(files.includes('electron/main/resources/**/*'), 'the tray icons');
  assert.ok((config.asarUnpack as string[]).some((p) => p.includes('node_modules/better-sqlite3')));
  assert.deepEqual(config.electronFuses, {
    runAsNode: false,
    enableNodeOptionsEnvironmentVariable: false,
    enableNodeCliInspectArguments: false,
    enableCookieEncryption: true,
    onlyLoadAppFromAsar: true,
    enableEmbeddedAsarIntegrityValidation: true,
    grantFileProtocolExtraPrivileges: false,
  });
  await assert.rejects(validateConfiguration({ ...config, electronFuses: { ...config.electronFuses, runAsNod: false } as never }, new DebugLogger(false)), /electronFuses/);
});

test('icons exist at the pixel sizes each target and the tray need', async () => {
  const config = await getConfig(root, null, null);
  assert.deepEqual(pngSize(join(root, config.mac!.icon as string)), [1024, 1024], 'macOS and Windows convert from 1024 px');
  assert.equal(config.win!.icon, config.mac!.icon);
  for (const size of [16, 32, 64, 128, 256, 512]) {
    assert.deepEqual(pngSize(join(root, config.linux!.icon as string, `${size}x${size}.png`)), [size, size]);
  }
  for (const state of TRAY_STATES) {
    for (const panel of ['light', 'dark']) {
      assert.deepEqual(pngSize(join(root, `electron/main/resources/tray/tray-${state}-${panel}.png`)), [16, 16]);
      assert.deepEqual(pngSize(join(root, `electron/main/resources/tray/tray-${state}-${panel}@2x.png`)), [32, 32]);
    }
  }
  assert.ok(existsSync(join(root, 'build/icons/512x512.png')), 'the window icon main loads');
});

test('one electron-vite build: main with the engine host and chunk worker entries beside it, the preload as CommonJS for the sandbox', async () => {
  const loaded = await loadConfigFromFile({ command: 'build', mode: 'production' }, join(root, 'electron.vite.config.ts'));
  const config = loaded.config as { main: any; preload: any };
  const mainInput = config.main.build.rollupOptions.input;
  assert.deepEqual(Object.keys(mainInput).sort(), ['chunkWorker', 'engineHost', 'index']);
  assert.ok(mainInput.engineHost.endsWith(join('electron', 'host', 'engineHost.ts')));
  assert.ok(mainInput.chunkWorker.endsWith(join('electron', 'engine', 'client', 'chunkWorker.ts')));
  assert.equal(config.main.build.outDir, join(root, 'out/main'));
  assert.equal(config.preload.build.rollupOptions.output.format, 'cjs');
  assert.equal(config.preload.build.externalizeDeps, false, 'a sandboxed preload cannot require zod');
});

test('npm start: the desktop app with Electron, else one line and the browser; npm run desktop insists', () => {
  assert.deepEqual(chooseLaunch('/opt/electron/electron', false), { run: 'desktop' });
  assert.deepEqual(chooseLaunch('/opt/electron/electron', true), { run: 'desktop' });
  const browser = chooseLaunch(null, false);
  assert.equal(browser.run, 'browser');
  assert.match((browser as { note: string }).note, /^Electron's binary is not installed here .*: running the daemon with the window in your browser\.$/);
  assert.equal(chooseLaunch(null, true).run, 'refuse');
  assert.equal(pkg.scripts.start, 'node electron/launch.ts');
  assert.equal(pkg.scripts.desktop, 'node electron/launch.ts --desktop');
});
