/**
 * storage_node: holds chunk bytes as content-addressed files within its donated space. The hash is
 * checked on every write, so it never keeps a chunk that fails it; reads are checked by whoever reads
 * (a client or a data_manager), who reports a holder that serves bad bytes. Bytes
 * that no data_manager lists any more are swept, only on the group's word: a quorum read showing the
 * chunk's record, at a version newer than the one the placement built on, deleted or listing other
 * holders (so a placement still being decided is never swept). A chunk counts as held once its file
 * is written and its row committed; writes under way have their room set aside.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { GROUP_SIZE, MAX_CHUNK_SIZE, MAX_STAGED_BYTES, STAGE_TTL_MS, SWEEP_RECHECK_MS } from '../constants.ts';
import { derivedOp } from '../clientRequest.ts';
import { migrate } from '../db.ts';
import { fail } from '../../api/errors.ts';
import { REPORT_BATCH, type MessageOf, type NodeChange, type Reply } from '../messages.ts';
import { sha256, toHex, type Name } from '../names.ts';
import type { VaultContext } from './context.ts';

const migrations = [
  `CREATE TABLE sn_chunk (name BLOB PRIMARY KEY, size INTEGER NOT NULL) WITHOUT ROWID, STRICT;`,
  // When the bytes last arrived and when a data_manager group last confirmed them.
  `ALTER TABLE sn_chunk ADD COLUMN stored_at INTEGER NOT NULL DEFAULT 0;
   ALTER TABLE sn_chunk ADD COLUMN checked_at INTEGER NOT NULL DEFAULT 0;
   ALTER TABLE sn_chunk ADD COLUMN base INTEGER NOT NULL DEFAULT 0;`,
  // Reports to this node's manager group not yet acknowledged, written with the disk change they tell of.
  `CREATE TABLE sn_report (seq INTEGER PRIMARY KEY, op BLOB NOT NULL UNIQUE, chunk BLOB NOT NULL, size INTEGER NOT NULL, change TEXT NOT NULL) STRICT;`,
  // The report (operation id) a queued change went out in: until acknowledged, that report is sent again as it was.
  `ALTER TABLE sn_report ADD COLUMN report BLOB;`,
];

/**
 * A node reports its disk changes at most this often: a busy node's changes go out together, one
 * decision of its manager group for many, and a quiet node's at once.
 */
const REPORT_INTERVAL_MS = 1000;
/** Chunks checked with their data_manager group per sweep: the disk is reviewed a slice at a time. */
const SWEEP_BATCH = 64;

/** Refuses bytes that are not the chunk they claim to be, or bigger than any chunk may be. */
export function checkChunk(name: Name, bytes: Buffer): void {
  if (bytes.length > MAX_CHUNK_SIZE) fail('too-large', `chunk is ${bytes.length} bytes; a chunk holds at most ${MAX_CHUNK_SIZE}`);
  if (!sha256(bytes).equals(name)) fail('bad-hash', `chunk bytes do not hash to ${toHex(name)}`);
}

/**
 * Writes chunk files, each into one of 256 folders (made once, not looked up on every store): to a
 * temp file, then renamed, so a crash leaves either no file or the whole chunk, never a torn one.
 * In the background, a folder is made only inside `root`: a vault's data removed meanwhile stays removed.
 */
function chunkFileWriter(root: string, background: boolean): (path: string, bytes: Buffer) => Promise<void> | undefined {
  const dirs = new Set<string>();
  const tempOf = (path: string) => `${path}.${process.pid}.tmp`;
  if (!background) {
    return (path, bytes) => {
      const dir = dirname(path);
      if (!dirs.has(dir)) {
        mkdirSync(dir, { recursive: true });
        dirs.add(dir);
      }
      writeFileSync(tempOf(path), bytes);
      renameSync(tempOf(path), path);
      return undefined;
    };
  }
  mkdirSync(root, { recursive: true });
  return async (path, bytes) => {
    const dir = dirname(path);
    if (!dirs.has(dir)) {
      await mkdir(dir).catch((error: NodeJS.ErrnoException) => {
        if (error.code !== 'EEXIST') throw error;
      });
      dirs.add(dir);
    }
    await writeFile(tempOf(path), bytes);
    await rename(tempOf(path), path);
  };
}

export class StorageNode {
  readonly #ctx: VaultContext;
  readonly #chunksDir: string;
  readonly #sql;
  readonly #staged = new Map<string, { bytes: Buffer; at: number }>();
  #stagedBytes = 0;
  /** Writes a chunk's file whole (a temp file, then a rename): at once, or on libuv's threads (a promise). */
  readonly #writeFile: (path: string, bytes: Buffer) => Promise<void> | undefined;
  /** Chunks whose files are being written in the background, and the room they take together. */
  readonly #writing = new Map<string, Promise<void>>();
  #writingBytes = 0;
  #usage: { count: number; bytes: number };
  #delivery = Promise.resolve();
  /** When the last report went out, and whether the next is already due (see REPORT_INTERVAL_MS). */
  #reportedAt = -Infinity;
  #reportDue = false;
  /** Whether this vault's view has taken in the network (see sweepAll). */
  #viewSettled = false;
  #cutOff = false;
  /** The check of every chunk under way, if one is: a second request joins it. */
  #checkingAll: Promise<void> | undefined;
  donated: number;

  /** `backgroundWrites`: chunk files are written off the event loop (not on a virtual clock, whose runs must replay exactly). */
  constructor(ctx: VaultContext, chunksDir: string, donated: number, backgroundWrites = false) {
    this.#ctx = ctx;
    this.#chunksDir = chunksDir;
    this.donated = donated;
    this.#writeFile = chunkFileWriter(chunksDir, backgroundWrites);
    migrate(ctx.db, 'storage_node', migrations);
    const db = ctx.db;
    this.#sql = {
      has: db.prepare<[Buffer], 1>('SELECT 1 FROM sn_chunk WHERE name = ?').pluck(),
      insert: db.prepare<[Buffer, number, number, number]>('INSERT INTO sn_chunk (name, size, stored_at, base) VALUES (?, ?, ?, ?)'),
      touch: db.prepare<[number, number, Buffer]>('UPDATE sn_chunk SET stored_at = ?, base = max(base, ?) WHERE name = ?'),
      base: db.prepare<[Buffer], number>('SELECT base FROM sn_chunk WHERE name = ?').pluck(),
      checked: db.prepare<[number, Buffer]>('UPDATE sn_chunk SET checked_at = ? WHERE name = ?'),
      remove: db.prepare<[Buffer], number>('DELETE FROM sn_chunk WHERE name = ? RETURNING size').pluck(),
      due: db.prepare<[number, number], { name: Buffer; size: number }>('SELECT name, size FROM sn_chunk WHERE checked_at < ? ORDER BY checked_at LIMIT ?'),
      after: db.prepare<[Buffer, number], Buffer>('SELECT name FROM sn_chunk WHERE name > ? ORDER BY name LIMIT ?').pluck(),
      usage: db.prepare<[], { count: number; bytes: number }>('SELECT count(*) AS count, coalesce(sum(size), 0) AS bytes FROM sn_chunk'),
      queueReport: db.prepare<[Buffer, Buffer, number, string]>('INSERT OR IGNORE INTO sn_report (op, chunk, size, change) VALUES (?, ?, ?, ?)'),
      pending: db.prepare<[], Buffer>('SELECT report FROM sn_report WHERE report IS NOT NULL ORDER BY seq LIMIT 1').pluck(),
      unsent: db.prepare<[number], { op: Buffer }>('SELECT op FROM sn_report WHERE report IS NULL ORDER BY seq LIMIT ?'),
      assign: db.prepare<[Buffer, Buffer]>('UPDATE sn_report SET report = ? WHERE op = ?'),
      changes: db.prepare<[Buffer], { chunk: Buffer; size: number; change: NodeChange }>('SELECT chunk, size, change FROM sn_report WHERE report = ? ORDER BY seq'),
      reported: db.prepare<[Buffer]>('DELETE FROM sn_report WHERE report = ?'),
    };
    this.#dropUnlisted();
    void ctx.network.view.settled().then(() => (this.#viewSettled = true));
    // Cut off from its groups (fewer vaults in view than a group), this node missed what they decided
    // meanwhile, and its chunks are not due for a while: when it sees them again, every chunk is
    // checked, as after a restart.
    ctx.network.view.onChange((change) => {
      if (change.after.length < GROUP_SIZE) this.#cutOff = true;
      else if (this.#cutOff && change.kind === 'joined') {
        this.#cutOff = false;
        void this.sweepAll().catch(() => undefined);
      }
    });
    // Counted once at open and kept in step, so a put doesn't sum the whole table.
    this.#usage = this.#sql.usage.get()!;
  }

  /**
   * A vault that stopped mid-write can leave a temp file, or a chunk file whose row never committed.
   * Neither was acknowledged, so both go: the disk holds exactly what the table says.
   */
  #dropUnlisted(): void {
    const root = this.#chunksDir;
    for (const dir of existsSync(root) ? readdirSync(root) : []) {
      for (const file of readdirSync(join(root, dir))) {
        if (!/^[0-9a-f]{64}$/.test(file) || !this.#sql.has.get(Buffer.from(file, 'hex'))) rmSync(join(root, dir, file), { force: true });
      }
    }
  }

  usage(): { count: number; bytes: number } {
    return { ...this.#usage };
  }

  pathOf(chunk: Name): string {
    const hex = toHex(chunk);
    return join(this.#chunksDir, hex.slice(0, 2), hex);
  }

  // --- staging: the client's one upload of a chunk, kept in memory until a data_manager fetches it ---

  onStage(msg: MessageOf<'chunk.stage'>): Reply<'chunk.stage'> {
    const now = this.#ctx.clock.now();
    for (const [hex, entry] of this.#staged) {
      if (now - entry.at <= STAGE_TTL_MS) break;
      this.#unstage(hex);
    }
    checkChunk(msg.chunk, msg.bytes);
    const hex = toHex(msg.chunk);
    if (this.#staged.has(hex)) this.#unstage(hex); // re-staged: moves to the back of the expiry order
    if (this.#stagedBytes + msg.bytes.length > MAX_STAGED_BYTES) fail('unavailable', 'this vault has too many uploads waiting; try again shortly');
    this.#staged.set(hex, { bytes: msg.bytes, at: now });
    this.#stagedBytes += msg.bytes.length;
    return { staged: true };
  }

  /** The chunk's bytes if staged or held here, checked against its name (staged ones when they arrived). */
  staged(chunk: Name): Buffer | undefined {
    const staged = this.#staged.get(toHex(chunk))?.bytes;
    if (staged) return staged;
    const held = this.#read(chunk);
    if (held) checkChunk(chunk, held);
    return held;
  }

  onStageFetch(msg: MessageOf<'stage.fetch'>): Reply<'stage.fetch'> {
    const bytes = this.staged(msg.chunk) ?? fail('not-found', `chunk ${toHex(msg.chunk).slice(0, 12)} is not staged here (upload it again)`);
    return { bytes };
  }

  #unstage(hex: string): void {
    const entry = this.#staged.get(hex);
    if (!entry) return;
    this.#staged.delete(hex);
    this.#stagedBytes -= entry.bytes.length;
  }

  // --- holding chunks ---

  /**
   * A data_manager of the chunk (the vault checked the sender) hands this node a copy to hold. Answered
   * once the bytes are in their file and the chunk in the table; with background writes, other
   * messages are handled meanwhile.
   */
  onStore(msg: MessageOf<'node.store'>): Reply<'node.store'> | Promise<Reply<'node.store'>> {
    if (msg.bytes) checkChunk(msg.chunk, msg.bytes);
    return this.#store(msg);
  }

  /** A store whose bytes, if sent, are checked. */
  #store(msg: MessageOf<'node.store'>): Reply<'node.store'> | Promise<Reply<'node.store'>> {
    const hex = toHex(msg.chunk);
    // The same chunk being written already: this store is judged once that write is in the table.
    const writing = this.#writing.get(hex);
    if (writing) return writing.then(() => this.#store(msg));
    const now = this.#ctx.clock.now();
    // Already held: the new placement counts on these bytes, so they are now its.
    if (this.#sql.touch.run(now, msg.base, msg.chunk).changes > 0) return { added: false };
    // Bytes not sent are the ones staged here, checked against their name when they arrived, or a
    // repair's: fetched straight from a holder (and checked), so they cross once, not through the data manager.
    const staged = msg.bytes ?? this.#staged.get(hex)?.bytes;
    if (!staged && msg.from) return this.#fetchFrom(msg.chunk, msg.from).then((bytes) => this.#store({ ...msg, bytes, from: undefined }));
    const bytes = staged ?? fail('not-found', `chunk ${hex.slice(0, 12)} is not staged here`);
    // Writes under way have their room set aside, so two of them cannot both take the last of it.
    if (this.#usage.bytes + this.#writingBytes + bytes.length > this.donated) {
      fail('no-space', `vault ${toHex(this.#ctx.self).slice(0, 12)} has no room for ${bytes.length} more bytes`);
    }
    const written = this.#writeFile(this.pathOf(msg.chunk), bytes);
    if (!written) return this.#stored(msg, bytes.length, now);
    this.#writingBytes += bytes.length;
    const done = () => {
      this.#writingBytes -= bytes.length;
      this.#writing.delete(hex);
    };
    // The room set aside is given back in the same step the chunk is counted (and its row written):
    // a store judged between the two would see neither, and take that room again or write the file twice.
    const stored = written.then(
      () => {
        done();
        return this.#stored(msg, bytes.length, now);
      },
      (error: unknown) => {
        done();
        throw error;
      },
    );
    this.#writing.set(hex, stored.then(() => undefined, () => undefined));
    return stored;
  }

  /** The chunk's bytes from the first of `holders` that serves them intact. */
  async #fetchFrom(chunk: Name, holders: readonly Name[]): Promise<Buffer> {
    for (const holder of holders) {
      try {
        const { bytes } = await this.#ctx.network.request(holder, { type: 'node.get', chunk });
        checkChunk(chunk, bytes);
        return bytes;
      } catch {
        // the next holder
      }
    }
    return fail('unavailable', `no holder of chunk ${toHex(chunk).slice(0, 12)} served its bytes intact`);
  }

  /** The chunk's file is written: it is held from now on, and its managers hear of it. */
  #stored(msg: MessageOf<'node.store'>, size: number, now: number): Reply<'node.store'> {
    this.#ctx.db.transaction(() => {
      this.#sql.insert.run(msg.chunk, size, now, msg.base);
      this.#queueReport(msg.chunk, size, 'stored', now);
    })();
    this.#count(1, size);
    this.#unstage(toHex(msg.chunk));
    if (msg.copy) this.#ctx.events.emit({ type: 'copy.made', chunk: toHex(msg.chunk), vault: toHex(this.#ctx.self) });
    this.#reportSoon();
    return { added: true };
  }

  onGet(msg: MessageOf<'node.get'>): Reply<'node.get'> {
    if (!this.#sql.has.get(msg.chunk)) fail('not-found', `vault ${toHex(this.#ctx.self).slice(0, 12)} does not hold chunk ${toHex(msg.chunk)}`);
    // Served unchecked: every reader checks the bytes against the name anyway (a client, or a
    // node fetching a repair's copy), and one that fails is reported, so its group drops this copy.
    const bytes = this.#read(msg.chunk) ?? fail('not-found', `chunk ${toHex(msg.chunk)} is missing from vault ${toHex(this.#ctx.self).slice(0, 12)}'s disk`);
    return { bytes };
  }

  /** A hint that a chunk may be gone: checked with its data_manager group before anything is deleted. */
  async onSweep(msg: MessageOf<'node.sweep'>): Promise<Reply<'node.sweep'>> {
    return { deleted: (await this.#sweepOne(msg.chunk)) === 'deleted' };
  }

  /**
   * Reviews a slice of the disk: chunks no data_manager group confirmed lately (and sends the
   * reports still owed). Not before the view has settled: sweepAll checks everything then.
   */
  async sweep(): Promise<void> {
    void this.deliverReports(); // not waited for: an unreachable manager group must not hold the sweep up
    if (!this.#viewSettled) return;
    for (const { name } of this.#sql.due.all(this.#ctx.clock.now() - SWEEP_RECHECK_MS, SWEEP_BATCH)) await this.#sweepOne(name);
  }

  /**
   * After time away: every chunk is checked once (deletes and prunes made meanwhile could not reach
   * this node), when this vault's view has taken in the network: before that, the group it would
   * ask about a chunk may not be the chunk's group.
   */
  sweepAll(): Promise<void> {
    this.#checkingAll ??= this.#checkAll().finally(() => (this.#checkingAll = undefined));
    return this.#checkingAll;
  }

  async #checkAll(): Promise<void> {
    await this.#ctx.network.view.settled();
    void this.deliverReports();
    for (let after: Buffer = Buffer.alloc(0); ; ) {
      const names = this.#sql.after.all(after, SWEEP_BATCH);
      if (names.length === 0) return;
      for (const name of names) await this.#sweepOne(name);
      after = names.at(-1)!;
    }
  }

  /**
   * Checks one chunk, for a sweep or a data_manager's hint. A chunk the group could not settle
   * (unreachable, not knowing of it yet, a decision not yet committed everywhere) stays due, queued
   * behind the chunks due longer: the next sweep asks again, and one such chunk never stalls the rest.
   */
  async #sweepOne(chunk: Name): Promise<'kept' | 'deleted' | 'unsure' | 'absent'> {
    const outcome = await this.#check(chunk).catch(() => 'unsure' as const);
    if (outcome === 'unsure') this.#sql.checked.run(this.#ctx.clock.now() - SWEEP_RECHECK_MS, chunk);
    return outcome;
  }

  /** Asks the chunk's data_manager group about this node's copy: confirmed (kept), deleted, or nothing conclusive. */
  async #check(chunk: Name): Promise<'kept' | 'deleted' | 'unsure' | 'absent'> {
    if (!this.#sql.has.get(chunk)) return 'absent';
    const { reply: { version, record }, newest } = await this.#ctx.groups.readAll(chunk, { type: 'dm.info', chunk });
    if (record?.holders.some((h) => h.equals(this.#ctx.self))) {
      // A member has seen a later decision the rest have not caught up with (yet): not the group's word.
      if (version < newest) return 'unsure';
      this.#sql.checked.run(this.#ctx.clock.now(), chunk);
      return 'kept';
    }
    // Only positive evidence deletes: a decision made after this placement's, that deleted the record
    // or left this node out. An older answer is a placement still being decided, or a group that
    // does not know the chunk (yet): nothing is concluded from it.
    const base = this.#sql.base.get(chunk);
    if (base === undefined) return 'absent';
    if (version <= base) return 'unsure';
    this.#delete(chunk);
    return 'deleted';
  }

  /** Drops the chunk and queues its release for the node's managers; returns its size if it was held. */
  #delete(chunk: Name): number | undefined {
    const now = this.#ctx.clock.now();
    const size = this.#ctx.db.transaction(() => {
      const removed = this.#sql.remove.get(chunk);
      if (removed !== undefined) this.#queueReport(chunk, removed, 'released', now);
      return removed;
    })();
    rmSync(this.pathOf(chunk), { force: true });
    if (size === undefined) return undefined;
    this.#count(-1, -size);
    this.#reportSoon();
    return size;
  }

  #read(chunk: Name): Buffer | undefined {
    try {
      return readFileSync(this.pathOf(chunk));
    } catch {
      return undefined;
    }
  }

  #count(chunks: number, bytes: number): void {
    this.#usage = { count: this.#usage.count + chunks, bytes: this.#usage.bytes + bytes };
  }

  /** Queues a report of a disk change (inside the change's transaction), so the node's account hears of every one, once. */
  #queueReport(chunk: Name, size: number, change: NodeChange, at: number): void {
    const op = sha256(Buffer.concat([Buffer.from(`node.${change}:${at}`), this.#ctx.self, chunk]));
    this.#sql.queueReport.run(op, chunk, size, change);
  }

  /**
   * Tells this node's manager group what changed on its disk, oldest change first: the account must
   * hear of a chunk stored before it hears of it released. Each report carries the changes queued
   * since the last (up to REPORT_BATCH) and is one decision of the group. A report stays queued, as
   * it was first sent, until the group acknowledged it: a resend has the same operation id, so it
   * counts once. One that cannot be delivered holds the rest back until the next attempt (the next
   * change, sweep or return).
   */
  deliverReports(): Promise<void> {
    const self = this.#ctx.self;
    this.#delivery = this.#delivery.then(async () => {
      for (let full = true; full && this.#ctx.db.open; ) {
        const report = this.#nextReport();
        if (!report) return;
        const changes = this.#sql.changes.all(report);
        this.#reportedAt = this.#ctx.clock.now();
        const delivered = await this.#ctx.groups.askMember(self, { type: 'snm.report', op: report, node: self, changes }, { exclude: self }).then(
          () => true,
          () => false,
        );
        // A vault stopped meanwhile keeps the report queued for when it returns.
        if (!delivered || !this.#ctx.db.open) return;
        this.#sql.reported.run(report);
        // A backlog (after time away) goes out at once, a report after another; changes made meanwhile wait their turn.
        full = changes.length === REPORT_BATCH;
      }
      if (this.#ctx.db.open && this.#sql.unsent.get(1)) this.#reportSoon();
    });
    return this.#delivery;
  }

  /** Delivers the queued changes now, or REPORT_INTERVAL_MS after the last report went out, with whatever else comes meanwhile. */
  #reportSoon(): void {
    if (this.#reportDue) return;
    this.#reportDue = true;
    this.#ctx.clock.after(Math.max(0, this.#reportedAt + REPORT_INTERVAL_MS - this.#ctx.clock.now()), () => {
      this.#reportDue = false;
      void this.deliverReports();
    });
  }

  /** The report sent and not yet acknowledged, or else a new one of the oldest changes queued (its id derived from theirs). */
  #nextReport(): Buffer | undefined {
    return this.#ctx.db.transaction(() => {
      const pending = this.#sql.pending.get();
      if (pending) return pending;
      const ops = this.#sql.unsent.all(REPORT_BATCH).map((r) => r.op);
      if (ops.length === 0) return undefined;
      const report = derivedOp('node.report', ...ops);
      for (const op of ops) this.#sql.assign.run(report, op);
      return report;
    })();
  }
}
