/** Components mounted with Pinia's testing helpers over the fake client. */
import { afterEach, beforeEach, describe, expect, onTestFinished, test, vi } from 'vitest';
import { enableAutoUnmount, flushPromises, mount } from '@vue/test-utils';
import { createTestingPinia } from '@pinia/testing';
import { setActivePinia } from 'pinia';
import { createMemoryHistory, createRouter } from 'vue-router';
import App from '../src/App.vue';
import FileList from '../src/components/FileList.vue';
import FilesView from '../src/views/FilesView.vue';
import StatusBar from '../src/components/StatusBar.vue';
import SettingsView from '../src/views/SettingsView.vue';
import type { DataFolderMove } from '../../electron/api/contract.ts';
import { SafeVaultError } from '../../electron/api/errors.ts';
import { Listeners } from '../src/api/client.ts';
import { routes } from '../src/router.ts';
import { startSession } from '../src/stores/session.ts';
import { useFiles } from '../src/stores/files.ts';
import { useNetwork } from '../src/stores/network.ts';
import { useNotices } from '../src/stores/notices.ts';
import { fakeClient, type FakeClient } from './fakeClient.ts';

enableAutoUnmount(afterEach);

let client: FakeClient;
let pinia: ReturnType<typeof createTestingPinia>;

// happy-dom lays nothing out: give the list's scroller a window's height so the virtualizer has rows to show.
beforeEach(() => {
  vi.spyOn(HTMLElement.prototype, 'clientHeight', 'get').mockReturnValue(600);
  vi.spyOn(HTMLElement.prototype, 'clientWidth', 'get').mockReturnValue(1000);
  return () => vi.restoreAllMocks();
});

beforeEach(() => {
  localStorage.clear();
  pinia = createTestingPinia({ stubActions: false, createSpy: vi.fn });
  setActivePinia(pinia);
  client = fakeClient();
  const stop = startSession(client);
  client.connect();
  return stop;
});

const manyFiles = (n: number) =>
  Array.from({ length: n }, (_, i) => ({ id: i.toString(16).padStart(32, '0'), name: `file-${String(i).padStart(5, '0')}.txt`, size: i, chunks: ['c'], storedAt: i }));

describe('FileList', () => {
  test('10,000 files put only a window of rows in the DOM, and health is asked for those rows only', async () => {
    useFiles().files = manyFiles(10_000);
    const wrapper = mount(FileList, { props: { selected: null }, global: { plugins: [pinia] } });
    await flushPromises();
    const rows = wrapper.findAll('[data-test="file-row"]');
    expect(rows.length).toBeGreaterThan(5);
    expect(rows.length).toBeLessThan(60);
    await vi.waitFor(() => expect(client.calls.filter((c) => c.method === 'fileHealth')).toHaveLength(1));
    const asked = (client.calls.find((c) => c.method === 'fileHealth')!.params as { ids: string[] }).ids;
    expect(asked).toHaveLength(rows.length);
    await vi.waitFor(() => expect(wrapper.find('[data-test="health"]').text()).toBe('Healthy'));
  });

  test('clicking a column header sorts by it', async () => {
    useFiles().files = manyFiles(3);
    const wrapper = mount(FileList, { props: { selected: null }, global: { plugins: [pinia] } });
    await wrapper.findAll('.sort')[0]!.trigger('click');
    expect(wrapper.findAll('[data-test="file-row"]').map((r) => r.attributes('data-name'))).toEqual(['file-00000.txt', 'file-00001.txt', 'file-00002.txt']);
    expect(wrapper.find('[role="columnheader"]').attributes('aria-sort')).toBe('ascending');
  });
});

describe('FilesView', () => {
  test('delete asks first: cancel changes nothing, confirm removes the file', async () => {
    client.files.set('me', manyFiles(2));
    await useFiles().load();
    const wrapper = mount(FilesView, { global: { plugins: [pinia] }, attachTo: document.body });
    await flushPromises();
    await wrapper.find('[data-test="delete"]').trigger('click');
    await flushPromises();
    expect(wrapper.find('dialog').attributes('open')).toBeDefined();
    await wrapper.findAll('dialog button').find((b) => b.text() === 'Cancel')!.trigger('click');
    await flushPromises();
    expect(client.calls.filter((c) => c.method === 'removeFile')).toEqual([]);
    await wrapper.find('[data-test="delete"]').trigger('click');
    await wrapper.find('[data-test="confirm"]').trigger('click');
    await vi.waitFor(() => expect(useFiles().files).toHaveLength(1));
    expect(client.calls.filter((c) => c.method === 'removeFile')).toHaveLength(1);
  });
});

describe('App', () => {
  const mountApp = async () => {
    const router = createRouter({ history: createMemoryHistory(), routes });
    await router.push('/accounts');
    const wrapper = mount(App, { global: { plugins: [pinia, router] } });
    await flushPromises();
    return { wrapper, router };
  };

  /** A drop event as the browser makes it: items with their kind, entries and files. */
  const drop = (items: { file: File; directory?: boolean }[]) => {
    const event = new Event('drop', { bubbles: true, cancelable: true }) as DragEvent;
    Object.defineProperty(event, 'dataTransfer', {
      value: {
        types: ['Files'],
        items: items.map(({ file, directory }) => ({ kind: 'file', getAsFile: () => file, webkitGetAsEntry: () => ({ isDirectory: !!directory }) })),
        files: items.map((i) => i.file),
      },
    });
    return event;
  };

  test('a folder dropped anywhere is refused with a message; a file dropped anywhere is stored and shown in Files', async () => {
    const { wrapper, router } = await mountApp();
    wrapper.find('.shell').element.dispatchEvent(drop([{ file: new File([], 'holiday', { type: '' }), directory: true }]));
    expect(useNotices().list.at(-1)?.text).toBe('holiday is a folder: drop the files inside it instead');
    expect(client.calls.filter((c) => c.method === 'storeFile')).toEqual([]);
    wrapper.find('.shell').element.dispatchEvent(drop([{ file: new File(['hi'], 'notes.txt') }]));
    await vi.waitFor(() => expect(useFiles().files.map((f) => f.name)).toEqual(['notes.txt']));
    await vi.waitFor(() => expect(router.currentRoute.value.name).toBe('files'));
  });

  test('the status bar says when the daemon is away', async () => {
    const wrapper = mount(StatusBar, { global: { plugins: [pinia] } });
    client.connect('disconnected');
    await flushPromises();
    expect(wrapper.find('[data-test="connection"]').text()).toContain('reconnecting');
  });
});

describe('SettingsView: the data folder', () => {
  /** The client as the desktop's: it can move its data folder; the test answers the picker and finishes the move. */
  const desktop = (picked: string | null) => {
    const progress = new Listeners<DataFolderMove>();
    const moves: string[] = [];
    let settle: { resolve(v: { dataDir: string }): void; reject(e: Error): void } | undefined;
    client.dataFolder = {
      choose: async () => picked,
      move: (target) => {
        moves.push(target);
        return new Promise((resolve, reject) => (settle = { resolve, reject }));
      },
      onProgress: (listener) => progress.add(listener),
    };
    // A session of its own, started after the client could move, so it listens for progress.
    onTestFinished(startSession(client));
    return { progress, moves, finish: () => settle!.resolve({ dataDir: picked! }), fail: (e: Error) => settle!.reject(e) };
  };
  const mountSettings = async () => {
    const wrapper = mount(SettingsView, { global: { plugins: [pinia] } });
    await vi.waitFor(() => expect(useNetwork().status).not.toBeNull());
    await flushPromises();
    return wrapper;
  };

  test('in a browser it shows where the daemon keeps its data and how to choose, with no move button', async () => {
    const wrapper = await mountSettings();
    expect(wrapper.find('[data-test="data-dir"]').text()).toBe(useNetwork().status!.dataDir);
    expect(wrapper.find('[data-test="move-data"]').exists()).toBe(false);
    expect(wrapper.text()).toContain('safevault daemon --data-dir DIR');
  });

  test('the desktop moves it: busy from the click, progress as it copies, then the new folder and a notice', async () => {
    const { progress, moves, finish } = desktop('/media/big/SafeVault');
    const wrapper = await mountSettings();
    const button = wrapper.find('[data-test="move-data"]');
    await button.trigger('click');
    await flushPromises();
    expect(moves).toEqual(['/media/big/SafeVault']);
    expect(button.attributes('disabled')).toBeDefined();
    expect(wrapper.find('[data-test="data-move"]').text()).toBe('Stopping the engine…');
    progress.emit({ target: '/media/big/SafeVault', copied: 3 * 1024 * 1024, total: 12 * 1024 * 1024, done: false });
    await flushPromises();
    expect(wrapper.find('[data-test="data-move"]').text()).toBe('Moving: 3.0 MiB of 12 MiB copied and checked');
    expect(wrapper.find('progress').attributes('value')).toBe(String(3 * 1024 * 1024));
    expect(wrapper.find('[data-test="data-dir"]').text()).toBe('/media/big/SafeVault');
    finish();
    await flushPromises();
    expect(wrapper.find('[data-test="data-move"]').exists()).toBe(false);
    expect(button.attributes('disabled')).toBeUndefined();
    expect(useNotices().list.at(-1)?.text).toBe('Data folder moved to /media/big/SafeVault');
  });

  test('a refused move says why and leaves the button usable; a cancelled picker moves nothing', async () => {
    const { fail } = desktop('/home/me/Photos');
    const wrapper = await mountSettings();
    await wrapper.find('[data-test="move-data"]').trigger('click');
    await flushPromises();
    fail(new SafeVaultError('conflict', '/home/me/Photos is not empty: choose an empty folder or a new one'));
    await flushPromises();
    expect(wrapper.find('[data-test="data-problem"]').text()).toBe('/home/me/Photos is not empty: choose an empty folder or a new one');
    expect(wrapper.find('[data-test="move-data"]').attributes('disabled')).toBeUndefined();

    const cancelled = desktop(null);
    await wrapper.find('[data-test="move-data"]').trigger('click');
    await flushPromises();
    expect(cancelled.moves).toEqual([]);
    expect(wrapper.find('[data-test="data-problem"]').text()).toBe('');
  });
});
