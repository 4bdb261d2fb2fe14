/**
 * Layering: renderer/src imports nothing from electron/ but the API contract, and no Node built-in;
 * the engine, its host and the contract never import Electron (they run in plain Node too).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..');
const src = join(root, 'renderer', 'src');
const allFiles = (dir: string): string[] =>
  readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? allFiles(join(dir, e.name)) : [join(dir, e.name)]));
/** Value, type and dynamic imports, re-exports and requires. */
const importsOf = (file: string): string[] =>
  [...readFileSync(file, 'utf8').matchAll(/(?:\bfrom|\bimport|\brequire)\s*\(?\s*['"]([^'"]+)['"]/g)].map(([, spec]) => spec!);

test('renderer/src imports from electron/ only electron/api/, never electron itself or a Node built-in', () => {
  const files = allFiles(src);
  assert.ok(files.length > 20, 'the renderer sources were found');
  const offending: string[] = [];
  for (const file of files) {
    for (const spec of importsOf(file)) {
      const target = spec.startsWith('.') ? relative(root, resolve(file, '..', spec)) : spec;
      if ((target.startsWith('electron/') && !target.startsWith('electron/api/')) || target === 'electron' || target.startsWith('node:')) {
        offending.push(`${relative(root, file)}: ${spec}`);
      }
    }
  }
  assert.deepEqual(offending, []);
});

test('electron/engine, electron/host and electron/api import no Electron, not even through what they import', () => {
  const seen = new Set<string>();
  const offending: string[] = [];
  const visit = (file: string) => {
    if (seen.has(file) || !/\.[cm]?[jt]s$/.test(file)) return;
    seen.add(file);
    for (const spec of importsOf(file)) {
      if (spec === 'electron' || spec.startsWith('electron/')) offending.push(`${relative(root, file)}: ${spec}`);
      const local = spec.startsWith('.') ? resolve(file, '..', spec) : undefined;
      if (local && existsSync(local)) visit(local);
    }
  };
  const roots = ['engine', 'host', 'api'].flatMap((dir) => allFiles(join(root, 'electron', dir)));
  assert.ok(roots.length > 30, 'the engine sources were found');
  roots.forEach(visit);
  assert.deepEqual(offending, []);
});
