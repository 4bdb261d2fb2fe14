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
import NetworkView from '../src/views/NetworkView.vue';
import SettingsView from '../src/views/SettingsView.vue';
import type { DataFolderMove } from '../../electron/api/contract.ts';
import { SafeVaultError } from '../../electron/api/errors.ts';
import { Listeners } from '../src/api/client.ts';
import { routes } from '../src/router.ts';
import { startSession } from '../src/stores/session.ts';
import { useFiles } from '../src/stores/files.ts';
import { useNetwork } from '../src/stores/network.ts';
import { useNotices } from '../src/stores/notices.ts';
import { useSettings } from '../src/stores/settings.ts';
import { fakeClient, type FakeClient } from './fakeClient.ts';

enableAutoUnmount(afterEach);

let client: FakeClient;
/**
 * This test's stores. The tests name it when they look at a store: an earlier test's component
 * that wakes late (an async step finishing) makes its own pinia the active one again.
 */
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
    useFiles(pinia).files = manyFiles(10_000);
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
    useFiles(pinia).files = manyFiles(3);
    const wrapper = mount(FileList, { props: { selected: null }, global: { plugins: [pinia] } });
    await wrapper.findAll('.sort')[0]!.trigger('click');
    expect(wrapper.findAll('[data-test="file-row"]').map((r) => r.attributes('data-name'))).toEqual(['file-00000.txt', 'file-00001.txt', 'file-00002.txt']);
    expect(wrapper.find('[role="columnheader"]').attributes('aria-sort')).toBe('ascending');
  });
});

describe('FilesView', () => {
  test('delete asks first: cancel changes nothing, confirm removes the file', async () => {
    client.files.set('me', manyFiles(2));
    await useFiles(pinia).load();
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
    await vi.waitFor(() => expect(useFiles(pinia).files).toHaveLength(1));
    expect(client.calls.filter((c) => c.method === 'removeFile')).toHaveLength(1);
    // The view says so once the removal is done: waited for here, so none of its work outlives the test.
    await vi.waitFor(() => expect(useNotices(pinia).list.at(-1)?.text).toMatch(/^file-0000[01]\.txt deleted$/));
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
    expect(useNotices(pinia).list.at(-1)?.text).toBe('holiday is a folder: drop the files inside it instead');
    expect(client.calls.filter((c) => c.method === 'storeFile')).toEqual([]);
    wrapper.find('.shell').element.dispatchEvent(drop([{ file: new File(['hi'], 'notes.txt') }]));
    await vi.waitFor(() => expect(useFiles(pinia).files.map((f) => f.name)).toEqual(['notes.txt']));
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
    // A session of its own, started after the client could move, so it listens for progress (on this test's stores).
    setActivePinia(pinia);
    onTestFinished(startSession(client));
    return { progress, moves, finish: () => settle!.resolve({ dataDir: picked! }), fail: (e: Error) => settle!.reject(e) };
  };
  const mountSettings = async () => {
    const wrapper = mount(SettingsView, { global: { plugins: [pinia] } });
    await vi.waitFor(() => expect(useNetwork(pinia).status).not.toBeNull());
    await flushPromises();
    return wrapper;
  };

  test('in a browser it shows where the daemon keeps its data and how to choose, with no move button', async () => {
    const wrapper = await mountSettings();
    expect(wrapper.find('[data-test="data-dir"]').text()).toBe(useNetwork(pinia).status!.dataDir);
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
    // Among the notices shown: a late one from an earlier test's view can land after it.
    expect(useNotices(pinia).list.map((n) => n.text)).toContain('Data folder moved to /media/big/SafeVault');
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

describe('SettingsView: the network', () => {
  const mountSettings = async () => {
    await useSettings(pinia).load();
    const wrapper = mount(SettingsView, { global: { plugins: [pinia] } });
    await flushPromises();
    return wrapper;
  };
  const NODE = '/ip4/192.168.1.10/tcp/4001/p2p/12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN';
  const saved = () => client.calls.filter((c) => c.method === 'setSettings').map((c) => c.params);

  test('join a network: listen address, bootstrap vaults and mDNS applied together, once, with the restart said', async () => {
    const wrapper = await mountSettings();
    expect(wrapper.find('[data-test="listen"]').exists()).toBe(false);
    expect(wrapper.find('[data-test="apply-network"]').attributes('disabled')).toBeDefined();
    await wrapper.find('[data-test="mode-network"]').setValue(true);
    await wrapper.find('[data-test="listen"]').setValue(' /ip4/0.0.0.0/tcp/4002 ');
    await wrapper.find('[data-test="bootstrap"]').setValue(`${NODE}\n\n  /ip4/10.0.0.7/tcp/4001  \n`);
    await wrapper.find('[data-test="mdns"]').setValue(false);
    expect(saved()).toEqual([]);
    await wrapper.find('[data-test="network-form"]').trigger('submit');
    await vi.waitFor(() => expect(useSettings(pinia).settings).toMatchObject({ mode: 'network', listen: '/ip4/0.0.0.0/tcp/4002', mdns: false }));
    expect(saved()).toEqual([{ mode: 'network', listen: '/ip4/0.0.0.0/tcp/4002', bootstrap: [NODE, '/ip4/10.0.0.7/tcp/4001'], mdns: false }]);
    expect(wrapper.find('[data-test="network-problem"]').text()).toBe('');
    expect(useNotices(pinia).list.at(-1)?.text).toBe('Network restarted: joining through the bootstrap vaults');
    expect(wrapper.find('[data-test="apply-network"]').attributes('disabled')).toBeDefined();
  });

  test('a malformed address is refused before anything is sent; the engine’s refusal is shown as it said it', async () => {
    const wrapper = await mountSettings();
    await wrapper.find('[data-test="mode-network"]').setValue(true);
    await wrapper.find('[data-test="bootstrap"]').setValue('192.168.1.10:4001');
    await wrapper.find('[data-test="network-form"]').trigger('submit');
    await flushPromises();
    expect(wrapper.find('[data-test="network-problem"]').text()).toBe('"192.168.1.10:4001" is not a multiaddr with a TCP port (like /ip4/192.168.1.10/tcp/4001/p2p/12D3KooW…)');
    expect(saved()).toEqual([]);

    await wrapper.find('[data-test="bootstrap"]').setValue('/dns4/vaults.example/tcp/4001');
    await wrapper.find('[data-test="network-form"]').trigger('submit');
    await flushPromises();
    expect(saved()).toHaveLength(1);
    expect(wrapper.find('[data-test="network-problem"]').text()).toBe('bootstrap address "/dns4/vaults.example/tcp/4001" is not a multiaddr (fake)');
    expect(useSettings(pinia).settings?.mode).toBe('local');
  });
});

describe('NetworkView: peers on a joined network', () => {
  test('a local network shows its vault controls and no peers; a joined one its peers with address, latency and connection time, and no controls', async () => {
    const network = useNetwork(pinia);
    await network.load();
    const local = mount(NetworkView, { global: { plugins: [pinia], stubs: { TimeChart: true, XorRing: true } } });
    await vi.waitFor(() => expect(client.calls.some((c) => c.method === 'peers')).toBe(true));
    await flushPromises();
    expect(local.find('[data-test="peers"]').exists()).toBe(false);
    expect(local.find('[data-test="add-vault"]').exists()).toBe(true);
    expect(local.findAll('[data-test="stop"]').length).toBe(6);
    local.unmount();

    const connectedSince = Date.now() - 125_000;
    client.networkPeers = {
      mode: 'network',
      addresses: ['/ip4/192.168.1.20/tcp/4001/p2p/12D3KooWOwn'],
      peers: [
        { vault: 'ab'.repeat(32), peer: '12D3KooWPeerA', addresses: ['/ip4/192.168.1.10/tcp/4001'], online: true, latencyMs: 3, connectedSince },
        { vault: 'cd'.repeat(32), peer: '12D3KooWPeerB', addresses: [], online: false },
      ],
    };
    const joined = mount(NetworkView, { global: { plugins: [pinia], stubs: { TimeChart: true, XorRing: true } } });
    await vi.waitFor(() => expect(joined.find('[data-test="peers"]').exists()).toBe(true));
    expect(joined.find('[data-test="own-address"]').text()).toBe('/ip4/192.168.1.20/tcp/4001/p2p/12D3KooWOwn');
    const rows = joined.findAll('[data-test="peer-row"]');
    expect(rows.map((r) => r.findAll('td').map((td) => td.text()))).toEqual([
      ['ababababab', '/ip4/192.168.1.10/tcp/4001', '3 ms', 'for 2m 5s'],
      ['cdcdcdcdcd', '—', '—', 'offline'],
    ]);
    expect(joined.find('[data-test="add-vault"]').exists()).toBe(false);
    expect(joined.findAll('[data-test="stop"]').length).toBe(0);

    client.networkPeers = { mode: 'network', addresses: [], peers: [], problem: 'could not listen on /ip4/0.0.0.0/tcp/4001: address in use' };
    await network.loadPeers();
    await flushPromises();
    expect(joined.find('[data-test="peers-problem"]').text()).toBe('Not on the network: could not listen on /ip4/0.0.0.0/tcp/4001: address in use');
  });
});
