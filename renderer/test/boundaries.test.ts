/** The renderer's boundaries: it imports nothing from electron/ but the API contract, and a page without a token calls nothing. */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { describe, expect, test } from 'vitest';
import { takeToken } from '../src/api/token.ts';

const src = resolve(__dirname, '../src');
const allFiles = (dir: string): string[] => readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? allFiles(join(dir, e.name)) : [join(dir, e.name)]));

describe('layering', () => {
  test('renderer/src imports from electron/ only electron/api/, and never a Node built-in', () => {
    const offending: string[] = [];
    for (const file of allFiles(src)) {
      for (const [, spec] of readFileSync(file, 'utf8').matchAll(/(?:from|import)\s*\(?\s*['"]([^'"]+)['"]/g)) {
        const target = spec!.startsWith('.') ? relative(resolve(src, '../..'), resolve(file, '..', spec!)) : spec!;
        if ((target.startsWith('electron/') && !target.startsWith('electron/api/')) || target === 'electron' || target.startsWith('node:')) {
          offending.push(`${relative(src, file)}: ${spec}`);
        }
      }
    }
    expect(offending).toEqual([]);
  });
});

describe('token', () => {
  const fakeHistory = () => {
    const replaced: string[] = [];
    return { replaced, history: { state: null, replaceState: (_s: unknown, _t: string, url?: string | URL | null) => void replaced.push(String(url)) } };
  };

  test('the fragment token moves into session storage and out of the address', () => {
    sessionStorage.clear();
    const { replaced, history } = fakeHistory();
    expect(takeToken({ hash: `#token=${'ab'.repeat(32)}`, pathname: '/', search: '' }, sessionStorage, history)).toBe('ab'.repeat(32));
    expect(replaced).toEqual(['/']);
    expect(sessionStorage.getItem('safevault.token')).toBe('ab'.repeat(32));
    // A reload (no fragment any more) still has it, for this tab only.
    expect(takeToken({ hash: '', pathname: '/', search: '' }, sessionStorage, fakeHistory().history)).toBe('ab'.repeat(32));
  });

  test('no fragment and nothing stored: no token', () => {
    sessionStorage.clear();
    expect(takeToken({ hash: '#/files', pathname: '/', search: '' }, sessionStorage, fakeHistory().history)).toBeNull();
  });
});
