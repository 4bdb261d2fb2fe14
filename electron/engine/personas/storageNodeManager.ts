/**
 * storage_node_manager: the group closest to a storage node keeps its account (donated space,
 * stored and lost bytes and counts, rank). The node reports what it stores and releases; a chunk's
 * data_manager reports a prune (which downranks it) or a loss. Each report is one group decision
 * keyed by its operation id, so a repeated report counts once.
 */
import { migrate } from '../db.ts';
import { SafeVaultError } from '../../api/errors.ts';
import type { MessageOf, NodeAccount, NodeChange, Reply } from '../messages.ts';
import { NAME_BYTES, type Name, type NameRange } from '../names.ts';
import type { RecordBook } from '../replica.ts';
import type { VaultContext } from './context.ts';

const migrations = [
  `CREATE TABLE snm_account (node BLOB PRIMARY KEY, donated INTEGER NOT NULL, stored_bytes INTEGER NOT NULL,
     stored_count INTEGER NOT NULL, lost_bytes INTEGER NOT NULL, lost_count INTEGER NOT NULL, rank INTEGER NOT NULL) WITHOUT ROWID, STRICT;
   CREATE TABLE snm_pending_delete (node BLOB NOT NULL, chunk BLOB NOT NULL, reason TEXT NOT NULL,
     PRIMARY KEY (node, chunk)) WITHOUT ROWID, STRICT;`,
  // Deletes no longer wait here: a node sweeps what no data_manager lists (storageNode.ts).
  `ALTER TABLE snm_account ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
   DROP TABLE snm_pending_delete;`,
];

const ACCOUNT_FIELDS = ['donated', 'storedBytes', 'storedCount', 'lostBytes', 'lostCount', 'rank'] as const;
const EMPTY: NodeAccount = { donated: 0, storedBytes: 0, storedCount: 0, lostBytes: 0, lostCount: 0, rank: 0 };

export class StorageNodeManager implements RecordBook {
  readonly persona = 'storage_node_manager';
  readonly #ctx: VaultContext;
  readonly #sql;

  constructor(ctx: VaultContext) {
    this.#ctx = ctx;
    migrate(ctx.db, this.persona, migrations);
    const db = ctx.db;
    const columns = `donated, stored_bytes AS storedBytes, stored_count AS storedCount, lost_bytes AS lostBytes, lost_count AS lostCount, rank, version`;
    this.#sql = {
      get: db.prepare<[Buffer], NodeAccount & { version: number }>(`SELECT ${columns} FROM snm_account WHERE node = ?`),
      all: db.prepare<[Buffer, Buffer], NodeAccount & { node: Buffer; version: number }>(`SELECT node, ${columns} FROM snm_account WHERE node BETWEEN ? AND ?`),
      count: db.prepare<[], number>('SELECT count(*) FROM snm_account').pluck(),
      upsert: db.prepare<[Buffer, number, number, number, number, number, number, number]>(
        `INSERT OR REPLACE INTO snm_account (node, donated, stored_bytes, stored_count, lost_bytes, lost_count, rank, version)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      remove: db.prepare<[Buffer]>('DELETE FROM snm_account WHERE node = ?'),
    };
  }

  /** Records held: one account per storage node this vault manages. */
  count(): number {
    return this.#sql.count.get()!;
  }

  account(node: Name): NodeAccount | undefined {
    const row = this.#sql.get.get(node);
    if (!row) return undefined;
    const { version: _version, ...account } = row;
    return account;
  }

  /** A vault announces (or changes) the space it donates; only the vault itself may. A new vault starts at zero. */
  onRegister(from: Name, msg: MessageOf<'snm.register'>): Promise<Reply<'snm.register'>> {
    return this.#ctx.replicas.decide(this, from, msg.op, async (current) => {
      const account = current ? decodeAccount(current) : EMPTY;
      return { value: encodeAccount({ ...account, donated: msg.donated }), reply: { donated: msg.donated } };
    });
  }

  onAccount(msg: MessageOf<'snm.account'>): Reply<'snm.account'> {
    const { version } = this.#ctx.replicas.state(this, msg.node);
    return { version, account: this.account(msg.node) ?? null };
  }

  /**
   * What changed on a node's disk: stored and released from the node itself (every change it queued
   * since its last report, applied in order), pruned and lost from the chunk's data_manager group
   * (the vault checked the sender of each).
   */
  onReport(msg: MessageOf<'snm.report'>): Promise<Reply<'snm.report'>> {
    return this.#ctx.replicas.decide(this, msg.node, msg.op, async (current) => {
      const next = msg.changes.reduce(applyChange, current ? decodeAccount(current) : EMPTY);
      return { value: encodeAccount(next), reply: { rank: next.rank } };
    });
  }

  // --- the record book ---

  placeOf(key: Buffer): { group: Name; exclude: Name } | undefined {
    return key.length === NAME_BYTES ? { group: key, exclude: key } : undefined;
  }

  load(key: Buffer): { version: number; value: Buffer } | undefined {
    const row = this.#sql.get.get(key);
    return row && { version: row.version, value: encodeAccount(row) };
  }

  store(key: Buffer, version: number, value: Buffer | null): void {
    if (value === null) return void this.#sql.remove.run(key);
    const a = decodeAccount(value);
    this.#sql.upsert.run(key, a.donated, a.storedBytes, a.storedCount, a.lostBytes, a.lostCount, a.rank, version);
  }

  *entries(range: NameRange, wanted: (key: Buffer) => boolean): Iterable<{ key: Buffer; version: number; value: Buffer }> {
    for (const row of this.#sql.all.iterate(range.from, range.to)) {
      if (wanted(row.node)) yield { key: row.node, version: row.version, value: encodeAccount(row) };
    }
  }
}

function applyChange(a: NodeAccount, { size, change }: { size: number; change: NodeChange }): NodeAccount {
  switch (change) {
    case 'stored':
      return { ...a, storedBytes: a.storedBytes + size, storedCount: a.storedCount + 1 };
    case 'released':
      return { ...a, storedBytes: Math.max(0, a.storedBytes - size), storedCount: Math.max(0, a.storedCount - 1) };
    case 'pruned':
      return { ...a, rank: a.rank - 1 };
    case 'lost':
      return { ...a, lostBytes: a.lostBytes + size, lostCount: a.lostCount + 1, rank: a.rank - 1 };
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
