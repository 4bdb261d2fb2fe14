/**
 * The local network: N vaults in this process, each with its own data dir, joined by the
 * in-process hub (every message through the codec). Vaults can be added, stopped (goodbye), killed
 * (no goodbye) and started; which vaults exist and which should run is kept in the app database,
 * so a restart resumes it. The simulation runs this same class on a virtual clock.
 */
import { join } from 'node:path';
import type { Peers, VaultInfo } from '../api/contract.ts';
import { DEFAULT_DONATED_BYTES } from './constants.ts';
import { migrate, type Db } from './db.ts';
import { fail } from '../api/errors.ts';
import type { EventBus } from './events.ts';
import type { ChunkRecord } from './messages.ts';
import { sleep, systemClock, type Clock } from './clock.ts';
import { Groups } from './group.ts';
import { createIdentity, type Identity } from './identity.ts';
import { closest, fromHex, toHex, type Name } from './names.ts';
import { InProcessHub, PERFECT_LINKS, type LinkConditions, type Network } from './transport.ts';
import { Vault } from './vault.ts';
import type { VaultNetwork } from './vaultNetwork.ts';

export interface LocalNetworkOptions {
  clock?: Clock;
  links?: LinkConditions;
  /** New identities (the simulation derives them from its seed). */
  newIdentity?: () => Identity;
  /** The vaults write chunk files off the event loop: the engine's network, not one on a virtual clock. */
  backgroundWrites?: boolean;
}

const migrations = [
  `CREATE TABLE local_vault (id TEXT PRIMARY KEY, donated INTEGER NOT NULL, running INTEGER NOT NULL, added_at INTEGER NOT NULL) STRICT;`,
];

export class LocalNetwork implements VaultNetwork {
  readonly hub: InProcessHub;
  readonly #root: string;
  readonly #newIdentity: () => Identity;
  readonly #backgroundWrites: boolean;
  readonly #events: EventBus;
  readonly #vaults = new Map<string, Vault>();
  readonly #sql;
  /** Used for reads any observer may make (chunk records, node accounts). */
  readonly #observer: Groups;
  readonly #observerNetwork: Network;

  constructor(root: string, appDb: Db, events: EventBus, options: LocalNetworkOptions = {}) {
    this.#root = root;
    this.#events = events;
    this.hub = new InProcessHub(options.clock ?? systemClock, options.links ?? PERFECT_LINKS);
    this.#newIdentity = options.newIdentity ?? createIdentity;
    this.#backgroundWrites = options.backgroundWrites ?? false;
    migrate(appDb, 'local_network', migrations);
    this.#sql = {
      all: appDb.prepare<[], { id: string; donated: number; running: number }>('SELECT id, donated, running FROM local_vault ORDER BY added_at, id'),
      add: appDb.prepare<[string, number, number]>('INSERT INTO local_vault (id, donated, running, added_at) VALUES (?, ?, 1, ?)'),
      setRunning: appDb.prepare<[number, string]>('UPDATE local_vault SET running = ? WHERE id = ?'),
      setDonated: appDb.prepare<[number, string]>('UPDATE local_vault SET donated = ? WHERE id = ?'),
    };
    const observer = this.networkOf(this.#newIdentity().name);
    this.#observerNetwork = observer;
    this.#observer = new Groups(observer);
    observer.view.onChange((change) => {
      const vault = toHex(change.vault);
      this.#events.emit(change.kind === 'joined' ? { type: 'vault.joined', vault } : { type: 'vault.left', vault, graceful: change.graceful });
    });
  }

  /**
   * Sends as `name` through the network as the observer sees it: for tests and tools that play a
   * client or a misbehaving vault (the hub names the sender, as a secure channel would).
   */
  impersonate(name: Name): Network {
    return { ...this.#observerNetwork, self: name, request: (to, message) => this.hub.sendAs(name, to, message) };
  }

  /** The network as `name` sees it (a vault, or a client that only asks). */
  networkOf(name: Name): Network {
    return this.hub.networkOf(name);
  }

  /**
   * Opens every vault that should run and brings them online together (no churn between them),
   * then tops up whatever lost holders while the network was down. Creates `initial` vaults on first run.
   */
  async start(initial: number): Promise<void> {
    if (this.#sql.all.all().length === 0) {
      for (let i = 0; i < initial; i++) this.#create(DEFAULT_DONATED_BYTES);
    }
    const running = this.#sql.all.all().filter((v) => v.running);
    const vaults = running.map((v) => this.#open(v.id));
    this.hub.start(vaults.map((v) => v.name));
    await Promise.all(vaults.map((v) => v.register()));
    await Promise.all(vaults.map((v) => v.audit()));
    for (const vault of vaults) vault.startAudits();
  }

  async add(donated = DEFAULT_DONATED_BYTES): Promise<VaultInfo> {
    const id = this.#create(donated);
    await this.#bringOnline(this.#open(id, donated));
    return this.info(id);
  }

  async startVault(idOrPrefix: string): Promise<VaultInfo> {
    const id = this.resolve(idOrPrefix);
    if (!this.#vaults.has(id)) {
      this.#sql.setRunning.run(1, id);
      // The donation recorded here wins: it may have changed while the vault was stopped.
      await this.#bringOnline(this.#open(id, this.#sql.all.all().find((v) => v.id === id)!.donated));
    }
    return this.info(id);
  }

  /** Changes a vault's donated space: recorded here (so a stopped vault starts with it) and, if it runs, told to the network now. */
  async setDonated(idOrPrefix: string, bytes: number): Promise<VaultInfo> {
    const id = this.resolve(idOrPrefix);
    this.#sql.setDonated.run(bytes, id);
    await this.#vaults.get(id)?.setDonated(bytes);
    return this.info(id);
  }

  /** The vault first created here: the one a desktop user runs as their own. */
  first(): string | undefined {
    return this.#sql.all.all()[0]?.id;
  }

  /**
   * How many chunks have fewer than MIN_HOLDERS online holders, as the running data managers see
   * them through their holder index of the offline vaults (see DataManager.underReplicated for the cost).
   */
  underReplicated(): number {
    const offline = this.#sql.all.all().map((v) => fromHex(v.id)).filter((name) => !this.hub.isOnline(name));
    const isOnline = (name: Name) => this.hub.isOnline(name);
    const short = new Set<string>();
    for (const vault of this.running()) for (const chunk of vault.dataManager.underReplicated(offline, isOnline)) short.add(chunk);
    return short.size;
  }

  /** Graceful: the vault says goodbye and its data dir stays. */
  stopVault(idOrPrefix: string): Promise<VaultInfo> {
    return this.#takeDown(idOrPrefix, false);
  }

  /** No goodbye: the vault stops answering mid-whatever, as in a crash; the failure detector notices. */
  killVault(idOrPrefix: string): Promise<VaultInfo> {
    return this.#takeDown(idOrPrefix, true);
  }

  /** Takes a running vault off the network; returns once the others have noticed and handled its departure. */
  async #takeDown(idOrPrefix: string, crash: boolean): Promise<VaultInfo> {
    const id = this.resolve(idOrPrefix);
    const vault = this.#vaults.get(id);
    if (vault) {
      this.#sql.setRunning.run(0, id);
      this.#vaults.delete(id);
      if (crash) this.hub.vanish(vault.name);
      else this.hub.leave(vault.name);
      vault.close();
      const { detectMs, viewLagMs } = this.hub.conditions;
      await sleep(this.hub.clock, (crash ? detectMs : 0) + viewLagMs[1]);
      await this.settled();
    }
    return this.info(id);
  }

  vault(id: string): Vault | undefined {
    return this.#vaults.get(id);
  }

  running(): Vault[] {
    return [...this.#vaults.values()];
  }

  async list(): Promise<VaultInfo[]> {
    return Promise.all(this.#sql.all.all().map((v) => this.info(v.id)));
  }

  /** Whole id or a unique prefix of one. */
  resolve(idOrPrefix: string): string {
    const matches = this.#sql.all.all().filter((v) => v.id.startsWith(idOrPrefix));
    if (matches.length === 1) return matches[0]!.id;
    return fail(matches.length ? 'bad-request' : 'not-found', matches.length ? `vault id ${idOrPrefix} is ambiguous` : `no vault ${idOrPrefix}`);
  }

  /** A vault as the network sees it: its storage_node_manager group's account of it. */
  async info(id: string): Promise<VaultInfo> {
    const name = fromHex(id);
    const account = await this.#observer
      .read(name, { type: 'snm.account', node: name }, name)
      .then((r) => r.account)
      .catch(() => null);
    const row = this.#sql.all.all().find((v) => v.id === id)!;
    return {
      id,
      online: this.hub.isOnline(name),
      donated: account?.donated ?? row.donated,
      used: account?.storedBytes ?? 0,
      chunks: account?.storedCount ?? 0,
      rank: account?.rank ?? 0,
    };
  }

  /** A chunk's record as its data_manager group agrees on it. */
  async chunkRecord(chunk: Name): Promise<ChunkRecord | null> {
    return (await this.#observer.read(chunk, { type: 'dm.info', chunk })).record;
  }

  /** The `count` online vaults closest to `target`, as the network stands (not as any one vault sees it). */
  closest(target: Name, count: number): Name[] {
    return closest(target, this.hub.online(), count);
  }

  /** Resolves when every vault has handled every membership change so far. */
  async settled(): Promise<void> {
    for (let round = 0; round < 2; round++) await Promise.all(this.running().map((v) => v.settled()));
  }

  /** Shuts every vault without churn: the network as a whole is going down, not its members. */
  async close(): Promise<void> {
    for (const vault of this.#vaults.values()) vault.close();
    this.#vaults.clear();
  }

  isOnline(name: Name): boolean {
    return this.hub.isOnline(name);
  }

  /** In-process vaults have no addresses or peers to show. */
  peers(): Peers {
    return { mode: 'local', addresses: [], peers: [] };
  }

  #create(donated: number): string {
    const identity = this.#newIdentity();
    const id = toHex(identity.name);
    new Vault({ dir: this.#dirOf(id), networkOf: (n) => this.networkOf(n), events: this.#events, donated, identity: identity.secret }).close();
    this.#sql.add.run(id, donated, Date.now());
    return id;
  }

  #open(id: string, donated?: number): Vault {
    const vault = new Vault({
      dir: this.#dirOf(id),
      networkOf: (n) => this.networkOf(n),
      events: this.#events,
      ...(donated ? { donated } : {}),
      backgroundWrites: this.#backgroundWrites,
    });
    if (vault.id !== id) {
      vault.close();
      fail('conflict', `vault data dir ${this.#dirOf(id)} belongs to another vault`);
    }
    this.hub.attach(vault.name, vault);
    this.#vaults.set(id, vault);
    return vault;
  }

  async #bringOnline(vault: Vault): Promise<void> {
    this.hub.join(vault.name);
    await sleep(this.hub.clock, this.hub.conditions.viewLagMs[1]);
    await vault.register();
    vault.startAudits();
    await this.settled();
    void vault.storageNode.sweepAll().catch(() => undefined);
  }

  #dirOf(id: string): string {
    return join(this.#root, id);
  }
}
