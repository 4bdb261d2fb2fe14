/**
 * The engine: the local network of vaults, the user's storage clients and the app database, behind
 * the one API contract. Both hosts (the desktop app and the headless daemon) serve exactly this.
 */
import { mkdirSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { Api, FileInfo, Params, Results } from '../api/contract.ts';
import { StorageClient } from './client/storageClient.ts';
import { ClientBook, type StoredFile } from './client/clientBook.ts';
import { selfDecryptToFile, selfEncryptFile } from './client/selfEncryption.ts';
import { DEFAULT_VAULTS, MAX_CHUNK_SIZE } from './constants.ts';
import { openDatabase, type Db } from './db.ts';
import { fail } from '../api/errors.ts';
import { EventLog } from './eventLog.ts';
import type { RecordedEvent } from '../api/events.ts';
import { EventBus } from './events.ts';
import { Groups } from './group.ts';
import { createIdentity, type Identity } from './identity.ts';
import { fromHex, toHex, type Name } from './names.ts';
import { LocalNetwork } from './network.ts';
import { aesGcmSealer, masterKeyFile, type SecretSealer } from './secretSealer.ts';

export interface EngineOptions {
  dataDir: string;
  /** Vaults to create when the data dir is new. */
  vaults?: number;
  /** Seals client secrets in app.sqlite; by default under a key in `<dataDir>/master.key` (the daemon's way). */
  sealer?: SecretSealer;
}

export interface Engine extends Api {
  readonly dataDir: string;
  readonly network: LocalNetwork;
  onEvent(listener: (event: RecordedEvent) => void): () => void;
  close(): Promise<void>;
}

export async function openEngine(options: EngineOptions): Promise<Engine> {
  mkdirSync(join(options.dataDir, 'vaults'), { recursive: true, mode: 0o700 });
  const db = openDatabase(join(options.dataDir, 'app.sqlite'));
  const engine = new VaultEngine(options.dataDir, db, options.sealer ?? aesGcmSealer(masterKeyFile(options.dataDir)));
  try {
    await engine.network.start(options.vaults ?? DEFAULT_VAULTS);
  } catch (error) {
    await engine.close();
    throw error;
  }
  return engine;
}

class VaultEngine implements Engine {
  readonly dataDir: string;
  readonly network: LocalNetwork;
  readonly #db: Db;
  readonly #bus = new EventBus();
  readonly #log: EventLog;
  readonly #clients: ClientBook;
  readonly #storageClients = new Map<string, StorageClient>();

  constructor(dataDir: string, db: Db, sealer: SecretSealer) {
    this.dataDir = dataDir;
    this.#db = db;
    this.#log = new EventLog(db, this.#bus);
    this.#clients = new ClientBook(db, sealer);
    this.network = new LocalNetwork(join(dataDir, 'vaults'), db, this.#bus);
  }

  onEvent(listener: (event: RecordedEvent) => void): () => void {
    return this.#bus.on(listener);
  }

  async close(): Promise<void> {
    this.network.close();
    this.#log.close();
    this.#db.close();
  }

  // --- files ---

  async putFile({ as, path }: Params<'putFile'>): Promise<Results['putFile']> {
    const client = this.#client(as);
    const name = basename(path);
    const stored: Name[] = [];
    try {
      const map = await selfEncryptFile(
        path,
        async (_chunk, bytes) => {
          stored.push((await client.putChunk(bytes)).name);
        },
        this.#progress(as, name),
      );
      return fileInfo(this.#clients.addFile(as, name, map));
    } catch (error) {
      // A store that fails part way releases what it stored, so it changes nothing.
      for (const chunk of stored.reverse()) await client.deleteChunk(chunk).catch(() => undefined);
      throw error;
    }
  }

  async getFile({ as, id, out }: Params<'getFile'>): Promise<Results['getFile']> {
    const file = this.#clients.file(as, id);
    const client = this.#client(as);
    const size = await selfDecryptToFile(file.map, (_i, name) => client.getChunk(name), out, this.#progress(as, file.name));
    return { id, path: out, size };
  }

  /** Releases each chunk once; an interrupted removal resumes where it stopped. */
  async removeFile({ as, id }: Params<'removeFile'>): Promise<Results['removeFile']> {
    const file = this.#clients.file(as, id);
    const client = this.#client(as);
    const chunks: Results['removeFile']['chunks'] = [];
    for (let i = file.removedChunks; i < file.map.chunks.length; i++) {
      const name = file.map.chunks[i]!.name;
      chunks.push({ name: toHex(name), ...(await client.deleteChunk(name)) });
      this.#clients.markRemoved(id, i + 1);
    }
    this.#clients.removeFile(id);
    return { id, chunks };
  }

  async listFiles({ as }: Params<'listFiles'>): Promise<Results['listFiles']> {
    return this.#clients.files(as).map(fileInfo);
  }

  // --- chunks ---

  async putChunk({ as, path }: Params<'putChunk'>): Promise<Results['putChunk']> {
    const info = await stat(path).catch(() => fail('not-found', `no such file: ${path}`));
    if (!info.isFile()) fail('bad-request', `not a file: ${path}`);
    if (info.size > MAX_CHUNK_SIZE) fail('too-large', `${path} is ${info.size} bytes; a chunk holds at most ${MAX_CHUNK_SIZE} (use put for files)`);
    const bytes = await readFile(path).catch(() => fail('not-found', `could not read ${path}`));
    if (bytes.length > MAX_CHUNK_SIZE) fail('too-large', `${path} grew past ${MAX_CHUNK_SIZE} bytes while being read`);
    const reply = await this.#client(as).putChunk(bytes);
    return { name: toHex(reply.name), refcount: reply.refcount, subscribers: reply.subscribers };
  }

  async removeChunk({ as, name }: Params<'removeChunk'>): Promise<Results['removeChunk']> {
    // A client never seen here owns nothing; it asks as a throwaway identity, so a refusal saves no client.
    const client = this.#clients.has(as) ? this.#client(as) : this.#storageClient(as, createIdentity());
    return client.deleteChunk(fromHex(name));
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
    return { name, size: record.size, subscribers: record.subscribers, refcount, holders };
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

  // --- activity ---

  async events({ since, limit }: Params<'events'>): Promise<Results['events']> {
    return this.#log.since(since, limit);
  }

  async status(): Promise<Results['status']> {
    const vaults = await this.network.list();
    return { dataDir: this.dataDir, vaults: vaults.length, online: vaults.filter((v) => v.online).length, clients: this.#clients.labels() };
  }

  #progress(client: string, file: string) {
    return (done: number, total: number) => void this.#bus.emit({ type: 'file.progress', client, file, done, total });
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
    const transport = this.network.transportFor(identity.name);
    return new StorageClient(label, identity, { groups: new Groups(this.network.net, transport), routing: this.network.net, transport, events: this.#bus });
  }
}

const fileInfo = (file: StoredFile): FileInfo => ({
  id: file.id,
  name: file.name,
  size: file.size,
  chunks: file.map.chunks.map((c) => toHex(c.name)),
  storedAt: file.storedAt,
});
