/**
 * Electronegativity over the desktop sources: nothing above low that electronegativity.json does not
 * explain. Run as its own process, as CI's `npm run security` does (the scanner's offline network
 * errors must not land in the test runner).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { tempDir } from '../helpers.ts';

const SCRIPT = join(import.meta.dirname, '../../build/electronegativity.ts');
const runScan = (...args: string[]) =>
  promisify(execFile)(process.execPath, [SCRIPT, ...args]).then(
    ({ stdout }) => ({ code: 0, stdout }),
    (error: { code: number; stdout: string }) => ({ code: error.code, stdout: error.stdout }),
  );

test('the desktop sources have no unexplained finding above low', async () => {
  const { code, stdout } = await runScan();
  assert.equal(code, 0, stdout);
  assert.match(stdout, /^accepted OPEN_EXTERNAL_JS_CHECK MEDIUM main\/security\.ts:\d+$/m, 'the scanner really ran');
  assert.doesNotMatch(stdout, /REFUSED/);
});

test('the gate fails on an insecure window', async () => {
  const dir = tempDir();
  writeFileSync(
    join(dir, 'main.js'),
    `const { BrowserWindow } = require('electron');
     new BrowserWindow({ webPreferences: { nodeIntegration: true, contextIsolation: false, sandbox: false } }).loadURL('http://example.com');`,
  );
  const { code, stdout } = await runScan(dir);
  assert.equal(code, 1);
  assert.match(stdout, /^REFUSED +CONTEXT_ISOLATION_JS_CHECK HIGH main\.js:2$/m);
  assert.match(stdout, /^REFUSED +SANDBOX_JS_CHECK/m);
  assert.match(stdout, /^REFUSED +LIMIT_NAVIGATION_GLOBAL_CHECK/m);
});
