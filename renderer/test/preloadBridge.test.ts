/** The desktop bridge over a preload-shaped object: files go by path, retrieves ask where to save first. */
import { describe, expect, test } from 'vitest';
import type { DesktopBridge } from '../../electron/api/contract.ts';
import { preloadBridge } from '../src/api/preloadBridge.ts';
import { fakeClient } from './fakeClient.ts';

const desktop = (savePath: string | null) => {
  const fake = fakeClient();
  const moves: string[] = [];
  const bridge: DesktopBridge = {
    ...fake,
    getPathForFile: (file) => `/home/user/${(file as File).name}`,
    chooseSavePath: async () => savePath,
    chooseFolder: async () => '/media/big',
    moveDataFolder: async (target) => (moves.push(target), { dataDir: target }),
    onDataFolderMove: () => () => {},
  };
  return { fake, moves, client: preloadBridge(bridge) };
};

describe('preload bridge', () => {
  test('storeFile hands the engine the dropped file\'s path, its name and the operation id', async () => {
    const { fake, client } = desktop(null);
    const sent: number[] = [];
    const op = 'ab'.repeat(16);
    const stored = await client.storeFile(new File(['hello'], 'notes.txt'), { as: 'me', op }, (n) => sent.push(n));
    expect(fake.calls.filter((c) => c.method === 'putFile')).toEqual([{ method: 'putFile', params: { as: 'me', path: '/home/user/notes.txt', name: 'notes.txt', op } }]);
    expect(stored.name).toBe('notes.txt');
    expect(sent).toEqual([5]);
  });

  test('retrieveFile saves where the user chose, and a cancelled dialog fetches nothing', async () => {
    const cancelled = desktop(null);
    expect(await cancelled.client.retrieveFile({ as: 'me', id: 'a'.repeat(32), name: 'x.txt' })).toEqual({ saved: false });
    expect(cancelled.fake.calls.filter((c) => c.method === 'getFile')).toEqual([]);

    const chosen = desktop('/home/user/Downloads/x.txt');
    expect(await chosen.client.retrieveFile({ as: 'me', id: 'a'.repeat(32), name: 'x.txt' })).toEqual({ saved: true });
    expect(chosen.fake.calls.filter((c) => c.method === 'getFile').map((c) => c.params)).toEqual([
      expect.objectContaining({ as: 'me', id: 'a'.repeat(32), out: '/home/user/Downloads/x.txt', op: expect.stringMatching(/^[0-9a-f]{32}$/) }),
    ]);
  });

  test('the desktop can move its data folder: the picker and the move go to the preload', async () => {
    const { client, moves } = desktop(null);
    expect(await client.dataFolder!.choose()).toBe('/media/big');
    expect(await client.dataFolder!.move('/media/big')).toEqual({ dataDir: '/media/big' });
    expect(moves).toEqual(['/media/big']);
  });
});
