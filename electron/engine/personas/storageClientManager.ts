/**
 * storage_client_manager: the group closest to a client keeps, per client, each chunk's reference
 * count and size (bytes stored follow from them). Only a chunk new to the client goes down to the
 * data_manager group, and only the client's last release of it; a delete from a client with no
 * record is refused. Each change is one group decision keyed by the client's signed request, so a
 * retried or duplicated request counts once.
 *
 * What goes down is decided here first, as an outbox entry in the record itself (a first reference
 * pending, a last release pending), and passed down until the data_manager group answers; it checks
 * the entry with a quorum of this group before it counts, so no single member can forge one. An
 * entry the data_manager answered is cleared by a further decision (or folded into the record's
 * next change); one whose request went quiet is settled by the group's closest member at its audit.
 */
import { deadlineOf, derivedOp, verifyRequest } from '../clientRequest.ts';
import { DEFAULT_ALLOWANCE_BYTES, OP_DEADLINE_MS } from '../constants.ts';
import { migrate } from '../db.ts';
import { fail, fromWireError, SafeVaultError, toWireError, type ErrorCode } from '../../api/errors.ts';
import type { MessageOf, Reply, SignedRequest } from '../messages.ts';
import { NAME_BYTES, toHex, type Name, type NameRange } from '../names.ts';
import type { RecordBook } from '../replica.ts';
import type { VaultContext } from './context.ts';

const migrations = [
  `CREATE TABLE cm_chunk (client BLOB NOT NULL, chunk BLOB NOT NULL, refcount INTEGER NOT NULL, size INTEGER NOT NULL,
     PRIMARY KEY (client, chunk)) WITHOUT ROWID, STRICT;`,
  `ALTER TABLE cm_chunk ADD COLUMN version INTEGER NOT NULL DEFAULT 1;`,
  // The outbox entry (see Outbox), indexed so the audit finds the few records that have one.
  `ALTER TABLE cm_chunk ADD COLUMN out BLOB;
   CREATE INDEX cm_chunk_out ON cm_chunk (client, chunk) WHERE out IS NOT NULL;`,
];

/** What the group decided and the data_manager group has not answered yet: the client's request `op`, with its deadline. */
interface Outbox {
  kind: 'put' | 'release';
  op: Buffer;
  deadline: number;
}

/** A client's record of one chunk: refcount 0 only while its last release is on its way down. */
interface Row {
  refcount: number;
  size: number;
  out?: Outbox;
}

/** The data_manager group's answer to an outbox entry. */
type Down = Reply<'dm.put'>;

export class StorageClientManager implements RecordBook {
  readonly persona = 'storage_client_manager';
  readonly #ctx: VaultContext;
  readonly #sql;

  constructor(ctx: VaultContext) {
    this.#ctx = ctx;
    migrate(ctx.db, this.persona, migrations);
    const db = ctx.db;
    this.#sql = {
      get: db.prepare<[Buffer, Buffer], { refcount: number; size: number; version: number; out: Buffer | null }>(
        'SELECT refcount, size, version, out FROM cm_chunk WHERE client = ? AND chunk = ?',
      ),
      set: db.prepare<[Buffer, Buffer, number, number, number, Buffer | null]>('INSERT OR REPLACE INTO cm_chunk (client, chunk, refcount, size, version, out) VALUES (?, ?, ?, ?, ?, ?)'),
      remove: db.prepare<[Buffer, Buffer]>('DELETE FROM cm_chunk WHERE client = ? AND chunk = ?'),
      stored: db.prepare<[Buffer], number>('SELECT coalesce(sum(size), 0) FROM cm_chunk WHERE client = ? AND refcount > 0').pluck(),
      all: db.prepare<[Buffer, Buffer], { client: Buffer; chunk: Buffer; refcount: number; size: number; version: number; out: Buffer | null }>(
        'SELECT client, chunk, refcount, size, version, out FROM cm_chunk WHERE client BETWEEN ? AND ?',
      ),
      outboxes: db.prepare<[], { client: Buffer; chunk: Buffer; out: Buffer }>('SELECT client, chunk, out FROM cm_chunk WHERE out IS NOT NULL'),
      count: db.prepare<[], number>('SELECT count(*) FROM cm_chunk').pluck(),
    };
  }

  /** Records held: one per (client, chunk) reference account. */
  count(): number {
    return this.#sql.count.get()!;
  }

  async onClientPut(msg: MessageOf<'client.put'>): Promise<Reply<'client.put'>> {
    const request = this.#accept(msg.request, 'put');
    const { client, chunk, size, opId } = request;
    const deadline = deadlineOf(request, this.#ctx.clock.now());
    const key = keyOf(client, chunk);
    const out: Outbox = { kind: 'put', op: opId, deadline };
    const answer = await this.#ctx.replicas.decide<Refused | { refcount: number; subscribers: number; holders: Name[]; first: boolean }>(
      this,
      key,
      opId,
      async (current) => {
        let row = current && decodeRow(current);
        let down: Down | undefined;
        if (row?.out) ({ row, down } = await this.#settleFirst(client, chunk, row, row.out, msg.stagedAt, deadline));
        if (row) {
          const { subscribers, holders } = down ?? (await this.#info(chunk));
          return { value: encodeRow({ refcount: row.refcount + 1, size: row.size }), reply: { refcount: row.refcount + 1, subscribers, holders, first: false } };
        }
        if (this.#sql.stored.get(client)! + size > DEFAULT_ALLOWANCE_BYTES) return refusal('over-allowance', `storing ${size} more bytes would exceed the client's allowance`);
        return { value: encodeRow({ refcount: 1, size, out }), reply: { refcount: 1, subscribers: 0, holders: [], first: true } };
      },
      { installed: true },
    );
    const { first, ...decided } = refused(answer);
    if (!first) return decided;
    const down = await this.#deliver(key, client, chunk, out, msg.stagedAt, deadline);
    if (down.refused) throw fromWireError(down.refused, 'the chunk could not be stored');
    return { refcount: 1, subscribers: down.subscribers, holders: down.holders };
  }

  /**
   * A last reference is decided here and only then passed down: a subscriber goes only for a
   * release this group chose. Its stored reply says `last`, so a retry of the same request passes
   * it down again (the data_manager answers a repeat with its stored reply).
   */
  async onClientDelete(msg: MessageOf<'client.delete'>): Promise<Reply<'client.delete'>> {
    const request = this.#accept(msg.request, 'delete');
    const { client, chunk, opId } = request;
    const deadline = deadlineOf(request, this.#ctx.clock.now());
    const key = keyOf(client, chunk);
    const out: Outbox = { kind: 'release', op: opId, deadline };
    const answer = await this.#ctx.replicas.decide<Refused | { refcount: number; subscribers: number; deleted: boolean; last: boolean }>(
      this,
      key,
      opId,
      async (current) => {
        let row = current && decodeRow(current);
        if (row?.out) ({ row } = await this.#settleFirst(client, chunk, row, row.out, null, deadline));
        if (!row) return refusal('non-owner', `delete refused: client ${toHex(client).slice(0, 12)} has no record of chunk ${toHex(chunk).slice(0, 12)} (delete from non-owner)`);
        if (row.refcount > 1) {
          const { subscribers } = await this.#info(chunk);
          return { value: encodeRow({ refcount: row.refcount - 1, size: row.size }), reply: { refcount: row.refcount - 1, subscribers, deleted: false, last: false } };
        }
        return { value: encodeRow({ refcount: 0, size: row.size, out }), reply: { refcount: 0, subscribers: 0, deleted: false, last: true } };
      },
      { installed: true },
    );
    const { last, ...decided } = refused(answer);
    if (!last) return decided;
    const down = await this.#deliver(key, client, chunk, out, null, deadline);
    if (down.refused) throw fromWireError(down.refused, 'the chunk could not be deleted');
    return { refcount: 0, subscribers: down.subscribers, deleted: down.subscribers === 0 };
  }

  /** Whether this member's record holds `op` as its outbox entry: what a data_manager checks with a quorum of the group. */
  onPassed(msg: MessageOf<'cm.passed'>): Reply<'cm.passed'> {
    const row = this.load(keyOf(msg.client, msg.chunk));
    const { size, out } = row ? decodeRow(row.value) : { size: 0, out: undefined };
    return out?.op.equals(msg.op) ? { passed: out.kind, size, deadline: out.deadline } : { passed: null, size: 0, deadline: 0 };
  }

  /**
   * Settles the outbox entries whose requests are past their deadline (their handlers gave up or
   * died), for the clients this vault is the closest manager of: each is passed down without bytes
   * (a first reference not counted by then is refused, once for all: its client was told the
   * request failed) and cleared.
   */
  async audit(): Promise<void> {
    const now = this.#ctx.clock.now();
    for (const { client, chunk, out: entry } of this.#sql.outboxes.all()) {
      const out = decodeOutbox(entry);
      if (out.deadline >= now || !this.#ctx.groups.members(client)[0]?.equals(this.#ctx.self)) continue;
      try {
        const down = await this.#passDown(client, chunk, out, null, now + OP_DEADLINE_MS);
        await this.#clear(keyOf(client, chunk), out, down);
      } catch {
        // the next audit tries again
      }
    }
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

  /** Inside another operation's decision: passes the record's entry down first, and gives the record as it stands after it (null: no reference). */
  async #settleFirst(client: Name, chunk: Name, row: Row, out: Outbox, stagedAt: Name | null, deadline: number): Promise<{ row: Row | null; down: Down }> {
    const down = await this.#passDown(client, chunk, out, stagedAt, deadline);
    // A release given back raises the count again: that is a step of its own (members allow one at a
    // time), decided once this operation's decision lets go of the record, and then this one is retried.
    if (out.kind === 'release' && down.refused) {
      void this.#clear(keyOf(client, chunk), out, down).catch(() => undefined);
      fail('unavailable', `an expired delete of chunk ${toHex(chunk).slice(0, 12)} is being undone; try again`);
    }
    return { row: settled(row, out, down), down };
  }

  /** Passes this request's own entry down, then clears it in the background (the audit does, if that fails). */
  async #deliver(key: Buffer, client: Name, chunk: Name, out: Outbox, stagedAt: Name | null, deadline: number): Promise<Down> {
    const down = await this.#passDown(client, chunk, out, stagedAt, deadline);
    void this.#clear(key, out, down).catch(() => undefined);
    return down;
  }

  /** Has the data_manager group act on an outbox entry, until it answers (a repeat gets its stored answer). */
  async #passDown(client: Name, chunk: Name, out: Outbox, stagedAt: Name | null, deadline: number): Promise<Down> {
    const { groups } = this.#ctx;
    if (out.kind === 'put') return groups.askMember(chunk, { type: 'dm.put', client, chunk, op: out.op, stagedAt }, { deadline });
    const { subscribers, refused } = await groups.askMember(chunk, { type: 'dm.delete', client, chunk, op: out.op }, { deadline });
    return { subscribers, holders: [], refused };
  }

  /** Clears an answered entry by a decision of its own, unless the record moved on (another operation folded it in). */
  async #clear(key: Buffer, out: Outbox, down: Down): Promise<void> {
    await this.#ctx.replicas.decide(this, key, derivedOp('cm.clear', out.op), async (current) => {
      const row = current && decodeRow(current);
      if (!row?.out?.op.equals(out.op)) return fail('conflict', 'the entry was cleared already');
      const after = settled(row, out, down);
      return { value: after && encodeRow(after), reply: null };
    });
  }

  /** The chunk's subscribers and holders as its data_manager group agrees on them (none known: none). */
  async #info(chunk: Name): Promise<{ subscribers: number; holders: Name[] }> {
    const info = await this.#ctx.groups.read(chunk, { type: 'dm.info', chunk }).catch(() => null);
    return { subscribers: info?.record?.subscribers ?? 0, holders: info?.record?.holders ?? [] };
  }

  // --- the record book ---

  placeOf(key: Buffer): { group: Name } | undefined {
    return key.length === 2 * NAME_BYTES ? { group: key.subarray(0, NAME_BYTES) } : undefined;
  }

  load(key: Buffer): { version: number; value: Buffer } | undefined {
    const row = this.#sql.get.get(key.subarray(0, NAME_BYTES), key.subarray(NAME_BYTES));
    return row && { version: row.version, value: rowBytes(row.refcount, row.size, row.out) };
  }

  store(key: Buffer, version: number, value: Buffer | null): void {
    const [client, chunk] = [key.subarray(0, NAME_BYTES), key.subarray(NAME_BYTES)];
    if (value === null) return void this.#sql.remove.run(client, chunk);
    const { refcount, size, out } = decodeRow(value);
    this.#sql.set.run(client, chunk, refcount, size, version, out ? encodeOutbox(out) : null);
  }

  *entries(range: NameRange, wanted: (key: Buffer) => boolean): Iterable<{ key: Buffer; version: number; value: Buffer }> {
    for (const { client, chunk, refcount, size, version, out } of this.#sql.all.iterate(range.from, range.to)) {
      const key = keyOf(client, chunk);
      if (wanted(key)) yield { key, version, value: rowBytes(refcount, size, out) };
    }
  }

  /**
   * One operation moves a reference count by exactly one, and only through the outbox: a first
   * reference starts as a pending put; a last release leaves refcount 0 with a pending release; a
   * record goes only with an answered entry. Settling an entry may be folded into the next step.
   */
  admits(_key: Buffer, previous: Buffer | null, next: Buffer | null): boolean {
    const [before, after] = [previous && decodeRow(previous), next && decodeRow(next)];
    // No record before nor after: a refusal, decided (see refusal).
    if (!after) return !before || !!before.out;
    if (after.out?.kind === 'put') return after.refcount === 1 && (!before || !!before.out);
    if (!before) return false;
    const step = after.refcount - before.refcount;
    if (after.out?.kind === 'release') return after.refcount === 0 && before.size === after.size && step === -1;
    return before.size === after.size && after.refcount >= 1 && (Math.abs(step) === 1 || (step === 0 && before.out?.kind === 'put'));
  }
}

/**
 * The record once the data_manager group answered `out`: a counted first reference stays, a refused
 * one goes; a counted release leaves none, and a refused one gives the reference back.
 */
function settled(row: Row, out: Outbox, down: Down): Row | null {
  if (out.kind === 'put') return down.refused ? null : { refcount: row.refcount, size: row.size };
  return down.refused ? { refcount: 1, size: row.size } : null;
}

const keyOf = (client: Name, chunk: Name): Buffer => Buffer.concat([client, chunk]);

/**
 * A refusal is decided like any answer, stored with its operation: so a copy of the request that
 * another member handles later (the client's retry, a duplicate frame) is refused too, never carried
 * out after its client was told it was refused. Both refusals find no record once its outbox entry
 * is settled, and decide that: none (a settled entry is folded into the next change, as always).
 */
type Refused = { refused: { code: ErrorCode; message: string } };

const refusal = (code: ErrorCode, message: string): { value: null; reply: Refused } => ({
  value: null,
  reply: { refused: toWireError(new SafeVaultError(code, message), code) },
});

/** The decided answer, or the decided refusal thrown. */
function refused<R extends object>(answer: R | Refused): R {
  if ('refused' in answer) throw fromWireError(answer.refused, 'a malformed refusal was stored');
  return answer;
}

const OUTBOX_BYTES = 1 + NAME_BYTES + 8;

function encodeOutbox(out: Outbox): Buffer {
  const bytes = Buffer.alloc(OUTBOX_BYTES);
  bytes.writeUInt8(out.kind === 'put' ? 0 : 1, 0);
  out.op.copy(bytes, 1);
  bytes.writeBigUInt64BE(BigInt(out.deadline), 1 + NAME_BYTES);
  return bytes;
}

function decodeOutbox(bytes: Buffer): Outbox {
  if (bytes.length !== OUTBOX_BYTES || bytes[0]! > 1) throw new SafeVaultError('bad-request', 'malformed storage_client_manager outbox entry');
  return { kind: bytes[0] === 0 ? 'put' : 'release', op: Buffer.from(bytes.subarray(1, 1 + NAME_BYTES)), deadline: Number(bytes.readBigUInt64BE(1 + NAME_BYTES)) };
}

const encodeRow = ({ refcount, size, out }: Row): Buffer => rowBytes(refcount, size, out ? encodeOutbox(out) : null);

/** A record's canonical value: refcount and size, then the outbox entry if any (as the table keeps it). */
function rowBytes(refcount: number, size: number, out: Buffer | null): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(refcount, 0);
  head.writeUInt32BE(size, 4);
  return out ? Buffer.concat([head, out]) : head;
}

function decodeRow(value: Buffer): Row {
  if (value.length !== 8 && value.length !== 8 + OUTBOX_BYTES) throw new SafeVaultError('bad-request', 'malformed storage_client_manager record');
  const row: Row = { refcount: value.readUInt32BE(0), size: value.readUInt32BE(4) };
  return value.length === 8 ? row : { ...row, out: decodeOutbox(value.subarray(8)) };
}
