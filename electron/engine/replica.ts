/**
 * Replicated records: what the manager personas keep (a client's reference count, a chunk's
 * record, a node's account) lives on the members of a close group, and every change to a record is
 * decided once, by the group, for one version at a time (single-decree Paxos per record version):
 * a member proposes, a quorum of members promises and accepts, and the chosen state is committed.
 * Whoever proposes first finishes any half-made decision it finds, so two members acting at once,
 * or a member that died half way, never leave two different versions of one record.
 *
 * A record's state carries its version and the operations applied lately with their replies, so an
 * operation that is repeated (a retry, a duplicate) gets its stored reply and never counts twice.
 * States only move forward: transfers and repairs adopt a state only if it is newer, and a deletion
 * is a state of its own (a tombstone), so a deleted record never comes back.
 */
import { SafeVaultError, fail, isSafeVaultError } from '../api/errors.ts';
import { sleep } from './clock.ts';
import { DECISION_DEADLINE_MS, GROUP_SIZE, OP_MEMORY_MS, PROMISE_MEMORY_MS, UNFINISHED_DECISION_MS } from './constants.ts';
import { atomic, migrate, schemaVersion, type Db } from './db.ts';
import type { KeyedLock } from './keyedLock.ts';
import { MAX_BATCH, MAX_STEPS, type MessageOf, type Persona, type RecStep, type RecordState, type Reply } from './messages.ts';
import { NAME_BYTES, toHex, type Name, type NameRange } from './names.ts';
import { Outbox, answered, type Answered } from './outbox.ts';
import { quorumOf } from './group.ts';
import type { Network } from './transport.ts';
import { canonical, decodeCanonical, type WireValue } from './wire/codec.ts';

export interface Place {
  /** The record lives with the close group of `group`, leaving out `exclude` (a node is not its own manager). */
  group: Name;
  exclude?: Name;
}

/** A persona's own table of live records, as the replica layer sees it. */
export interface RecordBook {
  readonly persona: Persona;
  /** Where a record lives, or undefined if the key is malformed. */
  placeOf(key: Buffer): Place | undefined;
  /** The live record's canonical value and version. */
  load(key: Buffer): { version: number; value: Buffer } | undefined;
  /** The live record's version alone, where that is cheaper than load. */
  versionOf?(key: Buffer): number | undefined;
  /**
   * Runs `work`, several loads and stores, as one: the book may read the records of `keys` (those
   * `work` is about) at once, whole or (`read`) their versions alone, and hold writes it can merge
   * (an index's) until the end. Called inside a transaction if `work` stores.
   */
  grouped?<T>(work: () => T, keys?: readonly Buffer[], read?: 'records' | 'versions'): T;
  /** Replaces the live record (null: removes it); called inside the replica's transaction. Throws on a malformed value. */
  store(key: Buffer, version: number, value: Buffer | null): void;
  /**
   * The live records whose group name is in `range` (an indexed range query, for transfers to new
   * members) and whose key `wanted` accepts. `wanted` is asked about each key in order, just before
   * its record is yielded, so a large table decodes only the records a transfer sends.
   */
  entries(range: NameRange, wanted: (key: Buffer) => boolean): Iterable<{ key: Buffer; version: number; value: Buffer }>;
  /**
   * Whether one decision may turn record `key`'s `previous` value into `next` (null: no record).
   * Members check it against their own record and view, so a proposer cannot, say, raise a count
   * by ten in one operation, or place a chunk on a vault the member has never seen near it.
   */
  admits?(key: Buffer, previous: Buffer | null, next: Buffer | null): boolean;
}

export interface Change<R> {
  /** The record's next value (null: delete it). */
  value: Buffer | null;
  reply: R;
}

const migrations = [
  `CREATE TABLE rec_tomb (persona TEXT NOT NULL, key BLOB NOT NULL, version INTEGER NOT NULL, at INTEGER NOT NULL,
     PRIMARY KEY (persona, key)) WITHOUT ROWID, STRICT;
   CREATE TABLE rec_op (persona TEXT NOT NULL, key BLOB NOT NULL, op BLOB NOT NULL, reply BLOB NOT NULL, seq INTEGER NOT NULL, at INTEGER NOT NULL,
     PRIMARY KEY (persona, key, op)) WITHOUT ROWID, STRICT;
   CREATE TABLE rec_slot (persona TEXT NOT NULL, key BLOB NOT NULL, slot INTEGER NOT NULL, promised BLOB NOT NULL,
     ballot BLOB, value BLOB, PRIMARY KEY (persona, key)) WITHOUT ROWID, STRICT;`,
  // When a member last accepted a value, so one never committed can be finished later.
  `ALTER TABLE rec_slot ADD COLUMN at INTEGER NOT NULL DEFAULT 0;`,
  // A batch of decisions' slots (decideMany), one row per ballot: see Replicas.#pages.
  `CREATE TABLE rec_batch (persona TEXT NOT NULL, ballot BLOB NOT NULL, slots BLOB NOT NULL, at INTEGER NOT NULL,
     PRIMARY KEY (persona, ballot)) WITHOUT ROWID, STRICT;`,
  // A record's remembered operations as one row (they are written and forgotten together), not one row each: see moveOps.
  `CREATE TABLE rec_ops (persona TEXT NOT NULL, key BLOB NOT NULL, ops BLOB NOT NULL, at INTEGER NOT NULL,
     PRIMARY KEY (persona, key)) WITHOUT ROWID, STRICT;`,
];
/** The first version with rec_ops. */
const OPS_ROWS = 4;

/** How long a tombstone outlives its record: longer than any vault is expected to stay away. */
const TOMBSTONE_TTL_MS = 30 * 24 * 3600_000;
/** Fewer records of one group than this are decided one by one (see decideMany). */
const MIN_BATCH = 4;
/** A proposer that fails this many rounds gives up; its caller retries the operation later. */
const MAX_ROUNDS = 12;
const BALLOT_BYTES = 4 + NAME_BYTES;
/** A member's refusals while it holds an accepted value of an earlier slot (see #holdsEarlier): no promise, and no state to offer. */
const BEHIND_PREPARE = { promised: false, promise: null, accepted: null, committed: null } as const;
const BEHIND_ACCEPT = { accepted: false, promise: null, committed: null } as const;
/** Sorts after the rest of any record key that starts with a given name (keys are at most two names long). */
const MAX_KEY_TAIL = Buffer.alloc(2 * NAME_BYTES, 0xff);

interface Slot {
  slot: number;
  promised: Buffer;
  ballot: Buffer | null;
  value: RecordState | null;
}

/** The slots one batch of decisions wrote on this member, at one ballot: kept as one row, and in memory by key. */
interface Page {
  persona: Persona;
  ballot: Buffer;
  at: number;
  /** The ids (idOf) of the records whose latest slot is this page's (their entries in #batched). */
  keys: Set<string>;
}

interface ReplicaLinks {
  self: Name;
  db: Db;
  network: Network;
  locks: KeyedLock;
}

export class Replicas {
  readonly #links: ReplicaLinks;
  readonly #books = new Map<Persona, RecordBook>();
  readonly #sql;
  /** The highest ballot round this vault has seen, so its next ballot outranks it. */
  #round = 0;
  /**
   * Slots written by batches of decisions, newer than the record's rec_slot row: a batch writes one
   * row (rec_batch) per member and step, not one per record. A record's slot is its entry here, or
   * else its row; any write of its own row drops its entry here, as that row was worked out from it.
   */
  readonly #batched = new Map<string, { page: Page; key: Buffer; slot: Slot }>();
  readonly #pages = new Map<string, Page>();
  /**
   * The records (`persona:hex key`) that may have a rec_slot row: those with one when the table was
   * last read, and every one written since. Few records have one (a single decision's, for a while),
   * so most lookups and deletes of a record's row are skipped. Read again by expire, outside a
   * transaction: one rolled back may leave a row the set had let go of otherwise.
   */
  #slotRows = new Set<string>();
  /** Decision steps waiting to go, per vault: those asked for in the same turn go as one rec.steps. */
  readonly #outbox = new Outbox<RecStep, Reply<RecStep['type']>>({
    alone: async (to, step) => {
      if (!to.equals(this.#links.self)) return this.#links.network.request(to, step);
      await undefined; // this vault's own step is answered here, in a later turn, as a message would be
      return this.onDecision(step);
    },
    together: async (to, steps) => {
      if (!to.equals(this.#links.self)) return this.#links.network.request(to, { type: 'rec.steps', steps });
      await undefined;
      return this.onSteps(steps);
    },
    typeOf: (step) => step.type,
    max: MAX_STEPS,
  });

  constructor(links: ReplicaLinks) {
    this.#links = links;
    const db = links.db;
    const before = schemaVersion(db, 'replica');
    db.transaction(() => {
      migrate(db, 'replica', migrations);
      if (before < OPS_ROWS) moveOps(db);
    })();
    this.#sql = {
      tomb: db.prepare<[string, Buffer], number>('SELECT version FROM rec_tomb WHERE persona = ? AND key = ?').pluck(),
      tombs: db.prepare<[string, Buffer, Buffer], { key: Buffer; version: number }>('SELECT key, version FROM rec_tomb WHERE persona = ? AND key BETWEEN ? AND ?'),
      setTomb: db.prepare<[string, Buffer, number, number]>('INSERT OR REPLACE INTO rec_tomb (persona, key, version, at) VALUES (?, ?, ?, ?)'),
      clearTomb: db.prepare<[string, Buffer]>('DELETE FROM rec_tomb WHERE persona = ? AND key = ?'),
      expireTombs: db.prepare<[number]>('DELETE FROM rec_tomb WHERE at < ?'),
      ops: db.prepare<[string, Buffer, number], Buffer>('SELECT ops FROM rec_ops WHERE persona = ? AND key = ? AND at >= ?').pluck(),
      opsIn: db.prepare<[string, Buffer, Buffer, number], { key: Buffer; ops: Buffer }>('SELECT key, ops FROM rec_ops WHERE persona = ? AND key BETWEEN ? AND ? AND at >= ?'),
      clearOps: db.prepare<[string, Buffer]>('DELETE FROM rec_ops WHERE persona = ? AND key = ?'),
      setOps: db.prepare<[string, Buffer, Buffer, number]>('INSERT OR REPLACE INTO rec_ops (persona, key, ops, at) VALUES (?, ?, ?, ?)'),
      expireOps: db.prepare<[number]>('DELETE FROM rec_ops WHERE at < ?'),
      slot: db.prepare<[string, Buffer], { slot: number; promised: Buffer; ballot: Buffer | null; value: Buffer | null }>(
        'SELECT slot, promised, ballot, value FROM rec_slot WHERE persona = ? AND key = ?',
      ),
      setSlot: db.prepare<[string, Buffer, number, Buffer, Buffer | null, Buffer | null, number]>(
        'INSERT OR REPLACE INTO rec_slot (persona, key, slot, promised, ballot, value, at) VALUES (?, ?, ?, ?, ?, ?, ?)',
      ),
      unfinished: db.prepare<[number], { persona: string; key: Buffer; value: Buffer }>('SELECT persona, key, value FROM rec_slot WHERE value IS NOT NULL AND at < ?'),
      clearSlot: db.prepare<[string, Buffer, number]>('DELETE FROM rec_slot WHERE persona = ? AND key = ? AND slot <= ?'),
      expirePromises: db.prepare<[number]>('DELETE FROM rec_slot WHERE value IS NULL AND at < ?'),
      slotRows: db.prepare<[], string>("SELECT persona || ':' || lower(hex(key)) FROM rec_slot").pluck(),
      pages: db.prepare<[string], { ballot: Buffer; slots: Buffer; at: number }>('SELECT ballot, slots, at FROM rec_batch WHERE persona = ?'),
      setPage: db.prepare<[string, Buffer, Buffer, number]>('INSERT OR REPLACE INTO rec_batch (persona, ballot, slots, at) VALUES (?, ?, ?, ?)'),
      removePage: db.prepare<[string, Buffer]>('DELETE FROM rec_batch WHERE persona = ? AND ballot = ?'),
    };
    // Rounds start from the time, so a vault that restarts never reuses a ballot it used before.
    this.#round = Math.floor(links.network.clock.now() / 1000) % 2 ** 31;
    this.expire();
    this.install = atomic(db, this.install.bind(this));
    this.onSteps = db.transaction(this.onSteps.bind(this));
    this.onPrepareMany = db.transaction(this.onPrepareMany.bind(this));
    this.onAcceptMany = db.transaction(this.onAcceptMany.bind(this));
  }

  register(book: RecordBook): void {
    this.#books.set(book.persona, book);
    this.#loadPages(book);
  }

  books(): RecordBook[] {
    return [...this.#books.values()];
  }

  book(persona: Persona): RecordBook {
    return this.#books.get(persona) ?? fail('bad-request', `no persona ${persona}`);
  }

  /**
   * Forgets what no longer counts: operations remembered past OP_MEMORY_MS, tombstones past their
   * life, promises past PROMISE_MEMORY_MS (an accepted value stays until its decision is finished).
   * Run at start and on every audit, so a vault that runs for weeks keeps none of them for good.
   */
  expire(): void {
    const now = this.#links.network.clock.now();
    this.#sql.expireTombs.run(now - TOMBSTONE_TTL_MS);
    this.#sql.expireOps.run(now - OP_MEMORY_MS);
    this.#sql.expirePromises.run(now - PROMISE_MEMORY_MS);
    if (!this.#links.db.inTransaction) this.#slotRows = new Set(this.#sql.slotRows.all());
    for (const page of [...this.#pages.values()].filter((p) => p.at < now - PROMISE_MEMORY_MS)) {
      for (const { key, slot } of this.#entriesOf(page)) if (!slot.value) this.#dropBatched(page.persona, key, Number.MAX_SAFE_INTEGER, false);
      this.#writePage(page);
    }
  }

  // --- committed state ---

  /** The record as this member last committed it. */
  state(book: RecordBook, key: Buffer): RecordState {
    const ops = this.#sql.ops.get(book.persona, key, this.#links.network.clock.now() - OP_MEMORY_MS);
    return { ...this.#committed(book, key), ops: ops ? decodeOps(ops) : [] };
  }

  /** The version and value this member last committed, without the operations remembered with them. */
  #committed(book: RecordBook, key: Buffer): { version: number; value: Buffer | null } {
    const live = book.load(key);
    return { version: live?.version ?? this.#sql.tomb.get(book.persona, key) ?? 0, value: live?.value ?? null };
  }

  /** The version this member last committed, and whether a live record has it (not a tombstone, nor nothing). */
  #version(book: RecordBook, key: Buffer): { version: number; live: boolean } {
    const live = book.versionOf ? book.versionOf(key) : book.load(key)?.version;
    return live === undefined ? { version: this.#sql.tomb.get(book.persona, key) ?? 0, live: false } : { version: live, live: true };
  }

  /** The records' states, their remembered operations read in one query (the keys lie close together). */
  #states(book: RecordBook, keys: readonly Buffer[]): RecordState[] {
    const sorted = [...keys].sort(Buffer.compare);
    const opsOf = this.#opsBetween(book, sorted[0]!, sorted.at(-1)!);
    return this.#grouped(book, keys, () => keys.map((key) => ({ ...this.#committed(book, key), ops: opsOf(key) })));
  }

  /** The remembered operations of the records from `from` to `to`, in one query, not one per record. */
  #opsBetween(book: RecordBook, from: Buffer, to: Buffer): (key: Buffer) => { op: Buffer; reply: Buffer }[] {
    const ops = new Map<string, Buffer>();
    for (const row of this.#sql.opsIn.iterate(book.persona, from, to, this.#links.network.clock.now() - OP_MEMORY_MS)) ops.set(toHex(row.key), row.ops);
    return (key) => {
      const found = ops.size ? ops.get(toHex(key)) : undefined;
      return found ? decodeOps(found) : [];
    };
  }

  /** Adopts `state` if it is newer than what this member holds; returns whether it did. */
  install(book: RecordBook, key: Buffer, state: RecordState): boolean {
    const committed = this.#version(book, key);
    if (state.version <= committed.version) return false;
    const now = this.#links.network.clock.now();
    book.store(key, state.version, state.value);
    if (state.value === null) this.#sql.setTomb.run(book.persona, key, state.version, now);
    else if (!committed.live && committed.version > 0) this.#sql.clearTomb.run(book.persona, key); // a tombstone stands only where no record does
    // A state without operations (a batch's, see decideMany) leaves any row of earlier ones to expire: they were applied all the same.
    if (state.ops.length) this.#sql.setOps.run(book.persona, key, encodeOps(state.ops), now);
    this.#clearSlot(book.persona, key, state.version);
    this.#dropBatched(book.persona, key, state.version);
    return true;
  }

  /** Forgets records this vault is no longer responsible for (not a delete), in one transaction. */
  forget(records: readonly { book: RecordBook; key: Buffer }[]): void {
    this.#links.db.transaction(() => {
      for (const { book, key } of records) {
        book.store(key, 0, null);
        this.#sql.clearTomb.run(book.persona, key);
        this.#sql.clearOps.run(book.persona, key);
        this.#clearSlot(book.persona, key, Number.MAX_SAFE_INTEGER);
        this.#dropBatched(book.persona, key, Number.MAX_SAFE_INTEGER);
      }
    })();
  }

  /**
   * The records this vault holds whose group name is in `range`, deleted ones included, with their
   * states: those for which `select` gives a value, yielded with it. `select` sees every key in the
   * range (the caller counts and judges them all); only the selected records are decoded.
   */
  *records<T>(book: RecordBook, range: NameRange, select: (key: Buffer) => T | undefined): Iterable<{ key: Buffer; state: RecordState; selected: T }> {
    // A key starts with its group name (a client's records: the client's name, then the chunk's), so the range's keys lie between these.
    const [from, to] = [range.from, Buffer.concat([range.to, MAX_KEY_TAIL])];
    const opsOf = this.#opsBetween(book, from, to);
    // entries asks `wanted` about a key just before yielding it, so `selected` is that key's.
    let selected: T | undefined;
    const wanted = (key: Buffer) => (selected = select(key)) !== undefined;
    for (const { key, version, value } of book.entries(range, wanted)) yield { key, state: { version, value, ops: opsOf(key) }, selected: selected! };
    for (const { key, version } of this.#sql.tombs.all(book.persona, from, to)) {
      if (wanted(key)) yield { key, state: { version, value: null, ops: opsOf(key) }, selected: selected! };
    }
  }

  // --- acceptor: what each member answers ---

  onPrepare(msg: MessageOf<'rec.prepare'>): Reply<'rec.prepare'> {
    const book = this.book(msg.persona);
    return this.#promise(book, msg.key, msg.slot, msg.ballot, (slot) => this.#saveSlot(book, msg.key, slot));
  }

  onAccept(msg: MessageOf<'rec.accept'>): Reply<'rec.accept'> {
    const book = this.book(msg.persona);
    if (msg.value.version !== msg.slot) fail('bad-request', 'an accepted state must be the slot it is for');
    return this.#accept(book, msg.key, msg.ballot, msg.value, (slot) => this.#saveSlot(book, msg.key, slot));
  }

  /** Installs a chosen state, but only the one this member accepted itself: a lone member cannot impose a state by announcing it. */
  onCommit(msg: MessageOf<'rec.commit'>): Reply<'rec.commit'> {
    const book = this.book(msg.persona);
    const chosen = canonical(msg.value as unknown as WireValue);
    const batched = this.#batched.get(idOf(book.persona, msg.key))?.slot;
    // A row keeps the accepted value's canonical encoding: compared as it is, neither decoded nor hashed.
    const row = batched ? undefined : this.#slotRow(book.persona, msg.key);
    const accepted = batched ? batched.value && canonical(batched.value as unknown as WireValue) : row?.value;
    const mine = (batched ?? row)?.slot === msg.value.version && !!accepted && accepted.equals(chosen);
    return { installed: mine && this.install(book, msg.key, msg.value) };
  }

  // A batch of decisions (decideMany) at one ballot: each record judged as its own step is, the slots kept as one page.

  onPrepareMany(msg: MessageOf<'rec.prepareMany'>, check: (key: Buffer) => void = () => undefined): Reply<'rec.prepareMany'> {
    const book = this.book(msg.persona);
    const page = this.#page(book.persona, msg.ballot);
    // A promise reads a record's version alone (whole only if it is newer than the slot).
    const replies = this.#grouped(book, msg.slots.map((s) => s.key), () =>
      msg.slots.map(({ key, slot }) => answered(() => (check(key), this.#promise(book, key, slot, msg.ballot, (s) => this.#setBatched(page, key, s))))),
      'versions',
    );
    this.#writePage(page);
    return { replies: asSent(msg, replies) };
  }

  onAcceptMany(msg: MessageOf<'rec.acceptMany'>, check: (key: Buffer) => void = () => undefined): Reply<'rec.acceptMany'> {
    const book = this.book(msg.persona);
    const page = this.#page(book.persona, msg.ballot);
    page.at = this.#links.network.clock.now();
    const replies = this.#grouped(book, msg.values.map((v) => v.key), () =>
      msg.values.map(({ key, value }) => answered(() => (check(key), this.#accept(book, key, msg.ballot, value, (s) => this.#setBatched(page, key, s))))),
    );
    this.#writePage(page);
    return { replies: asSent(msg, replies) };
  }

  /** Installs, of the records named, those whose value this member accepted at the ballot named (so the value chosen). */
  onCommitMany(msg: MessageOf<'rec.commitMany'>, check: (key: Buffer) => void = () => undefined): Reply<'rec.commitMany'> {
    const book = this.book(msg.persona);
    const installs = msg.keys.map((key) => () =>
      answered(() => {
        check(key);
        const slot = this.#slot(book, key);
        return { installed: !!slot?.value && !!slot.ballot?.equals(msg.ballot) && this.install(book, key, slot.value) };
      }),
    );
    return { replies: asSent(msg, this.#installAll(book, msg.keys, installs)) };
  }

  /** Phase 1 at this member: promises `ballot` for the record's slot, unless it promised a higher one, or holds a newer state. */
  #promise(book: RecordBook, key: Buffer, slot: number, ballot: Buffer, save: (slot: Slot) => void): Reply<'rec.prepare'> {
    if (this.#version(book, key).version >= slot) return { promised: false, promise: null, accepted: null, committed: this.state(book, key) };
    this.#seeRound(ballot);
    const held = this.#slot(book, key);
    if (held && this.#holdsEarlier(held, slot)) return BEHIND_PREPARE;
    if (held && held.slot > slot) return { promised: false, promise: held.promised, accepted: null, committed: null };
    const current = held && held.slot === slot ? held : undefined;
    if (current && Buffer.compare(ballot, current.promised) < 0) return { promised: false, promise: current.promised, accepted: null, committed: null };
    save({ slot, promised: ballot, ballot: current?.ballot ?? null, value: current?.value ?? null });
    const accepted = current?.ballot && current.value ? { ballot: current.ballot, value: current.value } : null;
    // No committed state: this member's is older than the slot, so no newer than the proposer's own (its slot is its version + 1).
    return { promised: true, promise: ballot, accepted, committed: null };
  }

  /** Phase 2 at this member: accepts `value` for its slot at `ballot`, unless it promised a higher one, or the step is not one its book admits. */
  #accept(book: RecordBook, key: Buffer, ballot: Buffer, value: RecordState, save: (slot: Slot) => void): Reply<'rec.accept'> {
    const slot = value.version;
    const committed = this.#committed(book, key);
    if (committed.version >= slot) return { accepted: false, promise: null, committed: this.state(book, key) };
    // Only a member holding the version just before can judge the step; one further behind cannot.
    if (committed.version === slot - 1 && book.admits && !book.admits(key, committed.value, value.value)) {
      fail('conflict', `${book.persona}: this member's record does not allow that change in one step`);
    }
    this.#seeRound(ballot);
    const held = this.#slot(book, key);
    if (held && this.#holdsEarlier(held, slot)) return BEHIND_ACCEPT;
    if (held && held.slot > slot) return { accepted: false, promise: held.promised, committed: null };
    if (held && held.slot === slot && Buffer.compare(ballot, held.promised) < 0) return { accepted: false, promise: held.promised, committed: null };
    save({ slot, promised: ballot, ballot, value });
    return { accepted: true, promise: ballot, committed: null };
  }

  // A step for a slot before the one this member holds a promise or a value for (its proposer is further
  // behind) is refused, never written over it: a promise or an accepted value forgotten could let two values be chosen.

  /**
   * Whether this member accepted a value for a slot before `slot` that it has not seen committed.
   * It keeps that value (it may be the chosen one, and this member one of the few that know it) and
   * takes no part in later slots until it has caught up: a proposer that is ahead sends it its state.
   */
  #holdsEarlier(held: Slot, slot: number): boolean {
    return held.slot < slot && held.value !== null;
  }

  onTransfer(msg: MessageOf<'rec.transfer'>, mayHold: (key: Buffer) => boolean): Reply<'rec.transfer'> {
    const book = this.book(msg.persona);
    // One transaction for the batch: install's own nests inside it.
    return this.#links.db.transaction(() => {
      let adopted = 0;
      const declined: number[] = [];
      msg.records.forEach(({ key, state }, i) => {
        const place = book.placeOf(key);
        if (place && mayHold(key)) {
          if (this.install(book, key, state)) adopted++;
        } else if (!place || state.version > this.#committed(book, key).version) declined.push(i); // held already, whoever sends it, is not declined
      });
      return { adopted, declined };
    })();
  }

  /** The record as this member last committed it, for a member catching up (see pull). */
  onState(msg: MessageOf<'rec.state'>): Reply<'rec.state'> {
    return { committed: this.state(this.book(msg.persona), msg.key) };
  }

  /**
   * Told it is behind on a record: asks the group for the record's committed state and adopts the
   * newest, as a proposer's prepare phase does (a reader's word alone installs nothing). Returns
   * the version held afterwards. Several readers' hints at once make one pull: the vault answers
   * the same rec.behind once while it is in hand (its quorum key).
   */
  async pull(book: RecordBook, key: Buffer): Promise<number> {
    const place = book.placeOf(key) ?? fail('bad-request', `malformed ${book.persona} key`);
    const { network, self } = this.#links;
    // The witnesses a proposer would ask: a member that is ahead is among them.
    const witnesses = network.view.closest(place.group, GROUP_SIZE + 2, place.exclude).filter((m) => !m.equals(self));
    const replies = await Promise.allSettled(witnesses.map((w) => network.request(w, { type: 'rec.state', persona: book.persona, key })));
    this.#adoptNewest(book, key, replies.map((r) => (r.status === 'fulfilled' ? r.value.committed : null)));
    return this.#committed(book, key).version;
  }

  // --- proposer ---

  /**
   * Applies operation `op` to a record once: returns its stored reply if it was applied already;
   * otherwise has the group choose the record's next version, computed by `change` from the
   * current value, and returns the reply `change` gave. `change` may talk to other groups; it must
   * be idempotent (it is called again if another decision got in first). `installed`: return only
   * once a quorum of members installed the state, for a decision another group will check with them;
   * `through`: done once the record's version reaches it, whatever was chosen (a decision being finished).
   */
  decide<R extends WireValue>(
    book: RecordBook,
    key: Buffer,
    op: Buffer,
    change: (current: Buffer | null, version: number) => Promise<Change<R>>,
    options: { installed?: boolean; through?: number } = {},
  ): Promise<R> {
    return this.#links.locks.run(idOf(book.persona, key), async () => {
      const place = book.placeOf(key) ?? fail('bad-request', `malformed ${book.persona} key`);
      const { view, clock } = this.#links.network;
      const deadline = clock.now() + DECISION_DEADLINE_MS;
      for (let round = 0; round < MAX_ROUNDS; round++) {
        const current = this.state(book, key);
        const done = options.through !== undefined && current.version >= options.through ? NULL_REPLY : current.ops.find((o) => o.op.equals(op))?.reply;
        if (done) return decodeCanonical(done) as R;
        const members = view.closest(place.group, GROUP_SIZE, place.exclude);
        if (!members.some((m) => m.equals(this.#links.self))) fail('unavailable', `this vault is not in the ${book.persona} group of that record`);
        const needed = quorumOf(members.length, view.knownCount());
        const slot = current.version + 1;
        const ballot = this.#nextBallot();
        // Phase 1: the members promise; two more vaults are asked too, in case one still holds a newer state.
        const witnesses = view.closest(place.group, GROUP_SIZE + 2, place.exclude);
        const prepared = await this.#gather(witnesses, members, needed, { type: 'rec.prepare', persona: book.persona, key, slot, ballot }, (r) => r.promised);
        if (this.#adoptNewest(book, key, prepared.map((p) => p.reply.committed))) continue;
        if (prepared.filter((p) => p.member && p.reply.promised).length < needed) {
          this.#catchUp(book, key, current, prepared);
          await this.#backoff(round);
          continue;
        }
        // A value some member already accepted for this slot may have been chosen: it must be finished first.
        const earlier = prepared
          .map((p) => p.reply.accepted)
          .filter((a): a is NonNullable<typeof a> => a !== null)
          .sort((a, b) => Buffer.compare(b.ballot, a.ballot))[0];
        let proposal: RecordState;
        let reply: R | undefined;
        if (earlier) proposal = earlier.value;
        else {
          const next = await change(current.value, current.version);
          reply = next.reply;
          const ops = [...current.ops, { op, reply: canonical(next.reply) }].slice(-32);
          proposal = { version: slot, value: next.value, ops };
        }
        // Phase 2: a quorum of members accepts, and the state is chosen; never past the deadline, so old promises can be forgotten.
        if (clock.now() > deadline) break;
        const accepted = await this.#gather(members, members, needed, { type: 'rec.accept', persona: book.persona, key, slot, ballot, value: proposal }, (r) => r.accepted);
        if (this.#adoptNewest(book, key, accepted.map((a) => a.reply.committed))) continue;
        if (accepted.filter((a) => a.reply.accepted).length < needed) {
          this.#catchUp(book, key, current, accepted);
          await this.#backoff(round);
          continue;
        }
        const commit = { type: 'rec.commit', persona: book.persona, key, value: proposal } as const;
        const others = witnesses.filter((w) => !w.equals(this.#links.self));
        const installs = others.map((member) => this.#step(member, commit).then((r) => r.installed && members.some((m) => m.equals(member)), () => false));
        // The value is chosen: this vault installs it, through its own commit when it accepted it too (batched with the others').
        if (!(await this.#step(this.#links.self, commit)).installed) this.install(book, key, proposal);
        if (options.installed) await atLeast(installs, needed - 1);
        if (reply !== undefined) return reply;
      }
      throw new SafeVaultError('unavailable', `the ${book.persona} group could not agree on a record (too much churn); try again`);
    });
  }

  /**
   * Decides many records at once, for a churn review: per group of members, one ballot, and one
   * message per member for each step of the batch (the members keep one row per step, not one per
   * record). Each record is still decided for its own slot, promised, accepted and chosen or not on
   * its own. `change` gives a record's next value, worked out from its current one, or undefined if
   * it needs none (as a review does): a change made once finds nothing left to do, so no operation
   * is remembered for it, and its state keeps the operations it had (a row less on every member).
   * A record this cannot settle (a member holds a newer state, or an accepted value to finish; too
   * few promises or acceptances) is returned, for the caller to decide alone, as are the records of
   * a group with fewer than MIN_BATCH of them; a record whose change failed is neither decided nor
   * returned. Returns those decided too.
   */
  async decideMany(
    book: RecordBook,
    keys: readonly Buffer[],
    change: (key: Buffer, current: Buffer | null, version: number) => Promise<Buffer | null | undefined>,
  ): Promise<{ decided: Buffer[]; left: Buffer[] }> {
    const { view } = this.#links.network;
    const groups = new Map<string, { witnesses: Name[]; members: Name[]; keys: Buffer[] }>();
    const left: Buffer[] = [];
    for (const key of keys) {
      const place = book.placeOf(key);
      if (!place) continue;
      const witnesses = view.closest(place.group, GROUP_SIZE + 2, place.exclude);
      const id = witnesses.map(toHex).join();
      let group = groups.get(id);
      if (!group) groups.set(id, (group = { witnesses, members: witnesses.slice(0, GROUP_SIZE), keys: [] }));
      group.keys.push(key);
    }
    const decided: Buffer[] = [];
    for (const { witnesses, members, keys: all } of groups.values()) {
      // A group's few records go alone: their steps share rec.steps frames with other groups' (a batch's do not).
      if (all.length < MIN_BATCH || !members.some((m) => m.equals(this.#links.self))) {
        left.push(...all);
        continue;
      }
      for (let at = 0; at < all.length; at += MAX_BATCH) {
        const batch = all.slice(at, at + MAX_BATCH);
        const locks = batch.map((key) => idOf(book.persona, key));
        const outcome = await this.#links.locks.runAll(locks, () => this.#decideBatch(book, witnesses, members, batch, change));
        decided.push(...outcome.decided);
        left.push(...outcome.left);
      }
    }
    return { decided, left };
  }

  async #decideBatch(
    book: RecordBook,
    witnesses: Name[],
    members: Name[],
    keys: readonly Buffer[],
    change: (key: Buffer, current: Buffer | null, version: number) => Promise<Buffer | null | undefined>,
  ): Promise<{ decided: Buffer[]; left: Buffer[] }> {
    const { view, clock } = this.#links.network;
    const deadline = clock.now() + DECISION_DEADLINE_MS;
    const { persona } = book;
    const needed = quorumOf(members.length, view.knownCount());
    // This vault votes only where the others fall one short: its own promise and acceptance cost as much as a member's.
    const others = witnesses.filter((w) => !w.equals(this.#links.self));
    const otherMembers = members.filter((m) => !m.equals(this.#links.self));
    const isMember = others.map((w) => members.some((m) => m.equals(w)));
    const left: Buffer[] = [];
    const current = this.#states(book, keys);
    const ballot = this.#nextBallot();
    // Phase 1, for every record: the two vaults after the members are asked too, in case one holds a newer state.
    const slots = keys.map((key, i) => ({ key, slot: current[i]!.version + 1 }));
    const prepared = await this.#askMany(others, { type: 'rec.prepareMany', persona, ballot, slots });
    const promises = slots.map((_, i) => prepared.filter((r, w) => isMember[w] && r[i]?.promised).length);
    const ownPromises = this.#ownVotes(promises, needed, (at): MessageOf<'rec.prepareMany'> => ({ type: 'rec.prepareMany', persona, ballot, slots: at.map((i) => slots[i]!) }));
    const ready: number[] = [];
    keys.forEach((key, i) => {
      const replies = [...prepared.map((r) => r[i]), ownPromises.get(i)];
      const promised = promises[i]! + (ownPromises.get(i)?.promised ? 1 : 0);
      const newer = this.#adoptNewest(book, key, replies.map((r) => r?.committed ?? null));
      if (newer || promised < needed || replies.some((r) => r?.accepted)) left.push(key);
      else ready.push(i);
    });
    // The changes work (copies sent) side by side; a record whose change fails waits for the next review.
    const values = await Promise.all(ready.map((i) => change(keys[i]!, current[i]!.value, current[i]!.version).catch(() => undefined)));
    const proposals = ready
      .map((i, n) => ({ i, value: values[n] }))
      .filter((p): p is { i: number; value: Buffer | null } => p.value !== undefined)
      .map(({ i, value }) => ({ key: keys[i]!, value: { version: current[i]!.version + 1, value, ops: current[i]!.ops } }));
    if (proposals.length === 0) return { decided: [], left };
    if (clock.now() > deadline) return { decided: [], left: [...left, ...proposals.map((p) => p.key)] };
    // Phase 2: a record a quorum of members accepts is chosen.
    const accepted = await this.#askMany(otherMembers, { type: 'rec.acceptMany', persona, ballot, values: proposals });
    const acceptances = proposals.map((_, n) => accepted.filter((r) => r[n]?.accepted).length);
    const ownAcceptances = this.#ownVotes(acceptances, needed, (at): MessageOf<'rec.acceptMany'> => ({ type: 'rec.acceptMany', persona, ballot, values: at.map((n) => proposals[n]!) }));
    const chosen: typeof proposals = [];
    proposals.forEach((proposal, n) => {
      if (acceptances[n]! + (ownAcceptances.get(n)?.accepted ? 1 : 0) >= needed) chosen.push(proposal);
      else {
        this.#adoptNewest(book, proposal.key, [...accepted.map((r) => r[n]?.committed ?? null), ownAcceptances.get(n)?.committed ?? null]);
        left.push(proposal.key);
      }
    });
    if (chosen.length === 0) return { decided: [], left };
    // The values are chosen: this vault installs them, and the others install those they accepted.
    const committed = this.#askMany(otherMembers, { type: 'rec.commitMany', persona, ballot, keys: chosen.map((p) => p.key) });
    this.#installAll(book, chosen.map((p) => p.key), chosen.map(({ key, value }) => () => this.install(book, key, value)));
    await committed;
    return { decided: chosen.map((p) => p.key), left };
  }

  /**
   * This vault's own votes in a batch step, for the records (by index) whose count of other members'
   * votes is one short of `needed`: those where its vote makes the quorum. Each one's reply, by index.
   */
  #ownVotes<T extends BatchStep>(counts: readonly number[], needed: number, message: (at: number[]) => MessageOf<T>): Map<number, ReplyOfMany<T> | undefined> {
    const at = counts.flatMap((count, i) => (count === needed - 1 ? [i] : []));
    if (at.length === 0) return new Map();
    const handlers = { 'rec.prepareMany': this.onPrepareMany, 'rec.acceptMany': this.onAcceptMany, 'rec.commitMany': this.onCommitMany } as const;
    const asked = message(at);
    const replies = (handlers[asked.type] as unknown as (m: MessageOf<T>) => Reply<T>).call(this, asked);
    const each = eachReply(asked);
    return new Map(at.map((i, n) => [i, each(replies.replies[n])]));
  }

  /** Runs a batch's installs, of the records of `keys`, in one transaction, grouped (RecordBook.grouped). */
  #installAll<T>(book: RecordBook, keys: readonly Buffer[], installs: (() => T)[]): T[] {
    return this.#links.db.transaction(() => this.#grouped(book, keys, () => installs.map((install) => install())))();
  }

  /** `work` about the records of `keys`, grouped if the book can (RecordBook.grouped). */
  #grouped<T>(book: RecordBook, keys: readonly Buffer[], work: () => T, read?: 'records' | 'versions'): T {
    return book.grouped ? book.grouped(work, keys, read) : work();
  }

  /** Sends one step of a batch to each of `targets` (never this vault): each one's replies, in record order, a refused record's or an unreachable target's as undefined. */
  async #askMany<T extends BatchStep>(targets: Name[], message: MessageOf<T>): Promise<(ReplyOfMany<T> | undefined)[][]> {
    const answers = await Promise.allSettled(targets.map((target) => this.#links.network.request(target, message)));
    const each = eachReply(message);
    return answers.map((a) => (a.status === 'fulfilled' ? (a.value as Reply<T>).replies.map(each) : []));
  }

  /**
   * Finishes every decision this member accepted a value for but never saw committed, because its
   * proposer died or the commit was lost: otherwise a chosen state (a delete that was answered)
   * could stay hidden behind the older state the rest of the group still shows. Finishing decides
   * the accepted value's slot and nothing more (a batch's value names no operation of its own), so
   * it ends with whatever the group chose for it. Returns how many it finished.
   */
  async finishUnfinished(): Promise<number> {
    const before = this.#links.network.clock.now() - UNFINISHED_DECISION_MS;
    let finished = 0;
    const rows = this.#sql.unfinished.all(before).map((row) => ({ ...row, value: decodeCanonical(row.value) as unknown as RecordState }));
    for (const { page, key, slot } of this.#batched.values()) if (slot.value && page.at < before) rows.push({ persona: page.persona, key, value: slot.value });
    for (const row of rows) {
      const book = this.#books.get(row.persona as Persona);
      if (!book) continue;
      const nothingLeft = () => fail('conflict', 'no value was accepted for that slot by the members asked');
      await this.decide(book, row.key, FINISHING, nothingLeft, { through: row.value.version }).then(
        () => finished++,
        () => undefined, // no member asked holds a value for it, or this vault left the group: its new members hold the record
      );
    }
    return finished;
  }

  /**
   * Asks `targets` (self answered locally), resolving once every one answered or once a quorum of
   * `members` answered `good`: a dead member in someone's view costs a timeout only when needed.
   */
  #gather<T extends 'rec.prepare' | 'rec.accept'>(
    targets: Name[],
    members: Name[],
    needed: number,
    message: MessageOf<T>,
    good: (reply: Reply<T>) => boolean,
  ): Promise<{ target: Name; member: boolean; reply: Reply<T> }[]> {
    return new Promise((resolve) => {
      const replies: { target: Name; member: boolean; reply: Reply<T> }[] = [];
      let pending = targets.length;
      let goodMembers = 0;
      const settle = () => {
        if (pending === 0 || goodMembers >= needed) resolve(replies);
      };
      for (const target of targets) {
        const member = members.some((m) => m.equals(target));
        this.#step(target, message).then(
          (reply) => {
            replies.push({ target, member, reply: reply as Reply<T> });
            // A refusal names the ballot promised instead: the next round outranks it, not just our last one.
            const promise = (reply as Reply<T>).promise;
            if (promise) this.#seeRound(promise);
            if (member && good(reply as Reply<T>)) goodMembers++;
            pending--;
            settle();
          },
          () => {
            pending--;
            settle();
          },
        );
      }
      settle();
    });
  }

  /** A member's answer to any step of a decision. */
  onDecision<T extends 'rec.prepare' | 'rec.accept' | 'rec.commit'>(message: MessageOf<T>): Reply<T> {
    const m = message as MessageOf<'rec.prepare'> | MessageOf<'rec.accept'> | MessageOf<'rec.commit'>;
    return (m.type === 'rec.prepare' ? this.onPrepare(m) : m.type === 'rec.accept' ? this.onAccept(m) : this.onCommit(m)) as Reply<T>;
  }

  /**
   * A member's answers to several steps, in one transaction. Each step is judged on its own (`check`,
   * then its handler), and a refused step changes nothing: every handler refuses before it writes.
   */
  onSteps(steps: readonly RecStep[], check: (step: RecStep) => void = () => undefined): Reply<'rec.steps'> {
    return { replies: steps.map((step) => answered(() => (check(step), this.onDecision(step)))) };
  }

  /** Sends a decision step to `to` (answered here if it is this vault) with the others asked for in this turn. */
  #step<T extends RecStep['type']>(to: Name, step: MessageOf<T>): Promise<Reply<T>> {
    return this.#outbox.ask(to, step as RecStep) as Promise<Reply<T>>;
  }

  /**
   * Sends this member's committed state to the members that answered as behind (neither a ballot nor
   * a newer state: every other answer names one): one that accepted that very state, and missed its
   * commit, installs it now.
   */
  #catchUp(book: RecordBook, key: Buffer, current: RecordState, replies: { target: Name; reply: { promise: Buffer | null; committed: RecordState | null } }[]): void {
    if (current.version === 0) return;
    for (const { target, reply } of replies) {
      if (reply.promise === null && reply.committed === null) {
        void this.#step(target, { type: 'rec.commit', persona: book.persona, key, value: current }).catch(() => undefined);
      }
    }
  }

  /** Adopts the newest committed state among the replies, if newer than ours. */
  #adoptNewest(book: RecordBook, key: Buffer, states: (RecordState | null)[]): boolean {
    const newest = states.filter((s): s is RecordState => s !== null).sort((a, b) => b.version - a.version)[0];
    if (!newest) return false;
    try {
      return this.install(book, key, newest);
    } catch (error) {
      if (isSafeVaultError(error)) return false; // a malformed state from a peer is ignored
      throw error;
    }
  }

  #backoff(round: number): Promise<void> {
    const { clock } = this.#links.network;
    return sleep(clock, Math.min(2000, 20 * 2 ** round) * (0.5 + clock.random()));
  }

  #nextBallot(): Buffer {
    const ballot = Buffer.alloc(BALLOT_BYTES);
    ballot.writeUInt32BE(++this.#round, 0);
    this.#links.self.copy(ballot, 4);
    return ballot;
  }

  #seeRound(ballot: Buffer): void {
    this.#round = Math.max(this.#round, ballot.readUInt32BE(0));
  }

  #slot(book: RecordBook, key: Buffer): Slot | undefined {
    const batched = this.#batched.get(idOf(book.persona, key));
    if (batched) return batched.slot;
    const row = this.#slotRow(book.persona, key);
    if (!row) return undefined;
    return { slot: row.slot, promised: row.promised, ballot: row.ballot, value: row.value ? (decodeCanonical(row.value) as unknown as RecordState) : null };
  }

  #slotRow(persona: Persona, key: Buffer): { slot: number; promised: Buffer; ballot: Buffer | null; value: Buffer | null } | undefined {
    return this.#slotRows.has(idOf(persona, key)) ? this.#sql.slot.get(persona, key) : undefined;
  }

  #clearSlot(persona: Persona, key: Buffer, upTo: number): void {
    if (this.#slotRows.has(idOf(persona, key))) this.#sql.clearSlot.run(persona, key, upTo);
  }

  #saveSlot(book: RecordBook, key: Buffer, slot: Slot): void {
    this.#slotRows.add(idOf(book.persona, key));
    const value = slot.value ? canonical(slot.value as unknown as WireValue) : null;
    this.#sql.setSlot.run(book.persona, key, slot.slot, slot.promised, slot.ballot, value, this.#links.network.clock.now());
    this.#dropBatched(book.persona, key, Number.MAX_SAFE_INTEGER);
  }

  // --- the pages of batched slots ---

  #page(persona: Persona, ballot: Buffer): Page {
    const id = idOf(persona, ballot);
    let page = this.#pages.get(id);
    if (!page) this.#pages.set(id, (page = { persona, ballot, at: this.#links.network.clock.now(), keys: new Set() }));
    return page;
  }

  #setBatched(page: Page, key: Buffer, slot: Slot): void {
    const id = idOf(page.persona, key);
    const before = this.#batched.get(id)?.page;
    if (before && before !== page) {
      before.keys.delete(id);
      if (before.keys.size === 0) this.#writePage(before);
    }
    this.#batched.set(id, { page, key, slot });
    page.keys.add(id);
  }

  /** Forgets the record's batched slot if it is `upTo` or before (it was decided, or forgotten with its record); `write`: its page's row too. */
  #dropBatched(persona: Persona, key: Buffer, upTo: number, write = true): void {
    const id = idOf(persona, key);
    const batched = this.#batched.get(id);
    if (!batched || batched.slot.slot > upTo) return;
    this.#batched.delete(id);
    batched.page.keys.delete(id);
    // A page still holding other slots keeps its row as it is: a slot there that is out of date loses to a newer one when the page is read again.
    if (write && batched.page.keys.size === 0) this.#writePage(batched.page);
  }

  #entriesOf(page: Page): { key: Buffer; slot: Slot }[] {
    return [...page.keys].map((id) => this.#batched.get(id)!);
  }

  /** Writes the page's row with the slots that are its own (none: removes it). */
  #writePage(page: Page): void {
    if (page.keys.size === 0) {
      this.#pages.delete(idOf(page.persona, page.ballot));
      this.#sql.removePage.run(page.persona, page.ballot);
      return;
    }
    const slots = this.#entriesOf(page).map(({ key, slot }) => [key, slot.slot, slot.promised, slot.ballot, slot.value as unknown as WireValue]);
    this.#sql.setPage.run(page.persona, page.ballot, canonical(slots), page.at);
  }

  /**
   * Reads a persona's pages back (at start): a record's slot is the newest of its pages' and its own
   * row's, by slot and then promise (every write of a slot was at least the one it replaced), and none
   * that is decided already.
   */
  #loadPages(book: RecordBook): void {
    const rows = this.#sql.pages.all(book.persona);
    for (const row of rows) {
      const page: Page = { persona: book.persona, ballot: row.ballot, at: row.at, keys: new Set() };
      this.#pages.set(idOf(book.persona, row.ballot), page);
      for (const { key, ...slot } of readSlots(row.slots)) {
        if (this.#committed(book, key).version >= slot.slot) continue;
        const held = this.#slot(book, key);
        if (held && (held.slot > slot.slot || (held.slot === slot.slot && Buffer.compare(held.promised, slot.promised) >= 0))) continue;
        this.#setBatched(page, key, slot);
      }
    }
    for (const page of [...this.#pages.values()].filter((p) => p.persona === book.persona)) this.#writePage(page);
  }
}

/**
 * A page's slots as stored: each a list (key, slot, promised, ballot, value), written and read
 * without a map's sorted keys; a page written before as maps (key, slot, ...) reads the same.
 */
function readSlots(stored: Buffer): (Slot & { key: Buffer })[] {
  return (decodeCanonical(stored) as unknown as (PageSlot | (Slot & { key: Buffer }))[]).map((entry) =>
    Array.isArray(entry) ? { key: entry[0], slot: entry[1], promised: entry[2], ballot: entry[3], value: entry[4] } : entry,
  );
}
type PageSlot = [key: Buffer, slot: number, promised: Buffer, ballot: Buffer | null, value: RecordState | null];

/** A stored null reply, and the operation id of a decision being finished (finishUnfinished), which applies no operation of its own. */
const NULL_REPLY = canonical(null);
const FINISHING = Buffer.alloc(0);

/**
 * A record's (or a page's, by its ballot) id in this vault's maps and locks: its persona and key.
 * The last one is kept, by the key's object: a step asks for a record's id several times in a row
 * (and a kept string's hash is worked out once); keys are never changed once made.
 */
function idOf(persona: string, key: Buffer): string {
  if (key !== lastKey || persona !== lastPersona) {
    lastId = `${persona}:${toHex(key)}`;
    lastKey = key;
    lastPersona = persona;
  }
  return lastId;
}
let lastKey: Buffer | undefined;
let lastPersona = '';
let lastId = '';

type Ops = RecordState['ops'];

/** A record's remembered operations as stored: a list of [op, reply] pairs. */
const encodeOps = (ops: Ops): Buffer => canonical(ops.map(({ op, reply }) => [op, reply]));
const decodeOps = (stored: Buffer): Ops => (decodeCanonical(stored) as [Buffer, Buffer][]).map(([op, reply]) => ({ op, reply }));

/** Moves remembered operations from rec_op, a row each, to rec_ops, a row per record (at: the newest of its operations'). */
function moveOps(db: Db): void {
  const rows = db.prepare<[], { persona: string; key: Buffer; op: Buffer; reply: Buffer; at: number }>('SELECT persona, key, op, reply, at FROM rec_op ORDER BY persona, key, seq').all();
  const records = new Map<string, { persona: string; key: Buffer; ops: Ops; at: number }>();
  for (const { persona, key, op, reply, at } of rows) {
    const id = idOf(persona, key);
    const record = records.get(id) ?? { persona, key, ops: [], at };
    record.ops.push({ op, reply });
    record.at = Math.max(record.at, at);
    records.set(id, record);
  }
  const insert = db.prepare<[string, Buffer, Buffer, number]>('INSERT INTO rec_ops (persona, key, ops, at) VALUES (?, ?, ?, ?)');
  for (const { persona, key, ops, at } of records.values()) insert.run(persona, key, encodeOps(ops), at);
  db.exec('DROP TABLE rec_op');
}

type BatchStep = 'rec.prepareMany' | 'rec.acceptMany' | 'rec.commitMany';

/** One record's reply within a batch step's reply. */
type ReplyOfMany<T extends BatchStep> = Extract<Reply<T>['replies'][number], { reply: unknown }>['reply'];

/**
 * Each batch step's usual answer for a record, at the step's ballot (promised, accepted, installed,
 * with nothing more to say), which goes as null (see messages.ts): how to tell it, and what null reads as.
 */
const USUAL: { [T in BatchStep]: { is(reply: ReplyOfMany<T>): boolean; at(ballot: Buffer): ReplyOfMany<T> } } = {
  'rec.prepareMany': { is: (r) => r.promised && !r.accepted && !r.committed, at: (ballot) => ({ promised: true, promise: ballot, accepted: null, committed: null }) },
  'rec.acceptMany': { is: (r) => r.accepted, at: (ballot) => ({ accepted: true, promise: ballot, committed: null }) },
  'rec.commitMany': { is: (r) => r.installed, at: () => ({ installed: true }) },
};

/** A batch step's answers as sent: each usual one as null. */
function asSent<T extends BatchStep>(message: MessageOf<T>, answers: Answered<ReplyOfMany<T>>[]): Reply<T>['replies'] {
  const { is } = USUAL[message.type as T];
  return answers.map((a) => ('reply' in a && is(a.reply) ? null : a)) as Reply<T>['replies'];
}

/** Reads one record's answer in a batch step's reply: null is the usual answer at the step's ballot, a refusal is undefined. */
function eachReply<T extends BatchStep>(message: MessageOf<T>): (answer: Reply<T>['replies'][number] | undefined) => ReplyOfMany<T> | undefined {
  const usual = USUAL[message.type as T].at(message.ballot);
  return (answer) => (answer === null ? usual : answer && 'reply' in answer ? (answer.reply as ReplyOfMany<T>) : undefined);
}

/** Resolves once `count` of `checks` resolved true, or all of them resolved. */
function atLeast(checks: readonly Promise<boolean>[], count: number): Promise<void> {
  return new Promise((resolve) => {
    let [yes, left] = [0, checks.length];
    const settle = () => (yes >= count || left === 0) && resolve();
    for (const check of checks) void check.then((ok) => ((yes += ok ? 1 : 0), left--, settle()));
    settle();
  });
}
