/** What every persona of one vault shares: its name, its database, and its links to the network. */
import type { AccountBook, Tombstones } from '../accounts.ts';
import type { Db } from '../db.ts';
import type { EventBus } from '../events.ts';
import type { Groups } from '../group.ts';
import type { KeyedLock } from '../keyedLock.ts';
import type { Name } from '../names.ts';
import type { RoutingTable, Transport } from '../transport.ts';

export interface VaultContext {
  self: Name;
  db: Db;
  routing: RoutingTable;
  transport: Transport;
  groups: Groups;
  locks: KeyedLock;
  tombstones: Tombstones;
  events: EventBus;
  /**
   * Heals a record this vault lacks (it joined the group while a transfer could not agree): adopts
   * the value a quorum of the group holds. Resolves to whether a record now exists here.
   */
  pull(book: AccountBook, kind: string, key: Buffer): Promise<boolean>;
}
