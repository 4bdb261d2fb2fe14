/**
 * One vault: its identity, its SQLite file, its chunk files, and the four personas it performs.
 * Messages are dispatched here; messages from another group are acted on only with a quorum.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Tombstones, type AccountBook, type AccountRecord } from './accounts.ts';
import { GROUP_SIZE } from './constants.ts';
import { migrate, openDatabase, type Db } from './db.ts';
import { fail } from '../api/errors.ts';
import type { EventBus } from './events.ts';
import { Groups } from './group.ts';
import { createIdentity, loadIdentity } from './identity.ts';
import { KeyedLock } from './keyedLock.ts';
import type { Message, MessageOf, Reply, TransferredRecord } from './messages.ts';
import { closest, sha256, toHex, type Name } from './names.ts';
import type { VaultContext } from './personas/context.ts';
import { DataManager } from './personas/dataManager.ts';
import { StorageClientManager } from './personas/storageClientManager.ts';
import { StorageNode } from './personas/storageNode.ts';
import { StorageNodeManager } from './personas/storageNodeManager.ts';
import { QuorumCollector } from './quorum.ts';
import type { Endpoint, MembershipChange, RoutingTable, Transport } from './transport.ts';

const migrations = [`CREATE TABLE vault_meta (key TEXT PRIMARY KEY, value BLOB NOT NULL) STRICT;`];

export interface VaultOptions {
  dir: string;
  routing: RoutingTable;
  transportFor: (self: Name) => Transport;
  events: EventBus;
  /** Bytes donated to the network; stored on first open, kept afterwards unless given again. */
  donated?: number;
  /** The identity (PKCS#8) of a new vault; an existing vault keeps its own. */
  identity?: Buffer;
}

export class Vault implements Endpoint {
  readonly name: Name;
  readonly id: string;
  readonly storageNode: StorageNode;
  readonly dataManager: DataManager;
  readonly storageNodeManager: StorageNodeManager;
  readonly storageClientManager: StorageClientManager;
  readonly #ctx: VaultContext;
  readonly #books: Map<string, AccountBook>;
  readonly #quorum = new QuorumCollector();
  readonly #stopWatching: () => void;
  #changes: Promise<void> = Promise.resolve();
  #closed = false;

  constructor(options: VaultOptions) {
    mkdirSync(options.dir, { recursive: true });
    const db = openDatabase(join(options.dir, 'vault.sqlite'));
    migrate(db, 'vault', migrations);
    const identity = loadOrCreate(db, 'identity', () => options.identity ?? createIdentity().secret);
    const donatedBytes = loadOrCreate(db, 'donated', () => encodeNumber(options.donated ?? 0), options.donated !== undefined);
    const self = loadIdentity(identity).name;
    this.name = self;
    this.id = toHex(self);
    const transport = options.transportFor(self);
    this.#ctx = {
      self,
      db,
      routing: options.routing,
      transport,
      groups: new Groups(options.routing, transport),
      locks: new KeyedLock(),
      tombstones: new Tombstones(db),
      events: options.events,
      pull: (book, kind, key) => this.#pull(book, kind, key),
    };
    this.storageNode = new StorageNode({ self, db, chunksDir: join(options.dir, 'chunks'), donated: decodeNumber(donatedBytes), events: options.events });
    this.dataManager = new DataManager(this.#ctx);
    this.storageNodeManager = new StorageNodeManager(this.#ctx);
    this.storageClientManager = new StorageClientManager(this.#ctx);
    this.#books = new Map<string, AccountBook>(
      [this.dataManager, this.storageNodeManager, this.storageClientManager].map((book) => [book.persona, book]),
    );
    // Changes are handled one at a time, in the order the routing table reports them.
    this.#stopWatching = options.routing.onChange((change) => {
      this.#changes = this.#changes.then(() => this.#onMembershipChange(change)).catch(() => undefined);
    });
  }

  /** Tells this vault's storage_node_manager group how much space it donates. */
  async register(): Promise<void> {
    await this.#ctx.groups.ask(this.name, { type: 'snm.register', donated: this.storageNode.donated }, this.name);
  }

  /** Changes the space this vault donates: kept in its meta, then told to its storage_node_manager group as at registration. */
  async setDonated(bytes: number): Promise<void> {
    loadOrCreate(this.#ctx.db, 'donated', () => encodeNumber(bytes), true);
    this.storageNode.donated = bytes;
    await this.register();
  }

  /** Records each persona holds in this vault's database. */
  records(): { storageClientManager: number; dataManager: number; storageNodeManager: number; storageNode: number } {
    return {
      storageClientManager: this.storageClientManager.count(),
      dataManager: this.dataManager.count(),
      storageNodeManager: this.storageNodeManager.count(),
      storageNode: this.storageNode.usage().count,
    };
  }

  /** Resolves when every membership change reported so far has been handled. */
  settled(): Promise<void> {
    return this.#changes;
  }

  /** Tops up any chunk this vault manages that has too few online holders (after a cold start). */
  async audit(): Promise<void> {
    await this.dataManager.auditAll();
  }

  receive(from: Name, message: Message): Promise<unknown> {
    if (this.#closed) fail('unavailable', `vault ${this.id.slice(0, 12)} is stopped`);
    return this.#dispatch(from, message);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#stopWatching();
    this.#quorum.clear();
    this.#ctx.db.close();
  }

  async #dispatch(from: Name, msg: Message): Promise<unknown> {
    const self = this.name;
    switch (msg.type) {
      case 'client.put':
        return this.storageClientManager.onClientPut(msg);
      case 'client.delete':
        return this.storageClientManager.onClientDelete(msg);
      case 'cm.refcount':
        return { refcount: this.storageClientManager.refcount(msg.client, msg.chunk) };
      case 'dm.put':
        return this.#fromGroup(from, msg.client, undefined, msg.chunk, `dm.put:${msg.requestId}:${toHex(msg.client)}:${toHex(msg.chunk)}`, () => this.dataManager.onPut(msg));
      case 'dm.delete':
        return this.#fromGroup(from, msg.client, undefined, msg.chunk, `dm.delete:${msg.requestId}:${toHex(msg.client)}:${toHex(msg.chunk)}`, () => this.dataManager.onDelete(msg));
      case 'dm.info':
        return this.dataManager.onInfo(msg);
      case 'dm.badHolder':
        return this.dataManager.onBadHolder(msg);
      case 'snm.put':
        return this.#toManagerOf(from, msg, `snm.put:${toHex(msg.chunk)}:${msg.copy}`, () => this.storageNodeManager.onPut(msg));
      case 'snm.delete':
        return this.#toManagerOf(from, msg, `snm.delete:${toHex(msg.chunk)}:${msg.reason}:${msg.size}`, () => this.storageNodeManager.onDelete(msg));
      case 'snm.lost':
        return this.#toManagerOf(from, msg, `snm.lost:${toHex(msg.chunk)}:${msg.size}`, () => this.storageNodeManager.onLost(msg));
      case 'snm.register':
        return this.storageNodeManager.onRegister(from, msg);
      case 'snm.account':
        return this.storageNodeManager.onAccount(msg);
      case 'node.put':
        return this.#fromGroup(from, self, self, undefined, `node.put:${toHex(msg.chunk)}:${msg.copy}`, () => this.storageNode.onPut(msg));
      case 'node.delete':
        return this.#fromGroup(from, self, self, undefined, `node.delete:${toHex(msg.chunk)}:${msg.reason}`, () => this.storageNode.onDelete(msg));
      case 'node.get':
        return this.storageNode.onGet(msg);
      case 'account.transfer':
        return this.#onTransfer(from, msg);
      case 'account.read':
        return this.#onRead(from, msg);
    }
  }

  /** A data_manager group's message to the storage_node_manager group of `msg.node`. */
  #toManagerOf<R>(from: Name, msg: { node: Name; chunk: Name }, key: string, act: () => Promise<R>): Promise<R> {
    if (!this.#ctx.groups.isMember(msg.node, this.name, msg.node)) fail('bad-request', `this vault does not manage vault ${toHex(msg.node).slice(0, 12)}`);
    return this.#fromGroup(from, msg.chunk, undefined, undefined, `${key}:${toHex(msg.node)}`, act);
  }

  /**
   * Acts once a quorum of the group of `senderGroup` (leaving out `exclude`) sent the same message.
   * `receiverGroup`, when given, is the group this vault must belong to for the message to be its business.
   */
  #fromGroup<R>(from: Name, senderGroup: Name, exclude: Name | undefined, receiverGroup: Name | undefined, key: string, act: () => Promise<R>): Promise<R> {
    const groups = this.#ctx.groups;
    if (!groups.isMember(senderGroup, from, exclude)) fail('unauthorized', `vault ${toHex(from).slice(0, 12)} may not speak for that group`);
    if (receiverGroup && !groups.isMember(receiverGroup, this.name)) fail('bad-request', 'this vault is not in the group that message is for');
    return this.#quorum.submit(key, toHex(from), groups.threshold(senderGroup, exclude), act);
  }

  // --- churn ---

  async #onMembershipChange(change: MembershipChange): Promise<void> {
    if (this.#closed) return;
    if (change.vault.equals(this.name)) {
      if (change.kind === 'joined') this.#dropForeign(change.after);
      return;
    }
    if (change.kind === 'left') {
      await this.dataManager.onHolderLost(change.vault);
    } else {
      await this.dataManager.onHolderJoined(change.vault);
      await this.storageNodeManager.onNodeJoined(change.vault);
    }
    if (!this.#closed) await this.#transferAccounts(change);
  }

  /** Old members hand each record to the vaults newly responsible for it, and forget what is no longer theirs. */
  async #transferAccounts(change: MembershipChange): Promise<void> {
    const batches = new Map<string, { to: Name; records: TransferredRecord[] }>();
    const forget: [AccountBook, AccountRecord][] = [];
    for (const book of this.#books.values()) {
      for (const record of this.#ctx.tombstones.recordsOf(book)) {
        const before = closest(record.group, change.before, GROUP_SIZE, record.exclude);
        if (!before.some((m) => m.equals(this.name))) continue;
        const after = closest(record.group, change.after, GROUP_SIZE, record.exclude);
        for (const member of after) {
          if (before.some((m) => m.equals(member))) continue;
          const batch = batches.get(toHex(member)) ?? { to: member, records: [] };
          batch.records.push({ persona: book.persona, kind: record.kind, key: record.key, value: record.value });
          batches.set(toHex(member), batch);
        }
        if (!after.some((m) => m.equals(this.name))) forget.push([book, record]);
      }
    }
    await Promise.allSettled([...batches.values()].map(({ to, records }) => this.#ctx.transport.request(to, { type: 'account.transfer', records })));
    for (const [book, record] of forget) this.#forget(book, record);
  }

  /** A vault coming back forgets records whose groups it is no longer in. */
  #dropForeign(online: readonly Name[]): void {
    for (const book of this.#books.values()) {
      const foreign = [...this.#ctx.tombstones.recordsOf(book)].filter(
        (record) => !closest(record.group, online, GROUP_SIZE, record.exclude).some((m) => m.equals(this.name)),
      );
      for (const record of foreign) this.#forget(book, record);
    }
  }

  #forget(book: AccountBook, record: AccountRecord): void {
    if (record.value === null) this.#ctx.tombstones.clear(book.persona, record.kind, record.key);
    else book.drop(record.kind, record.key);
  }

  /** Adopts each transferred record once a quorum of its old group sent the same value. */
  #onTransfer(from: Name, msg: MessageOf<'account.transfer'>): Reply<'account.transfer'> {
    let accepted = 0;
    for (const { persona, kind, key, value } of msg.records) {
      const book = this.#books.get(persona);
      const place = book?.placeOf(kind, key);
      if (!book || !place) continue;
      const groups = this.#ctx.groups;
      if (!groups.isMember(place.group, from, place.exclude) || !groups.isMember(place.group, this.name, place.exclude)) continue;
      const digest = value ? toHex(sha256(value)) : 'deleted';
      const adopt = () => {
        accepted++;
        return this.#adopt(book, kind, key, value);
      };
      this.#quorum.submit(`xfer:${persona}:${kind}:${toHex(key)}:${digest}`, toHex(from), groups.threshold(place.group, place.exclude), adopt).catch(() => undefined);
    }
    if (accepted > 0) this.#ctx.events.emit({ type: 'account.transferred', vault: this.id, records: accepted });
    return { accepted };
  }

  /** Replaces a record under the persona's own lock, so it never lands in the middle of an operation on it. */
  #adopt(book: AccountBook, kind: string, key: Buffer, value: Buffer | null): Promise<void> {
    return this.#ctx.locks.run(book.lockKey(kind, key), async () => {
      book.adopt(kind, key, value);
      if (value) this.#ctx.tombstones.clear(book.persona, kind, key);
      else this.#ctx.tombstones.add(book.persona, kind, key);
    });
  }

  /** Members of a record's group may read it, to heal a copy they lack. */
  #onRead(from: Name, msg: MessageOf<'account.read'>): Reply<'account.read'> {
    const book = this.#books.get(msg.persona);
    const place = book?.placeOf(msg.kind, msg.key);
    if (!book || !place) fail('bad-request', `no such record kind: ${msg.persona}/${msg.kind}`);
    if (!this.#ctx.groups.isMember(place!.group, from, place!.exclude)) fail('unauthorized', 'only members of its group may read a record');
    return { value: book!.read(msg.kind, msg.key) };
  }

  /** Called with the persona's lock held: adopts what a quorum of the group holds (it answers as one of them). */
  async #pull(book: AccountBook, kind: string, key: Buffer): Promise<boolean> {
    const place = book.placeOf(kind, key);
    if (!place) return false;
    const { value } = await this.#ctx.groups.ask(place.group, { type: 'account.read', persona: book.persona, kind, key }, place.exclude);
    if (!value) return false;
    book.adopt(kind, key, value);
    this.#ctx.tombstones.clear(book.persona, kind, key);
    return true;
  }
}

function loadOrCreate(db: Db, key: string, create: () => Buffer, replace = false): Buffer {
  const row = db.prepare<[string], Buffer>('SELECT value FROM vault_meta WHERE key = ?').pluck().get(key);
  if (row && !replace) return row;
  const value = create();
  db.prepare('INSERT OR REPLACE INTO vault_meta (key, value) VALUES (?, ?)').run(key, value);
  return value;
}

const encodeNumber = (n: number): Buffer => Buffer.from(String(n));
const decodeNumber = (b: Buffer): number => Number(b.toString());
