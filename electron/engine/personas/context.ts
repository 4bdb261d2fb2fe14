/** What every persona of one vault shares: its name, its database, and its links to the network. */
import type { Clock } from '../clock.ts';
import type { Db } from '../db.ts';
import type { EventBus } from '../events.ts';
import type { Groups } from '../group.ts';
import type { KeyedLock } from '../keyedLock.ts';
import type { Name } from '../names.ts';
import type { Replicas } from '../replica.ts';
import type { Network } from '../transport.ts';

export interface VaultContext {
  self: Name;
  db: Db;
  network: Network;
  clock: Clock;
  groups: Groups;
  locks: KeyedLock;
  replicas: Replicas;
  events: EventBus;
}
