/**
 * The engine: the local network of vaults, the user's storage clients and the app database, behind
 * the one API contract. Both hosts (the desktop app and the headless daemon) serve exactly this.
 */
import { mkdirSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { Api, FileInfo, MyVault, Params, Results, Sample, Settings } from '../api/contract.ts';
import { StorageClient } from './client/storageClient.ts';
import { ClientBook, type StoredFile } from './client/clientBook.ts';
import { selfDecryptToFile, selfEncryptFile } from './client/selfEncryption.ts';
import { DEFAULT_VAULTS, GROUP_SIZE, MAX_CHUNK_SIZE, MIN_HOLDERS } from './constants.ts';
import { openDatabase, type Db } from './db.ts';
import { fail, SafeVaultError } from '../api/errors.ts';
import { EngineLog } from './engineLog.ts';
import { EventLog } from './eventLog.ts';
import type { RecordedEvent } from '../api/events.ts';
import { EventBus } from './events.ts';
import { createIdentity, type Identity } from './identity.ts';
import { fromHex, toHex, type Name } from './names.ts';
import { JoinedNetwork, joinedVaultDir } from './net/joinedNetwork.ts';
import { checkAddresses } from './net/netVault.ts';
import { LocalNetwork } from './network.ts';
import { aesGcmSealer, masterKeyFile, type SecretSealer } from './secretSealer.ts';
import { SettingsBook } from './settings.ts';
import { TimeSeries, type TimeSeriesOptions } from './timeSeries.ts';
import type { VaultNetwork } from './vaultNetwork.ts';

export interface EngineOptions {
  dataDir: string;
  /** Vaults to create when the data dir is new. */
  vaults?: number;
  /** Seals client secrets in app.sqlite; by default under a key in `<dataDir>/master.key` (the daemon's way). */
  sealer?: SecretSealer;
  /** Time series sampling (tests shorten the interval and inject the clock). */
  samples?: Pick<TimeSeriesOptions, 'everyMs' | 'keepMs' | 'now'>;
}

/** `network` is the local network or a joined one, as the settings' mode says (tests that need the local one's internals narrow it). */
export interface Engine<N extends VaultNetwork = VaultNetwork> extends Api {
  readonly dataDir: string;
  readonly network: N;
  /** The engine's own log; hosts write their notable lines here too. */
  readonly log: EngineLog;
  onEvent(listener: (event: RecordedEvent) => void): () => void;
  /** Takes a time series sample now (the timer does so every few seconds). */
  sample(): Promise<void>;
  close(): Promise<void>;
}

export async function openEngine(options: EngineOptions): Promise<Engine> {
  mkdirSync(join(options.dataDir, 'vaults'), { recursive: true, mode: 0o700 });
  const db = openDatabase(join(options.dataDir, 'app.sqlite'));
  const engine = new VaultEngine(options, db);
  try {
    await engine.start(options.vaults ?? DEFAULT_VAULTS);
    engine.log.info(`engine started in ${options.dataDir} with ${engine.network.running().length} vaults online${engine.network instanceof JoinedNetwork ? ' (joined a network)' : ''}`);
  } catch (error) {
    await engine.close();
    throw error;
  }
  return engine;
}

/** Chunk records read at once by fileHealth: enough to overlap round trips, few enough not to flood the groups. */
const HEALTH_CONCURRENCY = 8;

/** Settings that say which network runs: changing one restarts it. */
const NETWORK_SETTINGS = ['mode', 'listen', 'bootstrap', 'mdns'] as const;

class VaultEngine implements Engine {
  readonly dataDir: string;
  network: VaultNetwork;
  readonly log: EngineLog;
  readonly #db: Db;
  readonly #bus = new EventBus();
  readonly #events: EventLog;
  readonly #clients: ClientBook;
  readonly #settings: SettingsBook;
  readonly #series: TimeSeries;
  readonly #storageClients = new Map<string, StorageClient>();
  /** putFile/getFile calls that `cancel` can stop, by operation id. */
  readonly #cancellable = new Map<string, AbortController>();
  /** Every client operation running, so close can stop them and wait for them to unwind. */
  readonly #running = new Map<AbortController, Promise<unknown>>();
  #closing = false;
  /** When each vault came online in this run (for the own vault's uptime). */
  readonly #onlineSince = new Map<string, number>();
  #opsInFlight = 0;
  #settingsTurn: Promise<unknown> = Promise.resolve();
  /** Vaults a new local network starts with. */
  #initialVaults = DEFAULT_VAULTS;
  /** Client operations finished since the last sample, and when that was (for opsPerSecond). */
  #opsDone = 0;
  readonly #now: () => number;
  #lastSampleAt: number;

  constructor(options: EngineOptions, db: Db) {
    this.dataDir = options.dataDir;
    this.#db = db;
    this.#now = options.samples?.now ?? Date.now;
    this.#lastSampleAt = this.#now();
    this.log = new EngineLog(db);
    this.#events = new EventLog(db, this.#bus);
    this.#clients = new ClientBook(db, options.sealer ?? aesGcmSealer(masterKeyFile(options.dataDir)));
    this.#settings = new SettingsBook(db);
    this.#bus.on((event) => {
      if (event.type === 'vault.joined') this.#onlineSince.set(event.vault, event.at);
      if (event.type === 'vault.left') this.#onlineSince.delete(event.vault);
    });
    this.network = this.#openNetwork(this.#settings.settings());
    this.#series = new TimeSeries(db, {
      ...options.samples,
      measure: () => this.#measure(),
      onError: (error) => this.log.warn(`time series sample failed: ${(error as Error).message}`),
    });
  }

  /**
   * Brings the network up; the vaults that start with it came online now (they join without churn
   * events). A joined vault that cannot listen leaves the engine up, off the network, saying why
   * (peers' `problem`), so Settings can still change the address or go back to a local network.
   */
  async start(vaults: number): Promise<void> {
    this.#initialVaults = vaults;
    await this.#bringUp(true);
  }

  /** `tolerant`: a joined vault that cannot listen is logged, not thrown (see start). */
  async #bringUp(tolerant: boolean): Promise<void> {
    try {
      await this.network.start(this.#initialVaults);
    } catch (error) {
      if (!tolerant || !(this.network instanceof JoinedNetwork)) throw error;
      this.log.error(`not on the network: ${(error as Error).message}`);
    }
    const now = Date.now();
    for (const vault of this.network.running()) if (!this.#onlineSince.has(vault.id)) this.#onlineSince.set(vault.id, now);
  }

  #openNetwork(settings: Settings): VaultNetwork {
    if (settings.mode === 'local') return new LocalNetwork(join(this.dataDir, 'vaults'), this.#db, this.#bus, { backgroundWrites: true });
    return new JoinedNetwork({
      dir: joinedVaultDir(this.dataDir),
      listen: settings.listen,
      bootstrap: settings.bootstrap,
      mdns: settings.mdns,
      paused: this.#settings.paused,
      events: this.#bus,
      log: (level, message) => this.log[level](message),
    });
  }

  /**
   * Restarts the network under new settings: what is in flight is stopped and unwinds first, the
   * running network is taken down (a joined vault says goodbye), and the new one started. If it
   * cannot start (its listen address is taken), the previous settings and network come back and the
   * error is the caller's.
   */
  async #restartNetwork(previous: Settings): Promise<void> {
    await this.#stopOperations('the network is restarting');
    await this.network.close();
    this.#storageClients.clear();
    this.#onlineSince.clear();
    const next = this.#settings.settings();
    this.log.info(`restarting the network: ${next.mode === 'local' ? 'a local network' : `joining through ${next.bootstrap.length} bootstrap vaults, listening on ${next.listen}`}`);
    try {
      this.network = this.#openNetwork(next);
      await this.#bringUp(false);
    } catch (error) {
      this.log.error(`the network did not start (${(error as Error).message}); back to the previous settings`);
      await this.network.close();
      this.#settings.update(Object.fromEntries(NETWORK_SETTINGS.map((key) => [key, previous[key]])));
      this.network = this.#openNetwork(previous);
      await this.#bringUp(true);
      throw error;
    }
  }

  /** Stops every operation in flight and waits for each to unwind (a cancelled store releases what it stored). */
  async #stopOperations(why: string): Promise<void> {
    for (const controller of this.#running.keys()) controller.abort(cancelled(why));
    await Promise.allSettled(this.#running.values());
  }

  onEvent(listener: (event: RecordedEvent) => void): () => void {
    return this.#bus.on(listener);
  }

  sample(): Promise<void> {
    return this.#series.sample();
  }

  /**
   * Stops every operation in flight and waits for each to unwind while the network and database are still
   * open: a store being cancelled releases the chunks it had stored, so nothing acknowledged is lost and
   * nothing half-done is left counted. Then closes everything.
   */
  async close(): Promise<void> {
    this.#closing = true;
    await this.#stopOperations('the engine is closing');
    await this.#series.close();
    await this.network.close();
    this.#events.close();
    this.#db.close();
  }

  // --- files ---

  async putFile({ as, path, name = basename(path), op }: Params<'putFile'>): Promise<Results['putFile']> {
    return this.#operation(op, async (signal) => {
      const client = this.#client(as);
      const stored: Name[] = [];
      try {
        const map = await selfEncryptFile(
          path,
          async (chunk, bytes) => {
            stored.push((await client.putChunk(bytes, chunk)).name);
          },
          this.#progress(as, name, 'store', op),
          signal,
        );
        const file = fileInfo(this.#clients.addFile(as, name, map));
        this.#bus.emit({ type: 'file.stored', client: as, file: name, id: file.id, size: file.size, ...(op && { op }) });
        return file;
      } catch (error) {
        // A store that fails part way, or is cancelled, releases what it stored, so it changes nothing.
        for (const chunk of stored.reverse()) await client.deleteChunk(chunk).catch(() => undefined);
        this.#failed(as, name, 'store', op, error, signal);
        throw error;
      }
    });
  }

  async getFile({ as, id, out, op }: Params<'getFile'>): Promise<Results['getFile']> {
    const file = this.#clients.file(as, id);
    return this.#operation(op, async (signal) => {
      const client = this.#client(as);
      try {
        const size = await selfDecryptToFile(file.map, (_i, name, open) => client.getChunk(name, open), out, this.#progress(as, file.name, 'retrieve', op), signal);
        return { id, path: out, size };
      } catch (error) {
        this.#failed(as, file.name, 'retrieve', op, error, signal);
        throw error;
      }
    });
  }

  async cancel({ op }: Params<'cancel'>): Promise<Results['cancel']> {
    const controller = this.#cancellable.get(op);
    controller?.abort(cancelled(`operation ${op} was cancelled`));
    return { cancelled: controller !== undefined };
  }

  /** Releases each chunk once; an interrupted removal resumes where it stopped. */
  async removeFile({ as, id }: Params<'removeFile'>): Promise<Results['removeFile']> {
    const file = this.#clients.file(as, id);
    return this.#operation(undefined, async () => {
      const client = this.#client(as);
      const chunks: Results['removeFile']['chunks'] = [];
      for (let i = file.removedChunks; i < file.map.chunks.length; i++) {
        const name = file.map.chunks[i]!.name;
        chunks.push({ name: toHex(name), ...(await client.deleteChunk(name)) });
        this.#clients.markRemoved(id, i + 1);
      }
      this.#clients.removeFile(id);
      this.#bus.emit({ type: 'file.removed', client: as, file: file.name, id });
      return { id, chunks };
    });
  }

  async listFiles({ as }: Params<'listFiles'>): Promise<Results['listFiles']> {
    return this.#clients.files(as).map(fileInfo);
  }

  async fileHealth({ as, ids }: Params<'fileHealth'>): Promise<Results['fileHealth']> {
    const files = ids.map((id) => this.#clients.file(as, id));
    const chunks = [...new Set(files.flatMap((f) => f.map.chunks.map((c) => toHex(c.name))))];
    const online = new Map<string, number>();
    let next = 0;
    const worker = async () => {
      while (next < chunks.length) {
        const chunk = chunks[next++]!;
        const record = await this.network.chunkRecord(fromHex(chunk)).catch(() => null);
        online.set(chunk, record ? record.holders.filter((h) => this.network.isOnline(h)).length : 0);
      }
    };
    await Promise.all(Array.from({ length: Math.min(HEALTH_CONCURRENCY, chunks.length) }, worker));
    return files.map((f) => {
      const counts = f.map.chunks.map((c) => online.get(toHex(c.name))!);
      return { id: f.id, chunks: counts.length, minOnlineHolders: Math.min(...counts), underReplicated: counts.filter((n) => n < MIN_HOLDERS).length };
    });
  }

  // --- chunks ---

  async putChunk({ as, path }: Params<'putChunk'>): Promise<Results['putChunk']> {
    return this.#operation(undefined, async () => {
      const info = await stat(path).catch(() => fail('not-found', `no such file: ${path}`));
      if (!info.isFile()) fail('bad-request', `not a file: ${path}`);
      if (info.size > MAX_CHUNK_SIZE) fail('too-large', `${path} is ${info.size} bytes; a chunk holds at most ${MAX_CHUNK_SIZE} (use put for files)`);
      const bytes = await readFile(path).catch(() => fail('not-found', `could not read ${path}`));
      if (bytes.length > MAX_CHUNK_SIZE) fail('too-large', `${path} grew past ${MAX_CHUNK_SIZE} bytes while being read`);
      const reply = await this.#client(as).putChunk(bytes);
      return { name: toHex(reply.name), refcount: reply.refcount, subscribers: reply.subscribers };
    });
  }

  async removeChunk({ as, name }: Params<'removeChunk'>): Promise<Results['removeChunk']> {
    return this.#operation(undefined, () => {
      // A client never seen here owns nothing; it asks as a throwaway identity, so a refusal saves no client.
      const client = this.#clients.has(as) ? this.#client(as) : this.#storageClient(as, createIdentity());
      return client.deleteChunk(fromHex(name));
    });
  }

  async chunkInfo({ name, as }: Params<'chunkInfo'>): Promise<Results['chunkInfo']> {
    const chunk = fromHex(name);
    const record = (await this.network.chunkRecord(chunk)) ?? fail('not-found', `chunk ${name} is not stored on the network`);
    const holders = await Promise.all(
      record.holders.map(async (h) => {
        const vault = await this.network.info(toHex(h));
        return { vault: vault.id, online: vault.online, rank: vault.rank };
      }),
    );
    const refcount = as && this.#clients.has(as) ? await this.#client(as).refcount(chunk) : 0;
    const managers = this.network.closest(chunk, GROUP_SIZE).map(toHex);
    return { name, size: record.size, subscribers: record.subscribers, refcount, holders, managers };
  }

  // --- vaults ---

  listVaults(): Promise<Results['listVaults']> {
    return this.network.list();
  }

  addVault({ donated }: Params<'addVault'>): Promise<Results['addVault']> {
    return this.network.add(donated);
  }

  stopVault({ id }: Params<'stopVault'>): Promise<Results['stopVault']> {
    return this.network.stopVault(id);
  }

  startVault({ id }: Params<'startVault'>): Promise<Results['startVault']> {
    return this.network.startVault(id);
  }

  killVault({ id }: Params<'killVault'>): Promise<Results['killVault']> {
    return this.network.killVault(id);
  }

  async myVault(): Promise<Results['myVault']> {
    const id = this.#ownVault();
    const info = await this.network.info(id);
    // Records are counted in the vault's own database, which is open only while it runs.
    const records = this.network.vault(id)?.records() ?? { storageClientManager: 0, dataManager: 0, storageNodeManager: 0, storageNode: 0 };
    const startedAt = info.online ? (this.#onlineSince.get(id) ?? null) : null;
    return { ...info, startedAt, records } satisfies MyVault;
  }

  async setPaused({ paused }: Params<'setPaused'>): Promise<Results['setPaused']> {
    const id = this.#ownVault();
    if (paused !== this.#settings.paused) {
      this.#settings.paused = paused;
      await (paused ? this.network.stopVault(id) : this.network.startVault(id));
      this.#bus.emit({ type: 'vault.paused', vault: id, paused });
      this.log.info(`own vault ${id.slice(0, 12)} ${paused ? 'paused' : 'resumed'}`);
    }
    return this.status();
  }

  // --- settings ---

  async getSettings(): Promise<Results['getSettings']> {
    // The donation is the own vault's, as the network records it: one source of truth. A joined vault
    // that never started (its address refused) has none yet: Settings must still open, to change that address.
    const settings = this.#settings.settings();
    if (this.network instanceof JoinedNetwork && this.network.first() === undefined) return settings;
    return { ...settings, donated: (await this.network.info(this.#ownVault())).donated };
  }

  /**
   * Changes settings. Addresses are checked first (a bad multiaddr is one clear error and changes
   * nothing); a change to the network's settings restarts the network under them.
   */
  async setSettings(changes: Params<'setSettings'>): Promise<Results['setSettings']> {
    // One change at a time: two network restarts must not interleave.
    const turn = this.#settingsTurn.then(() => this.#setSettings(changes));
    this.#settingsTurn = turn.catch(() => undefined);
    return turn;
  }

  async #setSettings(changes: Params<'setSettings'>): Promise<Results['setSettings']> {
    const { donated, ...rest } = changes;
    checkAddresses(rest.listen, rest.bootstrap ?? []);
    const previous = this.#settings.settings();
    const next = { ...previous, ...rest };
    if (donated !== undefined) {
      const ownId = this.#ownVault();
      // Its account can lag its disk by a report (up to a second): the disk's own count is exact while the vault runs.
      const used = Math.max((await this.network.info(ownId)).used, this.network.vault(ownId)?.storageNode.usage().bytes ?? 0);
      if (donated < used) fail('bad-request', `your vault already stores ${used} bytes; it cannot donate less (${donated})`);
      await this.network.setDonated(ownId, donated);
      this.log.info(`own vault ${ownId.slice(0, 12)} now donates ${donated} bytes`);
    }
    this.#settings.update(rest);
    // A local network does not use the joining settings: it restarts only to join, or to leave a joined network.
    const changed = NETWORK_SETTINGS.some((key) => JSON.stringify(next[key]) !== JSON.stringify(previous[key]));
    if (changed && (next.mode === 'network' || previous.mode === 'network')) await this.#restartNetwork(previous);
    return this.getSettings();
  }

  async peers(): Promise<Results['peers']> {
    return this.network.peers();
  }

  // --- activity ---

  async events({ since, limit }: Params<'events'>): Promise<Results['events']> {
    return this.#events.since(since, limit);
  }

  async status(): Promise<Results['status']> {
    const vaults = await this.network.list();
    const online = vaults.filter((v) => v.online);
    return {
      dataDir: this.dataDir,
      vaults: vaults.length,
      online: online.length,
      clients: this.#clients.labels(),
      paused: this.#settings.paused,
      used: sum(online.map((v) => v.used)),
      donated: sum(online.map((v) => v.donated)),
      opsInFlight: this.#opsInFlight,
    };
  }

  async timeSeries({ since }: Params<'timeSeries'>): Promise<Results['timeSeries']> {
    return this.#series.since(since);
  }

  async logs(params: Params<'logs'>): Promise<Results['logs']> {
    return this.log.lines(params);
  }

  // --- accounts ---

  async listClients(): Promise<Results['listClients']> {
    return this.#clients.clients();
  }

  async createClient({ label }: Params<'createClient'>): Promise<Results['createClient']> {
    this.#clients.create(label);
    return this.#clients.clients().find((c) => c.label === label)!;
  }

  /** One client operation: counted while it runs and when it ends; with an op id, cancellable. */
  async #operation<T>(op: string | undefined, run: (signal: AbortSignal) => Promise<T>): Promise<T> {
    if (this.#closing) fail('unavailable', 'the engine is closing');
    if (op && this.#cancellable.has(op)) fail('conflict', `operation ${op} is already running`);
    const controller = new AbortController();
    if (op) this.#cancellable.set(op, controller);
    this.#opsInFlight++;
    const running = run(controller.signal);
    this.#running.set(controller, running);
    try {
      return await running;
    } finally {
      this.#running.delete(controller);
      this.#opsInFlight--;
      this.#opsDone++;
      if (op) this.#cancellable.delete(op);
    }
  }

  #failed(client: string, file: string, direction: 'store' | 'retrieve', op: string | undefined, error: unknown, signal: AbortSignal): void {
    const message = error instanceof Error ? error.message : String(error);
    this.#bus.emit({ type: 'file.failed', client, file, direction, message, cancelled: signal.aborted, ...(op && { op }) });
  }

  #progress(client: string, file: string, direction: 'store' | 'retrieve', op: string | undefined) {
    return (done: number, total: number) => void this.#bus.emit({ type: 'file.progress', client, file, done, total, direction, ...(op && { op }) });
  }

  /** The own vault's id: the first vault of the local network, remembered so it stays the same one; the only one of a joined network. */
  #ownVault(): string {
    if (!(this.network instanceof LocalNetwork)) return this.network.first() ?? fail('unavailable', 'your vault has not started');
    let id = this.#settings.ownVault;
    if (!id) {
      id = this.network.first() ?? fail('not-found', 'this network has no vaults');
      this.#settings.ownVault = id;
    }
    return id;
  }

  async #measure(): Promise<Omit<Sample, 'at'>> {
    const vaults = (await this.network.list()).filter((v) => v.online);
    const now = this.#now();
    const opsPerSecond = (this.#opsDone * 1000) / Math.max(1, now - this.#lastSampleAt);
    this.#opsDone = 0;
    this.#lastSampleAt = now;
    return {
      vaultsOnline: vaults.length,
      underReplicated: this.network.underReplicated(),
      used: sum(vaults.map((v) => v.used)),
      donated: sum(vaults.map((v) => v.donated)),
      chunksHeld: sum(vaults.map((v) => v.chunks)),
      opsPerSecond,
    };
  }

  /** The storage client of local identity `label`, made on first use. */
  #client(label: string): StorageClient {
    let client = this.#storageClients.get(label);
    if (!client) {
      client = this.#storageClient(label, this.#clients.identity(label));
      this.#storageClients.set(label, client);
    }
    return client;
  }

  #storageClient(label: string, identity: Identity): StorageClient {
    return new StorageClient(label, identity, this.network.networkOf(identity.name), this.#bus);
  }
}

/** A cancellation, as the error a cancelled operation fails with (its file.failed event says cancelled). */
const cancelled = (message: string) => new SafeVaultError('conflict', message);
const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);

const fileInfo = (file: StoredFile): FileInfo => ({
  id: file.id,
  name: file.name,
  size: file.size,
  chunks: file.map.chunks.map((c) => toHex(c.name)),
  storedAt: file.storedAt,
});
