/** The renderer's boundary: renderer/src imports nothing from electron/ but the API contract, and no Node built-in. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..');
const src = join(root, 'renderer', 'src');
const allFiles = (dir: string): string[] =>
  readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? allFiles(join(dir, e.name)) : [join(dir, e.name)]));

test('renderer/src imports from electron/ only electron/api/, never electron itself or a Node built-in', () => {
  const files = allFiles(src);
  assert.ok(files.length > 20, 'the renderer sources were found');
  const offending: string[] = [];
  for (const file of files) {
    for (const [, spec] of readFileSync(file, 'utf8').matchAll(/(?:\bfrom|\bimport)\s*\(?\s*['"]([^'"]+)['"]/g)) {
      const target = spec!.startsWith('.') ? relative(root, resolve(file, '..', spec!)) : spec!;
      if ((target.startsWith('electron/') && !target.startsWith('electron/api/')) || target === 'electron' || target.startsWith('node:')) {
        offending.push(`${relative(root, file)}: ${spec}`);
      }
    }
  }
  assert.deepEqual(offending, []);
});
