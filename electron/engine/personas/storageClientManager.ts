/**
 * storage_client_manager: the group closest to a client keeps, per client, each chunk's reference
 * count and size (bytes stored follow from them), and the client's allowance. Only a chunk new to
 * the client goes down to the data_manager group; a delete from a client with no record is refused.
 */
import type { AccountBook, AccountRecord } from '../accounts.ts';
import { verifyRequest } from '../clientRequest.ts';
import { DEFAULT_ALLOWANCE_BYTES, REQUEST_WINDOW_MS } from '../constants.ts';
import { migrate } from '../db.ts';
import { fail, SafeVaultError } from '../../api/errors.ts';
import type { MessageOf, Reply } from '../messages.ts';
import { NAME_BYTES, toHex, type Name } from '../names.ts';
import type { VaultContext } from './context.ts';
import { checkChunk } from './storageNode.ts';

const migrations = [
  `CREATE TABLE cm_chunk (client BLOB NOT NULL, chunk BLOB NOT NULL, refcount INTEGER NOT NULL, size INTEGER NOT NULL,
     PRIMARY KEY (client, chunk)) WITHOUT ROWID, STRICT;`,
];

export class StorageClientManager implements AccountBook {
  readonly persona = 'storage_client_manager';
  readonly #ctx: VaultContext;
  readonly #sql;
  /** Request ids seen within the replay window: a signed request counts once. */
  readonly #seen = new Map<string, number>();

  constructor(ctx: VaultContext) {
    this.#ctx = ctx;
    migrate(ctx.db, this.persona, migrations);
    const db = ctx.db;
    this.#sql = {
      get: db.prepare<[Buffer, Buffer], { refcount: number; size: number }>('SELECT refcount, size FROM cm_chunk WHERE client = ? AND chunk = ?'),
      set: db.prepare<[Buffer, Buffer, number, number]>('INSERT OR REPLACE INTO cm_chunk (client, chunk, refcount, size) VALUES (?, ?, ?, ?)'),
      remove: db.prepare<[Buffer, Buffer]>('DELETE FROM cm_chunk WHERE client = ? AND chunk = ?'),
      stored: db.prepare<[Buffer], number>('SELECT coalesce(sum(size), 0) FROM cm_chunk WHERE client = ?').pluck(),
      all: db.prepare<[], { client: Buffer; chunk: Buffer; refcount: number; size: number }>('SELECT client, chunk, refcount, size FROM cm_chunk'),
      count: db.prepare<[], number>('SELECT count(*) FROM cm_chunk').pluck(),
    };
  }

  /** Records held: one per (client, chunk) reference account. */
  count(): number {
    return this.#sql.count.get()!;
  }

  onClientPut(msg: MessageOf<'client.put'>): Promise<Reply<'client.put'>> {
    const request = this.#accept(msg.request, 'put');
    checkChunk(request.chunk, msg.bytes);
    if (request.size !== msg.bytes.length) fail('bad-request', 'request size does not match the chunk');
    const { client, chunk } = request;
    return this.#locked(client, chunk, async () => {
      const row = await this.#rowOf(client, chunk);
      if (row) {
        const info = await this.#ctx.groups.ask(chunk, { type: 'dm.info', chunk });
        this.#sql.set.run(client, chunk, row.refcount + 1, row.size);
        return { refcount: row.refcount + 1, subscribers: info?.subscribers ?? 0, holders: info?.holders ?? [] };
      }
      if (this.#sql.stored.get(client)! + msg.bytes.length > DEFAULT_ALLOWANCE_BYTES) {
        fail('over-allowance', `storing ${msg.bytes.length} more bytes would exceed the client's allowance`);
      }
      const down = await this.#ctx.groups.ask(chunk, { type: 'dm.put', client, requestId: request.id, chunk, bytes: msg.bytes });
      this.#sql.set.run(client, chunk, 1, msg.bytes.length);
      this.#ctx.tombstones.clear(this.persona, 'chunk', Buffer.concat([client, chunk]));
      return { refcount: 1, subscribers: down.subscribers, holders: down.holders };
    });
  }

  onClientDelete(msg: MessageOf<'client.delete'>): Promise<Reply<'client.delete'>> {
    const { client, chunk, id } = this.#accept(msg.request, 'delete');
    return this.#locked(client, chunk, async () => {
      const row = await this.#rowOf(client, chunk);
      if (!row) {
        fail('non-owner', `delete refused: client ${toHex(client).slice(0, 12)} has no record of chunk ${toHex(chunk).slice(0, 12)} (delete from non-owner)`);
      }
      if (row!.refcount > 1) {
        const info = await this.#ctx.groups.ask(chunk, { type: 'dm.info', chunk });
        this.#sql.set.run(client, chunk, row!.refcount - 1, row!.size);
        return { refcount: row!.refcount - 1, subscribers: info?.subscribers ?? 0, deleted: false };
      }
      const down = await this.#ctx.groups.ask(chunk, { type: 'dm.delete', client, requestId: id, chunk });
      this.#sql.remove.run(client, chunk);
      this.#ctx.tombstones.add(this.persona, 'chunk', Buffer.concat([client, chunk]));
      return { refcount: 0, subscribers: down.subscribers, deleted: down.subscribers === 0 };
    });
  }

  /** Reference count of `chunk` for `client` (0: no record). */
  refcount(client: Name, chunk: Name): number {
    return this.#sql.get.get(client, chunk)?.refcount ?? 0;
  }

  #accept(request: MessageOf<'client.put'>['request'], op: 'put' | 'delete') {
    const instruction = verifyRequest(request);
    if (instruction.op !== op) fail('bad-request', `expected a signed ${op} request`);
    if (!this.#ctx.groups.isMember(instruction.client, this.#ctx.self)) fail('bad-request', 'this vault does not manage that client');
    const now = Date.now();
    // Insertion order is arrival order, so expired ids are all at the front.
    for (const [id, at] of this.#seen) {
      if (now - at <= 2 * REQUEST_WINDOW_MS) break;
      this.#seen.delete(id);
    }
    if (this.#seen.has(instruction.id)) fail('conflict', 'request already handled (replayed)');
    this.#seen.set(instruction.id, now);
    return instruction;
  }

  #locked<T>(client: Name, chunk: Name, work: () => Promise<T>): Promise<T> {
    return this.#ctx.locks.run(this.lockKey('chunk', Buffer.concat([client, chunk])), work);
  }

  /** The client's record of the chunk, pulled from the group first if this member lacks it. */
  async #rowOf(client: Name, chunk: Name): Promise<{ refcount: number; size: number } | undefined> {
    const local = this.#sql.get.get(client, chunk);
    if (local || !(await this.#ctx.pull(this, 'chunk', Buffer.concat([client, chunk])))) return local;
    return this.#sql.get.get(client, chunk);
  }

  // --- account transfer ---

  *records(): Iterable<AccountRecord> {
    for (const { client, chunk, refcount, size } of this.#sql.all.iterate()) {
      yield { kind: 'chunk', key: Buffer.concat([client, chunk]), group: client, value: encodeRow(refcount, size) };
    }
  }

  read(kind: string, key: Buffer): Buffer | null {
    const row = kind === 'chunk' && key.length === 2 * NAME_BYTES ? this.#sql.get.get(key.subarray(0, NAME_BYTES), key.subarray(NAME_BYTES)) : undefined;
    return row ? encodeRow(row.refcount, row.size) : null;
  }

  lockKey(_kind: string, key: Buffer): string {
    return `cm:${toHex(key)}`;
  }

  placeOf(kind: string, key: Buffer): { group: Name } | undefined {
    return kind === 'chunk' && key.length === 2 * NAME_BYTES ? { group: key.subarray(0, NAME_BYTES) } : undefined;
  }

  adopt(kind: string, key: Buffer, value: Buffer | null): void {
    if (kind !== 'chunk') return;
    const [client, chunk] = [key.subarray(0, NAME_BYTES), key.subarray(NAME_BYTES)];
    if (value === null) return void this.#sql.remove.run(client, chunk);
    if (value.length !== 8) throw new SafeVaultError('bad-request', 'malformed storage_client_manager record');
    this.#sql.set.run(client, chunk, value.readUInt32BE(0), value.readUInt32BE(4));
  }

  drop(kind: string, key: Buffer): void {
    this.adopt(kind, key, null);
  }
}

function encodeRow(refcount: number, size: number): Buffer {
  const value = Buffer.alloc(8);
  value.writeUInt32BE(refcount, 0);
  value.writeUInt32BE(size, 4);
  return value;
}
