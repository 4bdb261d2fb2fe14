/** The token's way from the URL fragment into session storage. */
import { describe, expect, test } from 'vitest';
import { takeToken } from '../src/api/token.ts';

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
