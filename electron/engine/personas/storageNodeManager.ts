/**
 * storage_node_manager: the group closest to a storage node keeps its account (donated space,
 * stored and lost bytes and counts, rank) and relays the data_manager group's puts and deletes to
 * it. Deletes for a node that is away wait here until it returns, so the bytes really go.
 */
import type { AccountBook, AccountRecord } from '../accounts.ts';
import { migrate } from '../db.ts';
import { fail, SafeVaultError } from '../../api/errors.ts';
import type { MessageOf, NodeAccount, RemovalReason, Reply } from '../messages.ts';
import { NAME_BYTES, toHex, type Name } from '../names.ts';
import type { VaultContext } from './context.ts';

const migrations = [
  `CREATE TABLE snm_account (node BLOB PRIMARY KEY, donated INTEGER NOT NULL, stored_bytes INTEGER NOT NULL,
     stored_count INTEGER NOT NULL, lost_bytes INTEGER NOT NULL, lost_count INTEGER NOT NULL, rank INTEGER NOT NULL) WITHOUT ROWID, STRICT;
   CREATE TABLE snm_pending_delete (node BLOB NOT NULL, chunk BLOB NOT NULL, reason TEXT NOT NULL,
     PRIMARY KEY (node, chunk)) WITHOUT ROWID, STRICT;`,
];

const ACCOUNT_FIELDS = ['donated', 'storedBytes', 'storedCount', 'lostBytes', 'lostCount', 'rank'] as const;
const REASONS: readonly RemovalReason[] = ['deleted', 'pruned'];

export class StorageNodeManager implements AccountBook {
  readonly persona = 'storage_node_manager';
  readonly #ctx: VaultContext;
  readonly #sql;

  constructor(ctx: VaultContext) {
    this.#ctx = ctx;
    migrate(ctx.db, this.persona, migrations);
    const db = ctx.db;
    this.#sql = {
      get: db.prepare<[Buffer], NodeAccount>(
        `SELECT donated, stored_bytes AS storedBytes, stored_count AS storedCount, lost_bytes AS lostBytes,
           lost_count AS lostCount, rank FROM snm_account WHERE node = ?`,
      ),
      all: db.prepare<[], NodeAccount & { node: Buffer }>(
        `SELECT node, donated, stored_bytes AS storedBytes, stored_count AS storedCount, lost_bytes AS lostBytes,
           lost_count AS lostCount, rank FROM snm_account`,
      ),
      count: db.prepare<[], number>('SELECT count(*) FROM snm_account').pluck(),
      upsert: db.prepare<[Buffer, number, number, number, number, number, number]>(
        `INSERT OR REPLACE INTO snm_account (node, donated, stored_bytes, stored_count, lost_bytes, lost_count, rank)
         VALUES (?, ?, ?, ?, ?, ?, ?)`,
      ),
      remove: db.prepare<[Buffer]>('DELETE FROM snm_account WHERE node = ?'),
      pending: db.prepare<[Buffer], { chunk: Buffer; reason: RemovalReason }>('SELECT chunk, reason FROM snm_pending_delete WHERE node = ?'),
      allPending: db.prepare<[], { node: Buffer; chunk: Buffer; reason: RemovalReason }>('SELECT node, chunk, reason FROM snm_pending_delete'),
      queue: db.prepare<[Buffer, Buffer, string]>('INSERT OR REPLACE INTO snm_pending_delete (node, chunk, reason) VALUES (?, ?, ?)'),
      dequeue: db.prepare<[Buffer, Buffer]>('DELETE FROM snm_pending_delete WHERE node = ? AND chunk = ?'),
      pendingOne: db.prepare<[Buffer, Buffer], string>('SELECT reason FROM snm_pending_delete WHERE node = ? AND chunk = ?').pluck(),
    };
  }

  /** Records held: one account per storage node this vault manages. */
  count(): number {
    return this.#sql.count.get()!;
  }

  account(node: Name): NodeAccount | undefined {
    return this.#sql.get.get(node);
  }

  /** A vault announces (or changes) the space it donates; only the vault itself may. A new vault starts at zero. */
  onRegister(from: Name, msg: MessageOf<'snm.register'>): Promise<Reply<'snm.register'>> {
    return this.#locked(from, async () => {
      const account = (await this.#accountOf(from)) ?? { donated: 0, storedBytes: 0, storedCount: 0, lostBytes: 0, lostCount: 0, rank: 0 };
      this.#save(from, { ...account, donated: msg.donated });
      this.#ctx.tombstones.clear(this.persona, 'account', from);
      return { donated: msg.donated };
    });
  }

  onAccount(msg: MessageOf<'snm.account'>): Reply<'snm.account'> {
    return this.account(msg.node) ?? null;
  }

  /** The data_manager group chose this node for a chunk: check its room, then hand it the bytes. */
  async onPut(msg: MessageOf<'snm.put'>): Promise<Reply<'snm.put'>> {
    return this.#locked(msg.node, async () => {
      const account = (await this.#accountOf(msg.node)) ?? noAccount(msg.node);
      if (account.storedBytes + msg.bytes.length > account.donated) {
        fail('no-space', `vault ${toHex(msg.node).slice(0, 12)} has no room for ${msg.bytes.length} more bytes`);
      }
      const { added } = await this.#ctx.transport.request(msg.node, { type: 'node.put', chunk: msg.chunk, bytes: msg.bytes, copy: msg.copy });
      // A delete still waiting for this node is overtaken by the new put: the node keeps (and is charged for) the chunk.
      const undeleted = this.#sql.dequeue.run(msg.node, msg.chunk).changes > 0;
      if (added || undeleted) this.#save(msg.node, { ...account, storedBytes: account.storedBytes + msg.bytes.length, storedCount: account.storedCount + 1 });
      return { stored: true };
    });
  }

  /** A chunk leaves a node: deleted by its owners, or pruned as a ninth holder (which downranks the node). */
  async onDelete(msg: MessageOf<'snm.delete'>): Promise<Reply<'snm.delete'>> {
    return this.#locked(msg.node, async () => {
      const account = await this.#accountOf(msg.node);
      if (account) {
        this.#save(msg.node, {
          ...account,
          storedBytes: Math.max(0, account.storedBytes - msg.size),
          storedCount: Math.max(0, account.storedCount - 1),
          rank: account.rank - (msg.reason === 'pruned' ? 1 : 0),
        });
      }
      this.#sql.queue.run(msg.node, msg.chunk, msg.reason);
      const delivered = await this.#deliverDelete(msg.node, msg.chunk, msg.reason);
      return { queued: !delivered };
    });
  }

  /** A node failed to produce a chunk it was given: count the loss against its rank. */
  onLost(msg: MessageOf<'snm.lost'>): Promise<Reply<'snm.lost'>> {
    return this.#locked(msg.node, async () => {
      const account = (await this.#accountOf(msg.node)) ?? noAccount(msg.node);
      const updated = {
        ...account,
        storedBytes: Math.max(0, account.storedBytes - msg.size),
        storedCount: Math.max(0, account.storedCount - 1),
        lostBytes: account.lostBytes + msg.size,
        lostCount: account.lostCount + 1,
        rank: account.rank - 1,
      };
      this.#save(msg.node, updated);
      return { rank: updated.rank };
    });
  }

  #locked<T>(node: Name, work: () => Promise<T>): Promise<T> {
    return this.#ctx.locks.run(this.lockKey('account', node), work);
  }

  /** The node's account, pulled from the group first if this member lacks it. */
  async #accountOf(node: Name): Promise<NodeAccount | undefined> {
    return this.account(node) ?? ((await this.#ctx.pull(this, 'account', node)) ? this.account(node) : undefined);
  }

  /** A node came back: send it the deletes that waited for it. */
  async onNodeJoined(node: Name): Promise<void> {
    if (!this.#ctx.groups.members(node, node).some((m) => m.equals(this.#ctx.self))) return;
    await Promise.all(this.#sql.pending.all(node).map(({ chunk, reason }) => this.#deliverDelete(node, chunk, reason)));
  }

  async #deliverDelete(node: Name, chunk: Name, reason: RemovalReason): Promise<boolean> {
    if (!this.#ctx.routing.isOnline(node)) return false;
    try {
      await this.#ctx.transport.request(node, { type: 'node.delete', chunk, reason });
      this.#sql.dequeue.run(node, chunk);
      return true;
    } catch {
      return false; // stays queued until the node returns
    }
  }

  #save(node: Name, a: NodeAccount): void {
    this.#sql.upsert.run(node, a.donated, a.storedBytes, a.storedCount, a.lostBytes, a.lostCount, a.rank);
  }

  // --- account transfer ---

  *records(): Iterable<AccountRecord> {
    for (const { node, ...account } of this.#sql.all.iterate()) {
      yield { kind: 'account', key: node, group: node, exclude: node, value: encodeAccount(account) };
    }
    for (const { node, chunk, reason } of this.#sql.allPending.iterate()) {
      yield { kind: 'pending', key: Buffer.concat([node, chunk]), group: node, exclude: node, value: Buffer.from(reason) };
    }
  }

  placeOf(kind: string, key: Buffer): { group: Name; exclude: Name } | undefined {
    if (kind === 'account' && key.length === NAME_BYTES) return { group: key, exclude: key };
    if (kind === 'pending' && key.length === 2 * NAME_BYTES) {
      const node = key.subarray(0, NAME_BYTES);
      return { group: node, exclude: node };
    }
    return undefined;
  }

  read(kind: string, key: Buffer): Buffer | null {
    if (!this.placeOf(kind, key)) return null;
    if (kind === 'account') {
      const account = this.account(key);
      return account ? encodeAccount(account) : null;
    }
    const reason = this.#sql.pendingOne.get(key.subarray(0, NAME_BYTES), key.subarray(NAME_BYTES));
    return reason === undefined ? null : Buffer.from(reason);
  }

  /** One lock per node: its account and its pending deletes change together. */
  lockKey(_kind: string, key: Buffer): string {
    return `snm:${toHex(key.subarray(0, NAME_BYTES))}`;
  }

  adopt(kind: string, key: Buffer, value: Buffer | null): void {
    if (kind === 'account') {
      if (value === null) this.#sql.remove.run(key);
      else this.#save(key, decodeAccount(value));
    } else if (kind === 'pending') {
      const [node, chunk] = [key.subarray(0, NAME_BYTES), key.subarray(NAME_BYTES)];
      if (value === null) this.#sql.dequeue.run(node, chunk);
      else this.#sql.queue.run(node, chunk, decodeReason(value));
    }
  }

  drop(kind: string, key: Buffer): void {
    this.adopt(kind, key, null);
  }
}

function encodeAccount(account: NodeAccount): Buffer {
  const bytes = Buffer.alloc(8 * ACCOUNT_FIELDS.length);
  ACCOUNT_FIELDS.forEach((field, i) => bytes.writeBigInt64BE(BigInt(account[field]), 8 * i));
  return bytes;
}

function decodeAccount(bytes: Buffer): NodeAccount {
  if (bytes.length !== 8 * ACCOUNT_FIELDS.length) throw new SafeVaultError('bad-request', 'malformed storage_node_manager account');
  return Object.fromEntries(ACCOUNT_FIELDS.map((field, i) => [field, Number(bytes.readBigInt64BE(8 * i))])) as unknown as NodeAccount;
}

function decodeReason(bytes: Buffer): RemovalReason {
  const reason = bytes.toString() as RemovalReason;
  if (!REASONS.includes(reason)) throw new SafeVaultError('bad-request', 'malformed pending delete');
  return reason;
}

const noAccount = (node: Name): never => fail('not-found', `no storage_node_manager account for vault ${toHex(node).slice(0, 12)}`);
