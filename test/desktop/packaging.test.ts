/**
 * The installers' configuration, checked where electron-builder cannot run (no Electron dists here):
 * the schema electron-builder itself validates, targets, files, fuses, icons at their pixel sizes,
 * the build entries, and the launcher's choice.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { inflateSync } from 'node:zlib';
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

/** The RGBA pixels of an 8-bit RGBA, non-interlaced PNG (what Chromium's screenshots are), each row unfiltered. */
function pngRgba(path: string): { width: number; height: number; pixels: Buffer } {
  const file = readFileSync(path);
  const [width, height] = pngSize(path);
  assert.deepEqual([file[24], file[25], file[28]], [8, 6, 0], `${path}: 8-bit RGBA, not interlaced`);
  const chunks: Buffer[] = [];
  for (let at = 8; at < file.length; ) {
    const length = file.readUInt32BE(at);
    if (file.subarray(at + 4, at + 8).toString('latin1') === 'IDAT') chunks.push(file.subarray(at + 8, at + 8 + length));
    at += 12 + length;
  }
  const raw = inflateSync(Buffer.concat(chunks));
  const stride = width * 4;
  const pixels = Buffer.alloc(stride * height);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)]!;
    const line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    for (let x = 0; x < stride; x++) {
      const a = x >= 4 ? pixels[y * stride + x - 4]! : 0;
      const b = y > 0 ? pixels[(y - 1) * stride + x]! : 0;
      const c = x >= 4 && y > 0 ? pixels[(y - 1) * stride + x - 4]! : 0;
      const paeth = () => {
        const p = a + b - c;
        const [pa, pb, pc] = [Math.abs(p - a), Math.abs(p - b), Math.abs(p - c)];
        return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      };
      const predicted = [0, a, b, (a + b) >> 1, filter === 4 ? paeth() : 0][filter]!;
      pixels[y * stride + x] = (line[x]! + predicted) & 0xff;
    }
  }
  return { width, height, pixels };
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

test('"Open with": the OS offers SafeVault for any file, never as the default app', async () => {
  const config = await getConfig(root, null, null);
  // The deb's desktop entry gets MimeType=application/octet-stream; (electron-builder's Exec ends in %U).
  assert.deepEqual(config.linux!.mimeTypes, ['application/octet-stream']);
  assert.deepEqual((config.mac!.extendInfo as { CFBundleDocumentTypes: unknown }).CFBundleDocumentTypes, [
    { CFBundleTypeName: 'File', CFBundleTypeRole: 'Viewer', LSHandlerRank: 'Alternate', LSItemContentTypes: ['public.data'] },
  ]);
  // A fileAssociations entry would redefine its mimeType on Linux and register a bogus ".*" extension on Windows.
  assert.equal(config.fileAssociations, undefined);
});

test('the deb takes its maintainer and homepage from package.json (author, homepage)', async () => {
  const config = await getConfig(root, null, null);
  // electron-builder's FpmTarget uses linux/deb `maintainer` when set, else `author.name <author.email>`,
  // and package.json `homepage` as the package URL (without one the deb build fails).
  assert.equal(config.linux!.maintainer, undefined, 'no second maintainer in electron-builder.yml');
  assert.equal((config.deb as { maintainer?: string } | undefined)?.maintainer, undefined);
  assert.equal(typeof pkg.author, 'object', 'author as {name, email}');
  assert.ok(pkg.author.name?.length > 0, 'author.name');
  assert.match(pkg.author.email, /^[^@\s<>]+@[^@\s<>]+\.[a-z]+$/, 'author.email');
  assert.equal(new URL(pkg.homepage).protocol, 'https:');
});

/**
 * The bare packages a program loads at run time: its value imports (not `import type`), followed through
 * its relative imports. What main, the engine host and the installed CLI load is what the packaged app
 * and `npm install` must carry in `dependencies`.
 */
function runtimeImports(entries: string[]): Set<string> {
  const seen = new Set<string>();
  const packages = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    const source = readFileSync(file, 'utf8');
    const specifiers = [
      ...[...source.matchAll(/^\s*(?:import|export)\s+(?!type\s)[^'"]*?\sfrom\s+'([^']+)'/gm)].map((m) => m[1]!),
      ...[...source.matchAll(/^\s*import\s+'([^']+)'/gm)].map((m) => m[1]!),
      ...[...source.matchAll(/\bimport\('([^']+)'\)/g)].map((m) => m[1]!),
    ];
    for (const specifier of specifiers) {
      if (specifier.startsWith('.')) visit(resolve(dirname(file), specifier));
      else if (!specifier.startsWith('node:') && !builtinModules.includes(specifier)) {
        packages.add(specifier.startsWith('@') ? specifier.split('/').slice(0, 2).join('/') : specifier.split('/')[0]!);
      }
    }
  };
  entries.forEach((entry) => visit(join(root, entry)));
  return packages;
}

test('dependencies are what main, the engine host and the CLI load; the bundled renderer\'s libraries are dev-only', () => {
  const desktop = runtimeImports(['electron/main/index.ts', 'electron/host/engineHost.ts']);
  const cli = runtimeImports(['electron/daemon/bin.js']);
  // electron itself is provided by the binary, never installed into the app.
  desktop.delete('electron');
  const needed = new Set([...desktop, ...cli]);
  assert.ok(desktop.has('better-sqlite3') && desktop.has('zod') && desktop.has('electron-log'), `the scan sees main's imports: ${[...desktop]}`);
  assert.deepEqual(Object.keys(pkg.dependencies).sort(), [...needed].sort(), 'dependencies: exactly the runtime imports');
  for (const name of ['vue', 'pinia', 'vue-router', 'echarts', 'vue-echarts', '@tanstack/vue-virtual']) {
    assert.ok(pkg.devDependencies[name], `${name} (bundled into out/renderer by Vite) is a devDependency`);
  }
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

test('macOS tray icons are template images: named *Template, 16 and 32 px, black and alpha only, one shape per state', () => {
  const shapes = new Set<string>();
  for (const state of TRAY_STATES) {
    for (const [suffix, size] of [['', 16], ['@2x', 32]] as const) {
      const path = join(root, `electron/main/resources/tray/tray-${state}Template${suffix}.png`);
      const { width, height, pixels } = pngRgba(path);
      assert.deepEqual([width, height], [size, size], path);
      let drawn = 0;
      for (let i = 0; i < pixels.length; i += 4) {
        if (pixels[i + 3] === 0) continue;
        drawn++;
        assert.deepEqual([pixels[i], pixels[i + 1], pixels[i + 2]], [0, 0, 0], `${path}: pixel ${i / 4} is black (macOS tints by alpha)`);
      }
      assert.ok(drawn > size * 2, `${path} draws something`);
      if (suffix === '@2x') shapes.add(pixels.toString('base64'));
    }
  }
  assert.equal(shapes.size, TRAY_STATES.length, 'without colour, each state still looks different');
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
