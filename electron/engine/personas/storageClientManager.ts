/**
 * storage_client_manager: the group closest to a client keeps, per client, each chunk's reference
 * count and size (bytes stored follow from them). Only a chunk new to the client goes down to the
 * data_manager group, and only the client's last release of it; a delete from a client with no
 * record is refused. Each change is one group decision keyed by the client's signed request, so a
 * retried or duplicated request counts once.
 */
import { deadlineOf, verifyRequest } from '../clientRequest.ts';
import { DEFAULT_ALLOWANCE_BYTES } from '../constants.ts';
import { migrate } from '../db.ts';
import { fail, SafeVaultError } from '../../api/errors.ts';
import type { MessageOf, Reply, SignedRequest } from '../messages.ts';
import { EVERY_NAME, NAME_BYTES, toHex, type Name, type NameRange } from '../names.ts';
import type { RecordBook } from '../replica.ts';
import type { VaultContext } from './context.ts';

const migrations = [
  `CREATE TABLE cm_chunk (client BLOB NOT NULL, chunk BLOB NOT NULL, refcount INTEGER NOT NULL, size INTEGER NOT NULL,
     PRIMARY KEY (client, chunk)) WITHOUT ROWID, STRICT;`,
  `ALTER TABLE cm_chunk ADD COLUMN version INTEGER NOT NULL DEFAULT 1;`,
];

export class StorageClientManager implements RecordBook {
  readonly persona = 'storage_client_manager';
  readonly #ctx: VaultContext;
  readonly #sql;

  constructor(ctx: VaultContext) {
    this.#ctx = ctx;
    migrate(ctx.db, this.persona, migrations);
    const db = ctx.db;
    this.#sql = {
      get: db.prepare<[Buffer, Buffer], { refcount: number; size: number; version: number }>('SELECT refcount, size, version FROM cm_chunk WHERE client = ? AND chunk = ?'),
      set: db.prepare<[Buffer, Buffer, number, number, number]>('INSERT OR REPLACE INTO cm_chunk (client, chunk, refcount, size, version) VALUES (?, ?, ?, ?, ?)'),
      remove: db.prepare<[Buffer, Buffer]>('DELETE FROM cm_chunk WHERE client = ? AND chunk = ?'),
      stored: db.prepare<[Buffer], number>('SELECT coalesce(sum(size), 0) FROM cm_chunk WHERE client = ?').pluck(),
      all: db.prepare<[Buffer, Buffer], { client: Buffer; chunk: Buffer; refcount: number; size: number; version: number }>(
        'SELECT client, chunk, refcount, size, version FROM cm_chunk WHERE client BETWEEN ? AND ?',
      ),
      count: db.prepare<[], number>('SELECT count(*) FROM cm_chunk').pluck(),
    };
  }

  /** Records held: one per (client, chunk) reference account. */
  count(): number {
    return this.#sql.count.get()!;
  }

  onClientPut(msg: MessageOf<'client.put'>): Promise<Reply<'client.put'>> {
    const request = this.#accept(msg.request, 'put');
    const { client, chunk, size } = request;
    return this.#ctx.replicas.decide(this, keyOf(client, chunk), request.opId, async (current, version) => {
      if (current) {
        const { refcount, size: stored } = decodeRow(current);
        const info = await this.#ctx.groups.read(chunk, { type: 'dm.info', chunk }).catch(() => null);
        return { value: encodeRow(refcount + 1, stored), reply: { refcount: refcount + 1, subscribers: info?.record?.subscribers ?? 0, holders: info?.record?.holders ?? [] } };
      }
      if (this.#sql.stored.get(client)! + size > DEFAULT_ALLOWANCE_BYTES) {
        fail('over-allowance', `storing ${size} more bytes would exceed the client's allowance`);
      }
      const down = await this.#ctx.groups.askMember(chunk, { type: 'dm.put', request: msg.request, stagedAt: msg.stagedAt, base: version }, { deadline: deadlineOf(request, this.#ctx.clock.now()) });
      return { value: encodeRow(1, size), reply: { refcount: 1, subscribers: down.subscribers, holders: down.holders } };
    });
  }

  /**
   * The last reference is decided here first and only then passed down: a subscriber goes only for a
   * release this group chose (passed down first, a delete that then lost to a put of the same owner
   * left it counted with no subscriber). The stored reply says refcount 0, so a retry of the same
   * request passes it down again (the data_manager answers a repeat with its stored reply).
   */
  async onClientDelete(msg: MessageOf<'client.delete'>): Promise<Reply<'client.delete'>> {
    const request = this.#accept(msg.request, 'delete');
    const { client, chunk } = request;
    const reply = await this.#ctx.replicas.decide(this, keyOf(client, chunk), request.opId, async (current) => {
      if (!current) {
        fail('non-owner', `delete refused: client ${toHex(client).slice(0, 12)} has no record of chunk ${toHex(chunk).slice(0, 12)} (delete from non-owner)`);
      }
      const { refcount, size } = decodeRow(current!);
      if (refcount > 1) {
        const info = await this.#ctx.groups.read(chunk, { type: 'dm.info', chunk }).catch(() => null);
        return { value: encodeRow(refcount - 1, size), reply: { refcount: refcount - 1, subscribers: info?.record?.subscribers ?? 0, deleted: false } };
      }
      return { value: null, reply: { refcount: 0, subscribers: 0, deleted: false } };
    });
    if (reply.refcount > 0) return reply;
    const down = await this.#ctx.groups.askMember(chunk, { type: 'dm.delete', request: msg.request }, { deadline: deadlineOf(request, this.#ctx.clock.now()) });
    return { refcount: 0, subscribers: down.subscribers, deleted: down.subscribers === 0 };
  }

  onRefcount(msg: MessageOf<'cm.refcount'>): Reply<'cm.refcount'> {
    const row = this.#sql.get.get(msg.client, msg.chunk);
    const { version } = this.#ctx.replicas.state(this, keyOf(msg.client, msg.chunk));
    return { version, refcount: row?.refcount ?? 0 };
  }

  /** Reference count of `chunk` for `client` as this member holds it (0: no record). */
  refcount(client: Name, chunk: Name): number {
    return this.#sql.get.get(client, chunk)?.refcount ?? 0;
  }

  #accept(request: SignedRequest, op: 'put' | 'delete') {
    const instruction = verifyRequest(request, this.#ctx.clock.now());
    if (instruction.op !== op) fail('bad-request', `expected a signed ${op} request`);
    if (!this.#ctx.groups.isMember(instruction.client, this.#ctx.self)) fail('unavailable', 'this vault does not manage that client (any more)');
    return instruction;
  }

  // --- the record book ---

  placeOf(key: Buffer): { group: Name } | undefined {
    return key.length === 2 * NAME_BYTES ? { group: key.subarray(0, NAME_BYTES) } : undefined;
  }

  load(key: Buffer): { version: number; value: Buffer } | undefined {
    const row = this.#sql.get.get(key.subarray(0, NAME_BYTES), key.subarray(NAME_BYTES));
    return row && { version: row.version, value: encodeRow(row.refcount, row.size) };
  }

  store(key: Buffer, version: number, value: Buffer | null): void {
    const [client, chunk] = [key.subarray(0, NAME_BYTES), key.subarray(NAME_BYTES)];
    if (value === null) return void this.#sql.remove.run(client, chunk);
    const { refcount, size } = decodeRow(value);
    this.#sql.set.run(client, chunk, refcount, size, version);
  }

  *entries(range: NameRange = EVERY_NAME): Iterable<{ key: Buffer; version: number; value: Buffer }> {
    for (const { client, chunk, refcount, size, version } of this.#sql.all.iterate(range.from, range.to)) {
      yield { key: keyOf(client, chunk), version, value: encodeRow(refcount, size) };
    }
  }

  /** One operation moves a reference count by exactly one (a first put makes it 1; a last delete removes it). */
  admits(_key: Buffer, previous: Buffer | null, next: Buffer | null): boolean {
    const [before, after] = [previous && decodeRow(previous), next && decodeRow(next)];
    if (!before || !after) return (before?.refcount ?? 0) + (after?.refcount ?? 0) === 1;
    return before.size === after.size && Math.abs(after.refcount - before.refcount) === 1;
  }
}

const keyOf = (client: Name, chunk: Name): Buffer => Buffer.concat([client, chunk]);

function encodeRow(refcount: number, size: number): Buffer {
  const value = Buffer.alloc(8);
  value.writeUInt32BE(refcount, 0);
  value.writeUInt32BE(size, 4);
  return value;
}

function decodeRow(value: Buffer): { refcount: number; size: number } {
  if (value.length !== 8) throw new SafeVaultError('bad-request', 'malformed storage_client_manager record');
  return { refcount: value.readUInt32BE(0), size: value.readUInt32BE(4) };
}
