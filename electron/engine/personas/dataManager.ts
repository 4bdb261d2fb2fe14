/**
 * data_manager: the group closest to a chunk keeps its record (subscribers, size, ordered holders)
 * and keeps it available through churn, per the RFC:
 * - a holder leaves: every chunk it held (found through the holder index) with fewer than
 *   MIN_HOLDERS online holders gets a new copy on the best-ranked candidate;
 * - a holder (re)joins: it goes to the top of the list; a list longer than MAX_HOLDERS loses its
 *   bottom holder, which is downranked and told (through its manager group) to delete.
 * Every change is one decision of the group (replica.ts): its closest member proposes it, so new
 * holders are chosen once, and the others accept it. Bytes go only to the vaults that will hold them.
 */
import { derivedOp } from '../clientRequest.ts';
import { CANDIDATES, MAX_HOLDERS, MIN_HOLDERS } from '../constants.ts';
import { fail, isSafeVaultError, SafeVaultError, type ErrorCode } from '../../api/errors.ts';
import { MAX_BATCH, type ChunkRecord, type MessageOf, type StoreOrder, type NodeAccount, type NodeChange, type Reply } from '../messages.ts';
import { inRange, NAME_BYTES, rangesNear, sameName, toHex, type Name, type NameRange } from '../names.ts';
import { Outbox } from '../outbox.ts';
import type { Change, RecordBook } from '../replica.ts';
import type { VaultContext } from './context.ts';
import { DataManagerRecords } from './dataManagerRecords.ts';
import { HolderReports } from './holderReports.ts';
import { checkChunk } from './storageNode.ts';

/** Node accounts read for ranking are reused this long: ranks change slowly, and reading 16 accounts per placement is costly. */
const ACCOUNT_CACHE_MS = 10_000;
/** How much wider than the proposer's candidate list a member looks when judging new holders. */
const PLACEMENT_SLACK = 2;
/** A client's put or delete is answered once a quorum installed it, so the client's next read (of any quorum) sees it. */
const READ_YOUR_WRITES = { installed: true };
/** Batches of one lost or returning holder's chunks in review at once: one's copies go while the other's group answers. */
const BATCHES_AT_ONCE = 2;
/** Chunks reviewed alone at once (those a batch leaves): their decisions' steps share rec.steps frames. */
const REVIEWS_AT_ONCE = 8;

export class DataManager implements RecordBook {
  readonly persona = 'data_manager';
  readonly chunks: DataManagerRecords;
  readonly #ctx: VaultContext;
  readonly #staged: (chunk: Name) => Buffer | undefined;
  readonly #accounts = new Map<string, AccountRead>();
  /** The same by the name's object: placement asks for its candidates' accounts by the view's names of them, without working out their hex. */
  readonly #accountsByName = new WeakMap<Name, AccountRead>();
  readonly #reports: HolderReports;
  /** Store orders without bytes (a repair's), per storage node: those of one turn (a review batch's placements) go as one node.storeMany. */
  readonly #storeOrders = new Outbox<StoreOrder, Reply<'node.store'>>({
    alone: (to, order) => this.#ctx.network.request(to, { type: 'node.store', ...order }),
    together: (to, orders) => this.#ctx.network.request(to, { type: 'node.storeMany', orders }),
    typeOf: () => 'node.store',
    max: MAX_BATCH,
  });
  /** The names this vault leads, for the view they were worked out in. */
  #led: { online: readonly Name[]; ranges: NameRange[] } | undefined;

  constructor(ctx: VaultContext, staged: (chunk: Name) => Buffer | undefined) {
    this.#ctx = ctx;
    this.#staged = staged;
    this.chunks = new DataManagerRecords(ctx.db);
    this.#reports = new HolderReports(ctx);
  }

  /** Records held: one per chunk this vault manages. */
  count(): number {
    return this.chunks.count();
  }

  /**
   * Chunks this vault manages with fewer than MIN_HOLDERS online holders, found through the holder
   * index of the offline vaults only (a chunk whose holders are all online is not short).
   */
  underReplicated(offline: readonly Name[], isOnline: (vault: Name) => boolean): string[] {
    const short = new Set<string>();
    for (const vault of offline) {
      for (const chunk of this.chunks.chunksHeldBy(vault)) {
        const record = this.chunks.get(chunk);
        if (record && record.holders.filter(isOnline).length < MIN_HOLDERS) short.add(toHex(chunk));
      }
    }
    return [...short];
  }

  onInfo(msg: MessageOf<'dm.info'>): Reply<'dm.info'> {
    const record = this.chunks.get(msg.chunk);
    const version = record?.version ?? this.#ctx.replicas.state(this, msg.chunk).version;
    return { version, record: record ? { subscribers: record.subscribers, size: record.size, holders: record.holders } : null };
  }

  /**
   * A client's manager group passes down a chunk new to that client: one subscriber more, or a first
   * placement. Decided once per request, counted or refused for good (no room, or the request's
   * deadline passed before it counted), so a repeat from any member gets the same answer.
   */
  onPut(from: Name, msg: MessageOf<'dm.put'>): Promise<Reply<'dm.put'>> {
    const { chunk } = msg;
    return this.#ctx.replicas.decide(this, chunk, derivedOp('dm.put', msg.op), async (current, version): Promise<Change<Reply<'dm.put'>>> => {
      const { size, deadline } = await this.#passedDown(from, msg, 'put');
      const refuse = (code: ErrorCode, message: string) => ({ value: current, reply: { subscribers: 0, holders: [], refused: { code, message } } });
      // Past its deadline the client has been told the request failed: it is refused then, even where the chunk is stored.
      if (this.#ctx.clock.now() > deadline) return refuse('unavailable', expired('store', chunk));
      if (current) {
        const record = decodeRecord(current);
        const next = { ...record, subscribers: record.subscribers + 1 };
        return { value: encodeRecord(next), reply: { subscribers: next.subscribers, holders: next.holders, refused: null } };
      }
      if (!msg.stagedAt) return fail('unavailable', `the first copy of chunk ${toHex(chunk).slice(0, 12)} needs its uploaded bytes`);
      const bytes = await this.#stagedBytes(chunk, msg.stagedAt);
      if (bytes.length !== size) return refuse('bad-request', 'request size does not match the chunk');
      const holders = await this.#placeCopies(chunk, { bytes, stagedAt: msg.stagedAt }, [], MIN_HOLDERS, false, version);
      if (holders.length === 0) return refuse('no-space', `no vault could take chunk ${toHex(chunk)}`);
      return { value: encodeRecord({ subscribers: 1, size: bytes.length, holders }), reply: { subscribers: 1, holders, refused: null } };
    }, READ_YOUR_WRITES);
  }

  /** A client's last reference went: one subscriber fewer; at none the record becomes a tombstone and every holder sweeps. */
  async onDelete(from: Name, msg: MessageOf<'dm.delete'>): Promise<Reply<'dm.delete'>> {
    const { chunk } = msg;
    let holders: Name[] = [];
    const reply = await this.#ctx.replicas.decide(this, chunk, derivedOp('dm.delete', msg.op), async (current): Promise<Change<Reply<'dm.delete'>>> => {
      const { deadline } = await this.#passedDown(from, msg, 'release');
      if (this.#ctx.clock.now() > deadline) return { value: current, reply: { subscribers: 0, refused: { code: 'unavailable', message: expired('delete', chunk) } } };
      if (!current) return { value: null, reply: { subscribers: 0, refused: null } };
      const record = decodeRecord(current);
      if (record.subscribers > 1) {
        return { value: encodeRecord({ ...record, subscribers: record.subscribers - 1 }), reply: { subscribers: record.subscribers - 1, refused: null } };
      }
      holders = record.holders;
      return { value: null, reply: { subscribers: 0, refused: null } };
    }, READ_YOUR_WRITES);
    for (const holder of holders) this.#hintSweep(chunk, holder);
    return reply;
  }

  /**
   * A client says a holder served bad bytes. The member checks for itself (a client's word alone
   * changes nothing); a holder that really fails loses the chunk, is charged the loss, and is replaced.
   */
  async onBadHolder(msg: MessageOf<'dm.badHolder'>): Promise<Reply<'dm.badHolder'>> {
    const record = this.chunks.get(msg.chunk);
    if (!record || !record.holders.some((h) => h.equals(msg.holder))) return { removed: false };
    if (!(await this.#servesBadBytes(msg.chunk, msg.holder))) return { removed: false };
    const op = derivedOp('dm.badHolder', msg.chunk, msg.holder, versionBytes(record.version));
    const removed = await this.#ctx.replicas.decide(this, msg.chunk, op, async (current, version) => {
      if (!current) return { value: null, reply: false };
      const latest = decodeRecord(current);
      if (!latest.holders.some((h) => h.equals(msg.holder))) return { value: current, reply: false };
      const holders = await this.#topUp(msg.chunk, { ...latest, holders: latest.holders.filter((h) => !h.equals(msg.holder)) }, version, [msg.holder]);
      return { value: encodeRecord({ ...latest, holders }), reply: true };
    });
    if (removed) {
      this.#hintSweep(msg.chunk, msg.holder); // it no longer holds the chunk for the group: its bad copy goes
      await this.#report(msg.chunk, msg.holder, record.size, 'lost', record.version);
    }
    return { removed };
  }

  // --- churn ---

  /** A vault left or (re)joined this vault's view: every chunk it held is reviewed. */
  async onMembershipChange(vault: Name, joined: boolean): Promise<void> {
    await this.#reviewHeldBy(vault, joined ? vault : undefined);
  }

  /** Reviews the chunks of every vault this one sees offline (holders short after missed changes), and resends reports owed. */
  async audit(): Promise<void> {
    void this.#reports.resend().catch(() => undefined); // not waited for: an unreachable manager group must not hold the audit up
    const { view } = this.#ctx.network;
    for (const vault of this.chunks.vaults()) {
      if (!view.isOnline(vault)) await this.#reviewHeldBy(vault);
    }
  }

  /**
   * Reviews the chunks `vault` holds. Only those this vault leads can need it here, so the holder
   * index is read for the names it leads (a few of every holder's chunks), and the records found
   * short are decided in batches (Replicas.decideMany); a record a batch leaves is reviewed alone.
   */
  async #reviewHeldBy(vault: Name, cameBack?: Name): Promise<void> {
    const led = this.ledRanges();
    const due: Name[] = [];
    for (const [chunk, record] of this.chunks.recordsAt([...this.chunks.entriesHeldIn(vault, () => led)])) {
      // The holder's entries are judged by 58 bits: a chunk just past a led range's edge is another member's to review.
      if (led.some((range) => inRange(chunk, range)) && this.#needsReview(record, cameBack)) due.push(chunk);
    }
    const batches = Array.from({ length: Math.ceil(due.length / MAX_BATCH) }, (_, i) => due.slice(i * MAX_BATCH, (i + 1) * MAX_BATCH));
    await atOnce(batches, BATCHES_AT_ONCE, (batch) => this.#reviewBatch(batch, cameBack));
  }

  async #reviewBatch(batch: Name[], cameBack?: Name): Promise<void> {
    const reviewed = new Map<string, Reviewed>();
    const { decided, left } = await this.#ctx.replicas.decideMany(this, batch, async (chunk, current, version) => {
      const next = await this.#reviewed(chunk, current, version, cameBack);
      if (next) reviewed.set(toHex(chunk), next);
      return next?.value;
    });
    await Promise.all(decided.map((chunk) => this.#afterReview(chunk, reviewed.get(toHex(chunk))!)));
    await atOnce(left, REVIEWS_AT_ONCE, (chunk) => this.review(chunk, cameBack));
  }

  /** The names whose closest online vault is this one, in its current view: those whose records it proposes changes to. */
  ledRanges(): NameRange[] {
    const online = this.#ctx.network.view.online();
    const same = this.#led && this.#led.online.length === online.length && this.#led.online.every((v, i) => v.equals(online[i]!));
    if (!same) this.#led = { online, ranges: rangesNear(this.#ctx.self, online, 0) };
    return this.#led!.ranges;
  }

  /**
   * Brings one record in line with the rules, if this vault is the closest member of its group (so
   * one member proposes): `cameBack` to the top, copies up to MIN_HOLDERS online, prunes past MAX_HOLDERS.
   */
  async review(chunk: Name, cameBack?: Name): Promise<void> {
    const record = this.chunks.get(chunk);
    if (!record || !this.#leads(chunk) || !this.#needsReview(record, cameBack)) return;
    let reviewed: Reviewed | undefined;
    await this.#ctx.replicas.decide(this, chunk, reviewOp(chunk, record.version, cameBack), async (current, version): Promise<Change<null>> => {
      reviewed = await this.#reviewed(chunk, current, version, cameBack);
      return { value: reviewed?.value ?? current, reply: null };
    });
    if (reviewed) await this.#afterReview(chunk, reviewed);
  }

  /** The record's next value under the rules (copies placed already), or undefined if it needs no change. */
  async #reviewed(chunk: Name, current: Buffer | null, version: number, cameBack?: Name): Promise<Reviewed | undefined> {
    if (!current) return undefined;
    const latest = decodeRecord(current);
    let holders = cameBack && latest.holders.some((h) => h.equals(cameBack)) ? [cameBack, ...latest.holders.filter((h) => !h.equals(cameBack))] : latest.holders;
    holders = await this.#topUp(chunk, { ...latest, holders }, version);
    const { holders: kept, pruned } = this.#prune(holders);
    if (kept.length === latest.holders.length && kept.every((h, i) => sameName(h, latest.holders[i]!))) return undefined;
    return { value: encodeRecord({ ...latest, holders: kept }), pruned, size: latest.size, version };
  }

  /** Once a review's change is decided: the holders it pruned are told to sweep, and their managers to count it. */
  async #afterReview(chunk: Name, { pruned, size, version }: Reviewed): Promise<void> {
    for (const holder of pruned) {
      this.#hintSweep(chunk, holder);
      this.#ctx.events.emit({ type: 'holder.pruned', chunk: toHex(chunk), vault: toHex(holder) });
    }
    await Promise.all(pruned.map((holder) => this.#report(chunk, holder, size, 'pruned', version)));
  }

  /** Whether this vault is the closest member of the chunk's group, as it sees the network: the one that proposes its reviews. */
  #leads(chunk: Name): boolean {
    return !!this.#ctx.groups.members(chunk)[0]?.equals(this.#ctx.self);
  }

  #needsReview(record: ChunkRecord, cameBack?: Name): boolean {
    const online = record.holders.filter((h) => this.#ctx.network.view.isOnline(h)).length;
    return online < MIN_HOLDERS || record.holders.length > MAX_HOLDERS || (!!cameBack && !record.holders[0]?.equals(cameBack) && record.holders.some((h) => h.equals(cameBack)));
  }

  /** New copies at the top until MIN_HOLDERS holders are online (as far as candidates allow). */
  async #topUp(chunk: Name, record: ChunkRecord, base: number, avoid: readonly Name[] = []): Promise<Name[]> {
    const online = record.holders.filter((h) => this.#ctx.network.view.isOnline(h));
    if (online.length >= MIN_HOLDERS) return record.holders;
    if (online.length === 0) return record.holders;
    const added = await this.#placeCopies(chunk, { size: record.size, from: online }, [...record.holders, ...avoid], MIN_HOLDERS - online.length, true, base);
    return [...added, ...record.holders];
  }

  /** Past MAX_HOLDERS, holders go from the bottom; an offline one before an online one, so a prune never costs a live copy needlessly. */
  #prune(list: Name[]): { holders: Name[]; pruned: Name[] } {
    const holders = [...list];
    const pruned: Name[] = [];
    while (holders.length > MAX_HOLDERS) {
      const offline = holders.findLastIndex((h) => !this.#ctx.network.view.isOnline(h));
      pruned.push(...holders.splice(offline >= 0 ? offline : holders.length - 1, 1));
    }
    return { holders, pruned };
  }

  // --- placement ---

  /**
   * Puts `count` new copies on the best candidates among the chunk's CANDIDATES closest online
   * vaults that don't hold it and have room: highest rank first, ties by XOR distance. A candidate
   * that refuses is passed over for the next. `base` is the record version the placement builds on.
   * The bytes go with the request, except to the vault the client staged them at; a repair's copy
   * (`from`: the chunk's online holders) is fetched by the new holder itself. Returns the new holders, best first.
   */
  async #placeCopies(chunk: Name, source: Source, holding: readonly Name[], count: number, copy: boolean, base: number): Promise<Name[]> {
    const size = 'bytes' in source ? source.bytes.length : source.size;
    const candidates = this.#ctx.network.view.closest(chunk, CANDIDATES).filter((c) => !holding.some((h) => sameName(h, c)));
    const accounts = await this.#accountsOf(candidates);
    const ranked = candidates
      .map((vault, i) => ({ vault, account: accounts[i] }))
      .filter((c): c is { vault: Name; account: NodeAccount } => !!c.account && c.account.donated - c.account.storedBytes >= size)
      // closest() gives them nearest first, and a stable sort keeps that order among equal ranks.
      .sort((a, b) => b.account.rank - a.account.rank);
    const order = (vault: Name): Promise<unknown> => {
      if (!('bytes' in source)) return this.#storeOrders.ask(vault, { chunk, from: source.from, copy, base });
      const carried = source.stagedAt?.equals(vault) ? {} : { bytes: source.bytes };
      return this.#ctx.network.request(vault, { type: 'node.store', chunk, ...carried, copy, base });
    };
    const placed: Name[] = [];
    for (let next = 0; placed.length < count && next < ranked.length; ) {
      const batch = ranked.slice(next, next + count - placed.length);
      next += batch.length;
      const results = await Promise.allSettled(batch.map(({ vault }) => order(vault)));
      batch.forEach(({ vault }, i) => {
        if (results[i]!.status === 'fulfilled') placed.push(vault);
      });
    }
    return placed;
  }

  /** The vaults' accounts: at once if every one was read lately (as for most placements), else once the reads they need are done. */
  #accountsOf(vaults: readonly Name[]): (NodeAccount | null)[] | Promise<(NodeAccount | null)[]> {
    const now = this.#ctx.clock.now();
    const fresh = (entry: AccountRead | undefined) => (entry && now - entry.at < ACCOUNT_CACHE_MS ? entry : undefined);
    const cached = vaults.map((vault) => {
      const byName = fresh(this.#accountsByName.get(vault));
      if (byName) return byName;
      // Another object of the same name may have read it lately.
      const hit = fresh(this.#accounts.get(toHex(vault)));
      if (hit) {
        this.#accountsByName.set(vault, hit);
        return hit;
      }
      const entry: AccountRead = { at: now, account: this.#ctx.groups.read(vault, { type: 'snm.account', node: vault }, vault).then((r) => r.account, () => null) };
      void entry.account.then((account) => (entry.known = account));
      this.#accounts.set(toHex(vault), entry);
      this.#accountsByName.set(vault, entry);
      return entry;
    });
    return cached.every((entry) => entry.known !== undefined) ? cached.map((entry) => entry.known!) : Promise.all(cached.map((entry) => entry.account));
  }

  /** The bytes the client staged: here (checked when they arrived), or fetched once from the vault it staged them at. */
  async #stagedBytes(chunk: Name, stagedAt: Name): Promise<Buffer> {
    const here = this.#staged(chunk);
    if (here) return here;
    const bytes = await this.#ctx.network.request(stagedAt, { type: 'stage.fetch', chunk }).then(
        (r) => r.bytes,
        (error: unknown) =>
          isSafeVaultError(error) && error.code === 'not-found'
            ? fail('not-found', `chunk ${toHex(chunk).slice(0, 12)} was not uploaded (or its upload expired); upload it again`)
            : fail('unavailable', `the vault holding the upload of chunk ${toHex(chunk).slice(0, 12)} is unreachable; upload it again`),
    );
    checkChunk(chunk, bytes);
    return bytes;
  }

  /** Only an online holder that answers with the wrong bytes, or none, is bad; an unreachable one is churn. */
  async #servesBadBytes(chunk: Name, holder: Name): Promise<boolean> {
    if (!this.#ctx.network.view.isOnline(holder)) return false;
    try {
      const { bytes } = await this.#ctx.network.request(holder, { type: 'node.get', chunk });
      checkChunk(chunk, bytes);
      return false;
    } catch (error) {
      return isSafeVaultError(error) && error.code !== 'unavailable';
    }
  }

  /**
   * A dm.put or dm.delete comes from a member of the client's manager group, and counts only if a
   * quorum of that group holds it as its outbox entry: one member alone cannot forge it. The client's
   * name is used to find the group and is not kept.
   */
  async #passedDown(from: Name, msg: { client: Name; chunk: Name; op: Buffer }, kind: 'put' | 'release'): Promise<Reply<'cm.passed'>> {
    const { groups } = this.#ctx;
    // 'unavailable', not a final refusal: a manager that just came back is in its group before this vault's view has it back.
    if (!groups.isNear(msg.client, from)) fail('unavailable', `vault ${toHex(from).slice(0, 12)} is not among that client's managers as this vault sees the network`);
    const passed = await groups.confirm(msg.client, { type: 'cm.passed', client: msg.client, chunk: msg.chunk, op: msg.op });
    if (passed.passed !== kind) fail('unavailable', `the client's manager group does not confirm that ${kind} of chunk ${toHex(msg.chunk).slice(0, 12)} (yet)`);
    return passed;
  }

  /** Tells a holder its copy may be gone; if the hint is lost, the holder's own periodic sweep finds it. */
  #hintSweep(chunk: Name, holder: Name): void {
    const { network, clock } = this.#ctx;
    const attempt = (left: number) =>
      network.request(holder, { type: 'node.sweep', chunk }).catch(() => {
        if (left > 0 && network.view.isOnline(holder)) clock.after(1000, () => void attempt(left - 1));
      });
    void attempt(2);
  }

  /** Tells the node's managers, until they acknowledge it (see HolderReports). */
  #report(chunk: Name, node: Name, size: number, change: NodeChange, version: number): Promise<void> {
    return this.#reports.send({ op: derivedOp(`dm.${change}`, chunk, node, versionBytes(version)), node, chunk, size, change });
  }

  // --- the record book ---

  placeOf(key: Buffer): { group: Name } | undefined {
    return key.length === NAME_BYTES ? { group: key } : undefined;
  }

  load(key: Buffer): { version: number; value: Buffer } | undefined {
    const record = this.chunks.get(key);
    return record && { version: record.version, value: encodeRecord(record) };
  }

  versionOf(key: Buffer): number | undefined {
    return this.chunks.version(key);
  }

  grouped<T>(work: () => T, keys: readonly Buffer[] = [], read?: 'records' | 'versions'): T {
    // A malformed key (from a peer's batch) is refused with its record by `work`, not read here.
    return this.chunks.grouped(work, keys.filter((key) => this.placeOf(key)), read);
  }

  store(key: Buffer, version: number, value: Buffer | null): void {
    if (value === null) this.chunks.delete(key);
    else this.chunks.put(key, { ...decodeRecord(value), version });
  }

  *entries(range: NameRange, wanted: (key: Buffer) => boolean): Iterable<{ key: Buffer; version: number; value: Buffer }> {
    for (const [name, record] of this.chunks.all(range, wanted)) yield { key: name, version: record.version, value: encodeRecord(record) };
  }

  /**
   * One step changes the subscribers by one (holders untouched) or the holders (subscribers
   * untouched), never the size; the record goes only with its last subscriber, and a new one starts
   * with one. No list holds a vault twice or more than MAX_HOLDERS (a list is pruned in the step that
   * grows it). A new holder must be one this member has seen, near the chunk: among the closest
   * PLACEMENT_SLACK × CANDIDATES of every vault it knows, so views that lag a little still agree,
   * and a value accepted once is accepted again when a decision is finished later.
   */
  admits(chunk: Buffer, previous: Buffer | null, next: Buffer | null): boolean {
    const [before, after] = [previous && decodeRecord(previous), next && decodeRecord(next)];
    if (!after) return !before || before.subscribers <= 1;
    if (after.holders.length > MAX_HOLDERS || after.holders.some((h, i) => after.holders.findIndex((o) => sameName(o, h)) !== i)) return false;
    const added = after.holders.filter((h) => !before?.holders.some((b) => sameName(b, h)));
    if (!added.every((h) => this.#ctx.network.view.isNearAmongKnown(chunk, h, PLACEMENT_SLACK * CANDIDATES))) return false;
    if (!before) return after.subscribers === 1;
    const sameHolders = before.holders.length === after.holders.length && before.holders.every((h, i) => sameName(h, after.holders[i]!));
    const step = Math.abs(after.subscribers - before.subscribers);
    return before.size === after.size && after.subscribers >= 1 && (step === 0 || (step === 1 && sameHolders));
  }
}

const versionBytes = (version: number): Buffer => Buffer.from(String(version));

/** Works through `items`, `count` at a time; one that fails is passed over (the next audit comes back to it). */
async function atOnce<T>(items: readonly T[], count: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await work(items[next++]!).catch(() => undefined);
  };
  await Promise.all(Array.from({ length: count }, worker));
}
/** A review of a record's version, with the holder that came back if one did: one operation, whoever proposes it. */
const reviewOp = (chunk: Name, version: number, cameBack?: Name): Buffer => derivedOp('dm.review', chunk, versionBytes(version), cameBack ?? Buffer.alloc(0));

/** A node account read by placement, and kept a while (ACCOUNT_CACHE_MS): `known` once the read is done. */
interface AccountRead {
  at: number;
  account: Promise<NodeAccount | null>;
  known?: NodeAccount | null;
}

/** Where a placement's bytes come from: sent with it (staged at a vault that has them), or fetched by the new holder from `from`. */
type Source = { bytes: Buffer; stagedAt?: Name } | { size: number; from: Name[] };

/** A review's change: the record's next value, and what to tell once it is decided. */
interface Reviewed {
  value: Buffer;
  pruned: Name[];
  size: number;
  version: number;
}

/** Why a request passed down after its deadline is refused: by then its client was told it failed. */
const expired = (what: 'store' | 'delete', chunk: Name): string => `the request to ${what} chunk ${toHex(chunk).slice(0, 12)} expired before it was done; ${what} it again`;

function encodeRecord(record: ChunkRecord): Buffer {
  const bytes = Buffer.allocUnsafe(12 + record.holders.length * NAME_BYTES);
  bytes.writeUInt32BE(record.subscribers, 0);
  bytes.writeUInt32BE(record.size, 4);
  bytes.writeUInt32BE(record.holders.length, 8);
  record.holders.forEach((holder, i) => holder.copy(bytes, 12 + i * NAME_BYTES));
  return bytes;
}

function decodeRecord(bytes: Buffer): ChunkRecord {
  const count = bytes.length >= 12 ? bytes.readUInt32BE(8) : -1;
  if (count < 0 || bytes.length !== 12 + count * NAME_BYTES) throw new SafeVaultError('bad-request', 'malformed data_manager record');
  // One copy for all the holders (the value may be a view of a frame), each a view of it.
  const names = Buffer.from(bytes.subarray(12));
  const holders: Name[] = [];
  for (let at = 0; at < names.length; at += NAME_BYTES) holders.push(names.subarray(at, at + NAME_BYTES));
  return { subscribers: bytes.readUInt32BE(0), size: bytes.readUInt32BE(4), holders };
}
