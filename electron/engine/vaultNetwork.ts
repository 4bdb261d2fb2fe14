/**
 * What the engine needs of the network it runs: the local network (many vaults in this process,
 * network.ts) or a joined one (the user's one vault on libp2p, net/joinedNetwork.ts). The engine
 * is written against this alone, so every API call works the same in both modes.
 */
import type { Peers, VaultInfo } from '../api/contract.ts';
import type { ChunkRecord } from './messages.ts';
import type { Name } from './names.ts';
import type { Network } from './transport.ts';
import type { Vault } from './vault.ts';

export interface VaultNetwork {
  /** Brings the network up; a new local network creates `initial` vaults. */
  start(initial: number): Promise<void>;
  /** Takes this process's vaults off the network (a joined vault says goodbye). */
  close(): Promise<void>;
  /** The network as `name` sees it, for a storage client. */
  networkOf(name: Name): Network;
  /** The own vault: the first vault of a local network, the only one of a joined network. */
  first(): string | undefined;
  /** The vaults this process runs now. */
  running(): Vault[];
  vault(id: string): Vault | undefined;
  /** Every vault this process knows, with its account as its storage_node_manager group has it. */
  list(): Promise<VaultInfo[]>;
  info(id: string): Promise<VaultInfo>;
  isOnline(name: Name): boolean;
  add(donated?: number): Promise<VaultInfo>;
  startVault(idOrPrefix: string): Promise<VaultInfo>;
  stopVault(idOrPrefix: string): Promise<VaultInfo>;
  killVault(idOrPrefix: string): Promise<VaultInfo>;
  setDonated(idOrPrefix: string, bytes: number): Promise<VaultInfo>;
  /** A chunk's record as its data_manager group agrees on it. */
  chunkRecord(chunk: Name): Promise<ChunkRecord | null>;
  /** The `count` online vaults closest to `target`. */
  closest(target: Name, count: number): Name[];
  /** Chunks with fewer than MIN_HOLDERS online holders, as this process's data managers see them. */
  underReplicated(): number;
  /** Resolves when this process's vaults have handled every membership change so far. */
  settled(): Promise<void>;
  peers(): Peers;
}
