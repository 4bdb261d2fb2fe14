/**
 * The one fake ApiClient for store and component tests: the contract's methods over a small in-memory
 * network (identities, files, chunks, vaults), events and connection states the test drives itself.
 */
import type { ChunkInfo, ClientInfo, FileInfo, Peers, Settings, VaultInfo } from '../../electron/api/contract.ts';
import type { EngineEvent, RecordedEvent } from '../../electron/api/events.ts';
import { SafeVaultError } from '../../electron/api/errors.ts';
import { Listeners, type ApiClient, type ConnectionState } from '../src/api/client.ts';

const hex = (n: number, length: number) => n.toString(16).padStart(length, '0');

export interface FakeClient extends ApiClient {
  /** Calls made, by method, with their params: what the stores asked for. */
  calls: { method: string; params: unknown }[];
  emit(event: EngineEvent): RecordedEvent;
  connect(state?: ConnectionState): void;
  /** Makes stores wait until `finish` is called or they are cancelled (to watch progress and cancel). */
  holdStores(): { finish(): void };
  /** Settles when the last store has (with whatever outcome). */
  lastStore: Promise<unknown>;
  files: Map<string, FileInfo[]>;
  vaults: VaultInfo[];
  /** What `peers` answers (a local network's, until a test sets a joined one). */
  networkPeers: Peers;
}

export function fakeClient(): FakeClient {
  const events = new Listeners<RecordedEvent>();
  const connection = new Listeners<ConnectionState>();
  const calls: FakeClient['calls'] = [];
  const clients: ClientInfo[] = [];
  const files = new Map<string, FileInfo[]>();
  const vaults: VaultInfo[] = Array.from({ length: 6 }, (_, i) => ({ id: hex(i * 0x2a000000 + 1, 8), online: true, donated: 1 << 30, used: 0, chunks: 0, rank: 1 }));
  let settings: Settings = {
    donated: 1 << 30,
    theme: 'auto',
    startAtLogin: false,
    mode: 'local',
    bootstrap: [],
    listen: '/ip4/0.0.0.0/tcp/4001',
    mdns: true,
    notifications: { storeFinished: true, storeFailed: true, vaultOffline: true, spaceNearlyFull: true },
  };
  let seq = 0;
  let nextFile = 1;
  let hold: Promise<void> | null = null;
  const cancels = new Map<string, () => void>();

  const record = (method: string, params: unknown) => calls.push({ method, params });
  const emit = (event: EngineEvent) => {
    const recorded = { ...event, seq: ++seq, at: Date.now() } as RecordedEvent;
    events.emit(recorded);
    return recorded;
  };
  const chunkInfo = (name: string): ChunkInfo => ({
    name,
    size: 1024,
    subscribers: 1,
    refcount: 1,
    holders: vaults.slice(0, 4).map((v, rank) => ({ vault: v.id, online: v.online, rank })),
    managers: vaults.slice(0, 4).map((v) => v.id),
  });
  const unsupported = (method: string) => async () => {
    throw new SafeVaultError('bad-request', `${method} is not part of the fake`);
  };

  async function storeFile(file: File, { as, op }: { as: string; op: string }, onUploadProgress?: (sent: number, total: number) => void) {
    record('storeFile', { name: file.name, as, op });
    onUploadProgress?.(file.size, file.size);
    emit({ type: 'file.progress', client: as, file: file.name, done: Math.ceil(file.size / 2), total: file.size, op, direction: 'store' });
    if (hold) {
      const cancelled = new Promise<never>((_, reject) => cancels.set(op, () => reject(new SafeVaultError('bad-request', `${file.name}: cancelled`))));
      await Promise.race([hold, cancelled]);
    }
    const stored: FileInfo = { id: hex(nextFile++, 32), name: file.name, size: file.size, chunks: [hex(nextFile, 64)], storedAt: Date.now() };
    files.set(as, [...(files.get(as) ?? []), stored]);
    return stored;
  }

  const client: FakeClient = {
    calls,
    files,
    vaults,
    networkPeers: { mode: 'local', addresses: [], peers: [] },
    emit,
    connect: (state = 'connected') => connection.emit(state),
    lastStore: Promise.resolve(),
    holdStores() {
      let finish!: () => void;
      hold = new Promise((resolve) => (finish = resolve));
      return { finish: () => finish() };
    },
    onEvent: (l) => events.add(l),
    onConnection: (l) => connection.add(l),
    async listClients(p) {
      record('listClients', p);
      return [...clients];
    },
    async createClient(p) {
      record('createClient', p);
      if (clients.some((c) => c.label === p.label)) throw new SafeVaultError('conflict', `${p.label} exists`);
      const made = { label: p.label, name: hex(clients.length + 1, 64), files: 0, createdAt: Date.now() };
      clients.push(made);
      return made;
    },
    async listFiles(p) {
      record('listFiles', p);
      return [...(files.get(p.as) ?? [])];
    },
    async fileHealth(p) {
      record('fileHealth', p);
      return p.ids.map((id) => ({ id, chunks: 1, minOnlineHolders: 4, underReplicated: 0 }));
    },
    async removeFile(p) {
      record('removeFile', p);
      const list = files.get(p.as) ?? [];
      if (!list.some((f) => f.id === p.id)) throw new SafeVaultError('not-found', `no file ${p.id}`);
      files.set(p.as, list.filter((f) => f.id !== p.id));
      return { id: p.id, chunks: [] };
    },
    async chunkInfo(p) {
      record('chunkInfo', p);
      return chunkInfo(p.name);
    },
    storeFile(file, options, onUploadProgress) {
      const store = storeFile(file, options, onUploadProgress);
      client.lastStore = store.catch(() => {});
      return store;
    },
    async retrieveFile(p) {
      record('retrieveFile', p);
      return { saved: true };
    },
    async cancel(p) {
      record('cancel', p);
      cancels.get(p.op)?.();
      return { cancelled: true };
    },
    async events(p) {
      record('events', p);
      return [];
    },
    async status(p) {
      record('status', p);
      return { dataDir: '/tmp/fake', vaults: vaults.length, online: vaults.filter((v) => v.online).length, clients: clients.map((c) => c.label), paused: false, used: 0, donated: settings.donated, opsInFlight: 0 };
    },
    async listVaults(p) {
      record('listVaults', p);
      return vaults.map((v) => ({ ...v }));
    },
    async stopVault(p) {
      record('stopVault', p);
      const vault = vaults.find((v) => v.id === p.id)!;
      vault.online = false;
      emit({ type: 'vault.left', vault: vault.id, graceful: true });
      return { ...vault };
    },
    async getSettings(p) {
      record('getSettings', p);
      return settings;
    },
    async setSettings(p) {
      record('setSettings', p);
      // The engine parses multiaddrs for real; the fake refuses a DNS name it cannot resolve, to show a refusal.
      const unknown = p.bootstrap?.find((b) => b.startsWith('/dns4/'));
      if (unknown) throw new SafeVaultError('bad-request', `bootstrap address ${JSON.stringify(unknown)} is not a multiaddr (fake)`);
      settings = { ...settings, ...p };
      return settings;
    },
    async timeSeries(p) {
      record('timeSeries', p);
      return [];
    },
    async peers(p) {
      record('peers', p);
      return client.networkPeers;
    },
    async logs(p) {
      record('logs', p);
      return [];
    },
    async putFile(p) {
      record('putFile', p);
      return { id: hex(nextFile++, 32), name: p.name ?? p.path.split('/').at(-1)!, size: 1, chunks: [], storedAt: Date.now() };
    },
    async getFile(p) {
      record('getFile', p);
      return { id: p.id, path: p.out, size: 1 };
    },
    putChunk: unsupported('putChunk'),
    removeChunk: unsupported('removeChunk'),
    addVault: unsupported('addVault'),
    startVault: unsupported('startVault'),
    killVault: unsupported('killVault'),
    myVault: unsupported('myVault'),
    setPaused: unsupported('setPaused'),
  };
  return client;
}
