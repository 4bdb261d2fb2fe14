/**
 * A network the app joins instead of running its own: the user's one vault on libp2p (netVault.ts),
 * listening on the configured address, joined through the bootstrap vaults. The other vaults are
 * other people's, so they are listed and shown but never added, stopped or killed from here; the own
 * vault can leave (pause) and come back. The user's storage clients reach the network through the
 * own vault: requests to it are served here (still as codec frames), the rest go over its libp2p
 * node; client requests are signed, so which connection carries them does not matter.
 */
import { join } from 'node:path';
import type { Peers, VaultInfo } from '../../api/contract.ts';
import { fail, SafeVaultError } from '../../api/errors.ts';
import { systemClock } from '../clock.ts';
import type { EventBus } from '../events.ts';
import { Groups } from '../group.ts';
import { createIdentity } from '../identity.ts';
import type { ChunkRecord } from '../messages.ts';
import { fromHex, toHex, type Name } from '../names.ts';
import { View, type Network } from '../transport.ts';
import { Vault } from '../vault.ts';
import type { VaultNetwork } from '../vaultNetwork.ts';
import { readReply, requestFrame, serveFrame } from '../wire/frames.ts';
import type { LogFn } from './libp2pNetwork.ts';
import { donationFor, startNetVault, type NetVault } from './netVault.ts';

export interface JoinedNetworkOptions {
  /** The own vault's data dir. */
  dir: string;
  listen: string;
  bootstrap: readonly string[];
  mdns: boolean;
  /** Whether the own vault starts paused (off the network). */
  paused: boolean;
  events: EventBus;
  log: LogFn;
}

const NOBODY = new View();

export class JoinedNetwork implements VaultNetwork {
  readonly #options: JoinedNetworkOptions;
  #running?: NetVault;
  /** The own vault's id, known once it has been opened. */
  #id?: string;
  /** Why the own vault is not on the network, when it is not. */
  #problem?: string;
  #stopWatching = () => {};
  readonly #observer: Groups;

  constructor(options: JoinedNetworkOptions) {
    this.#options = options;
    this.#observer = new Groups(this.networkOf(createIdentity().name));
  }

  /** Joins (unless paused). A listen address that cannot be used rejects; absent bootstrap vaults do not (they are dialled until they answer). */
  async start(): Promise<void> {
    if (this.#options.paused) {
      // Off the network, but still the user's vault: open it just to know which one it is.
      const { dir, events } = this.#options;
      const vault = new Vault({ dir, events, ...donationFor(dir), networkOf: (self) => this.networkOf(self) });
      this.#id = vault.id;
      vault.close();
      this.#problem = 'your vault is paused';
      return;
    }
    await this.#join();
  }

  async close(): Promise<void> {
    await this.#leave();
  }

  networkOf(self: Name): Network {
    const joined = this;
    return {
      self,
      clock: systemClock,
      get view() {
        return joined.#running?.network.view ?? NOBODY;
      },
      request: (to, message) => {
        const running = this.#running;
        if (!running) return Promise.reject(new SafeVaultError('unavailable', `not on the network: ${this.#problem ?? 'starting'}`));
        if (!to.equals(running.vault.name)) return running.network.request(to, message);
        // The own vault, in this process: the same frames as over the wire.
        return serveFrame(running.vault, self, requestFrame(message)).then((reply) => readReply(message.type, reply, toHex(to).slice(0, 12)));
      },
    };
  }

  first(): string | undefined {
    return this.#id;
  }

  running(): Vault[] {
    return this.#running ? [this.#running.vault] : [];
  }

  vault(id: string): Vault | undefined {
    return this.#running?.vault.id === id ? this.#running.vault : undefined;
  }

  async list(): Promise<VaultInfo[]> {
    const others = this.#running?.network.peers().map((p) => p.vault) ?? [];
    return Promise.all([...(this.#id ? [this.#id] : []), ...others].map((id) => this.info(id)));
  }

  async info(id: string): Promise<VaultInfo> {
    const name = fromHex(id);
    const own = this.vault(id);
    const account = await this.#observer
      .read(name, { type: 'snm.account', node: name }, name)
      .then((r) => r.account)
      .catch(() => null);
    return {
      id,
      online: this.isOnline(name),
      donated: account?.donated ?? own?.storageNode.donated ?? 0,
      used: account?.storedBytes ?? 0,
      chunks: account?.storedCount ?? 0,
      rank: account?.rank ?? 0,
    };
  }

  isOnline(name: Name): boolean {
    return this.#running?.network.view.isOnline(name) ?? false;
  }

  add(): Promise<VaultInfo> {
    return othersVaults();
  }

  /** Only the own vault: it joins again (resume). */
  async startVault(idOrPrefix: string): Promise<VaultInfo> {
    const id = this.#own(idOrPrefix);
    this.#options.paused = false;
    if (!this.#running) await this.#join();
    return this.info(id);
  }

  /** Only the own vault: it says goodbye and leaves (pause). */
  async stopVault(idOrPrefix: string): Promise<VaultInfo> {
    const id = this.#own(idOrPrefix);
    this.#options.paused = true;
    await this.#leave();
    this.#problem = 'your vault is paused';
    return this.info(id);
  }

  killVault(): Promise<VaultInfo> {
    return othersVaults();
  }

  async setDonated(idOrPrefix: string, bytes: number): Promise<VaultInfo> {
    const id = this.#own(idOrPrefix);
    await (this.vault(id) ?? fail('unavailable', 'your vault is not on the network')).setDonated(bytes);
    return this.info(id);
  }

  async chunkRecord(chunk: Name): Promise<ChunkRecord | null> {
    return (await this.#observer.read(chunk, { type: 'dm.info', chunk })).record;
  }

  closest(target: Name, count: number): Name[] {
    return this.#running?.network.view.closest(target, count) ?? [];
  }

  underReplicated(): number {
    const running = this.#running;
    if (!running) return 0;
    const offline = running.network.peers().filter((p) => !p.online).map((p) => fromHex(p.vault));
    return running.vault.dataManager.underReplicated(offline, (name) => this.isOnline(name)).length;
  }

  async settled(): Promise<void> {
    await this.#running?.vault.settled();
  }

  peers(): Peers {
    const running = this.#running;
    return {
      mode: 'network',
      addresses: running?.network.addresses() ?? [],
      peers: running?.network.peers() ?? [],
      ...(this.#problem !== undefined && { problem: this.#problem }),
    };
  }

  async #join(): Promise<void> {
    const { dir, listen, bootstrap, mdns, events, log } = this.#options;
    try {
      this.#running = await startNetVault({ dir, listen, bootstrap, mdns, events, log, waitForBootstrap: false });
    } catch (error) {
      this.#problem = `could not listen on ${listen}: ${(error as Error).message}`;
      throw new SafeVaultError('unavailable', this.#problem);
    }
    this.#problem = undefined;
    const { vault, network } = this.#running;
    this.#id = vault.id;
    this.#stopWatching = network.view.onChange((change) => {
      const id = toHex(change.vault);
      events.emit(change.kind === 'joined' ? { type: 'vault.joined', vault: id } : { type: 'vault.left', vault: id, graceful: change.graceful });
    });
    log('info', `joined the network as vault ${vault.id.slice(0, 12)}, listening on ${network.addresses().join(' ')}`);
  }

  async #leave(): Promise<void> {
    const running = this.#running;
    if (!running) return;
    this.#running = undefined;
    this.#stopWatching();
    await running.leave();
  }

  #own(idOrPrefix: string): string {
    if (this.#id && this.#id.startsWith(idOrPrefix)) return this.#id;
    return othersVaultsNow();
  }
}

/** Where the own vault of a joined network keeps its data, under the app's data dir. */
export const joinedVaultDir = (dataDir: string): string => join(dataDir, 'joined-vault');

const OTHERS = 'on a joined network only your own vault runs here; the other vaults are run by their owners';
const othersVaultsNow = (): never => fail('bad-request', OTHERS);
const othersVaults = (): Promise<never> => Promise.reject(new SafeVaultError('bad-request', OTHERS));
