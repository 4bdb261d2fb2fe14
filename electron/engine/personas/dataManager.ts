/**
 * data_manager: the group closest to a chunk keeps its record (subscribers, size, ordered holders)
 * and keeps it available through churn, per the RFC:
 * - a holder leaves: every chunk it held (found through the holder index) with fewer than
 *   MIN_HOLDERS online holders gets a new copy on the best-ranked candidate;
 * - a holder (re)joins: it goes to the top of the list; a list longer than MAX_HOLDERS loses its
 *   bottom holder, which is downranked and told (through its manager group) to delete.
 * Every choice is deterministic, so each member of the group makes the same one.
 */
import type { AccountBook, AccountRecord } from '../accounts.ts';
import { CANDIDATES, MAX_HOLDERS, MIN_HOLDERS } from '../constants.ts';
import { fail, isSafeVaultError, SafeVaultError } from '../../api/errors.ts';
import type { ChunkRecord, MessageOf, NodeAccount, Reply } from '../messages.ts';
import { compareDistance, NAME_BYTES, toHex, type Name } from '../names.ts';
import type { VaultContext } from './context.ts';
import { DataManagerRecords, type DataRecord } from './dataManagerRecords.ts';
import { checkChunk } from './storageNode.ts';

/** Node accounts fetched once per operation, with room already promised deducted. */
type Directory = Map<string, Promise<NodeAccount | null>>;

export class DataManager implements AccountBook {
  readonly persona = 'data_manager';
  readonly chunks: DataManagerRecords;
  readonly #ctx: VaultContext;

  constructor(ctx: VaultContext) {
    this.#ctx = ctx;
    this.chunks = new DataManagerRecords(ctx.db);
  }

  /**
   * Chunks this vault manages with fewer than MIN_HOLDERS online holders, found through the holder
   * index of the `offline` vaults only: a chunk every holder of which is online cannot be short of
   * holders unless it never got MIN_HOLDERS, which placement refuses. Costs one posting read per
   * offline vault plus one record read per chunk it held, not a scan of every record.
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

  /** Records held: one per chunk this vault manages. */
  count(): number {
    return this.chunks.count();
  }

  onInfo(msg: MessageOf<'dm.info'>): Reply<'dm.info'> {
    return this.chunks.get(msg.chunk) ?? null;
  }

  /** A client's manager group passes down a chunk new to that client. */
  onPut(msg: MessageOf<'dm.put'>): Promise<Reply<'dm.put'>> {
    return this.#locked(msg.chunk, async () => {
      const known = await this.#recordOf(msg.chunk);
      if (known) {
        const record = { ...known, subscribers: known.subscribers + 1 };
        this.chunks.put(msg.chunk, record);
        return { subscribers: record.subscribers, holders: record.holders };
      }
      checkChunk(msg.chunk, msg.bytes);
      const holders = await this.#placeCopies(msg.chunk, msg.bytes, [], MIN_HOLDERS, false, new Map());
      if (holders.length === 0) fail('no-space', `no vault could take chunk ${toHex(msg.chunk)}`);
      this.chunks.put(msg.chunk, { subscribers: 1, size: msg.bytes.length, holders });
      this.#ctx.tombstones.clear(this.persona, 'chunk', msg.chunk);
      return { subscribers: 1, holders };
    });
  }

  /** A client's last reference went: one subscriber fewer; at none, every holder deletes. */
  onDelete(msg: MessageOf<'dm.delete'>): Promise<Reply<'dm.delete'>> {
    return this.#locked(msg.chunk, async () => {
      const record = await this.#recordOf(msg.chunk);
      if (!record) return { subscribers: 0 };
      if (record.subscribers > 1) {
        this.chunks.put(msg.chunk, { ...record, subscribers: record.subscribers - 1 });
        return { subscribers: record.subscribers - 1 };
      }
      await Promise.allSettled(record.holders.map((holder) => this.#tellToDelete(msg.chunk, holder, record.size, 'deleted')));
      this.chunks.delete(msg.chunk);
      this.#ctx.tombstones.add(this.persona, 'chunk', msg.chunk);
      return { subscribers: 0 };
    });
  }

  /**
   * A client says a holder served bad bytes. Each member checks for itself (a client's word alone
   * changes nothing); a holder that really fails loses the chunk, is charged the loss, and is replaced.
   */
  onBadHolder(msg: MessageOf<'dm.badHolder'>): Promise<Reply<'dm.badHolder'>> {
    return this.#locked(msg.chunk, async () => {
      const record = this.chunks.get(msg.chunk);
      if (!record || !record.holders.some((h) => h.equals(msg.holder))) return { removed: false };
      if (!(await this.#servesBadBytes(msg.chunk, msg.holder))) return { removed: false };
      const holders = record.holders.filter((h) => !h.equals(msg.holder));
      await this.#ctx.groups
        .ask(msg.holder, { type: 'snm.lost', node: msg.holder, chunk: msg.chunk, size: record.size }, msg.holder)
        .catch(() => undefined);
      await this.#repair(msg.chunk, { ...record, holders }, new Map());
      return { removed: true };
    });
  }

  /** Churn: `vault` left the routing table. */
  async onHolderLost(vault: Name): Promise<void> {
    await this.#repairAll(this.chunks.chunksHeldBy(vault));
  }

  /** After a cold start: top up every record that has too few online holders. */
  async auditAll(): Promise<void> {
    const short: Name[] = [];
    for (const [chunk, record] of this.chunks.all()) {
      if (record.holders.filter((h) => this.#ctx.routing.isOnline(h)).length < MIN_HOLDERS) short.push(chunk);
    }
    await this.#repairAll(short);
  }

  async #repairAll(chunks: readonly Name[]): Promise<void> {
    const directory: Directory = new Map();
    for (const chunk of chunks) {
      await this.#locked(chunk, async () => {
        const record = this.chunks.get(chunk);
        if (record) await this.#repair(chunk, record, directory);
      }).catch(() => undefined); // one chunk's failure must not stop the others; the next churn retries it
    }
  }

  /** Churn: `vault` came (back) online: to the top of its lists, and prune what grew past MAX_HOLDERS. */
  async onHolderJoined(vault: Name): Promise<void> {
    for (const chunk of this.chunks.chunksHeldBy(vault)) {
      await this.#locked(chunk, async () => {
        const record = this.chunks.get(chunk);
        if (!record) return;
        const holders = [vault, ...record.holders.filter((h) => !h.equals(vault))];
        await this.#save(chunk, { ...record, holders });
      }).catch(() => undefined);
    }
  }

  #locked<T>(chunk: Name, work: () => Promise<T>): Promise<T> {
    return this.#ctx.locks.run(this.lockKey('chunk', chunk), work);
  }

  /** The record, pulled from the group first if this member lacks it: never mistake a missing record for a new chunk. */
  async #recordOf(chunk: Name): Promise<DataRecord | undefined> {
    const local = this.chunks.get(chunk);
    if (local || !(await this.#ctx.pull(this, 'chunk', chunk))) return local;
    return this.chunks.get(chunk);
  }

  /** Tops the record up to MIN_HOLDERS online holders, then saves (and prunes) it. */
  async #repair(chunk: Name, record: DataRecord, directory: Directory): Promise<void> {
    const online = record.holders.filter((h) => this.#ctx.routing.isOnline(h));
    if (online.length < MIN_HOLDERS) {
      const bytes = await this.#fetchAny(chunk, online);
      if (bytes) {
        const added = await this.#placeCopies(chunk, bytes, record.holders, MIN_HOLDERS - online.length, true, directory);
        record = { ...record, holders: [...added, ...record.holders] };
      }
    }
    await this.#save(chunk, record);
  }

  /**
   * Saves the record; past MAX_HOLDERS, holders are pruned from the bottom, downranked and told to
   * delete. An offline entry goes before an online one, so a prune never costs a live copy needlessly.
   */
  async #save(chunk: Name, record: DataRecord): Promise<void> {
    const holders = [...record.holders];
    const pruned: Name[] = [];
    while (holders.length > MAX_HOLDERS) {
      const offline = holders.findLastIndex((h) => !this.#ctx.routing.isOnline(h));
      pruned.push(...holders.splice(offline >= 0 ? offline : holders.length - 1, 1));
    }
    this.chunks.put(chunk, { ...record, holders });
    await Promise.allSettled(pruned.map((holder) => this.#tellToDelete(chunk, holder, record.size, 'pruned')));
  }

  #tellToDelete(chunk: Name, holder: Name, size: number, reason: 'deleted' | 'pruned'): Promise<unknown> {
    return this.#ctx.groups.ask(holder, { type: 'snm.delete', node: holder, chunk, size, reason }, holder);
  }

  /**
   * Puts `count` new copies on the best candidates among the chunk's CANDIDATES closest online
   * vaults that don't hold it and have room: highest rank first, ties by XOR distance. A candidate
   * that refuses is passed over for the next. Returns the new holders, best first.
   */
  async #placeCopies(chunk: Name, bytes: Buffer, holding: readonly Name[], count: number, copy: boolean, directory: Directory): Promise<Name[]> {
    const candidates = this.#ctx.routing.closest(chunk, CANDIDATES).filter((c) => !holding.some((h) => h.equals(c)));
    const accounts = await Promise.all(candidates.map((c) => this.#accountOf(c, directory)));
    const ranked = candidates
      .map((vault, i) => ({ vault, account: accounts[i] }))
      .filter((c): c is { vault: Name; account: NodeAccount } => !!c.account && c.account.donated - c.account.storedBytes >= bytes.length)
      .sort((a, b) => b.account.rank - a.account.rank || compareDistance(chunk, a.vault, b.vault));
    const placed: Name[] = [];
    for (let next = 0; placed.length < count && next < ranked.length; ) {
      const batch = ranked.slice(next, next + count - placed.length);
      next += batch.length;
      const results = await Promise.allSettled(
        batch.map(({ vault }) => this.#ctx.groups.ask(vault, { type: 'snm.put', node: vault, chunk, bytes, copy }, vault)),
      );
      batch.forEach(({ vault, account }, i) => {
        if (results[i]!.status !== 'fulfilled') return;
        placed.push(vault);
        account.storedBytes += bytes.length;
      });
    }
    return placed;
  }

  #accountOf(vault: Name, directory: Directory): Promise<NodeAccount | null> {
    let account = directory.get(toHex(vault));
    if (!account) {
      account = this.#ctx.groups.ask(vault, { type: 'snm.account', node: vault }, vault).catch(() => null);
      directory.set(toHex(vault), account);
    }
    return account;
  }

  /** The chunk's bytes from the first of `holders` that serves them intact. */
  async #fetchAny(chunk: Name, holders: readonly Name[]): Promise<Buffer | undefined> {
    for (const holder of holders) {
      const bytes = await this.#fetchFrom(chunk, holder);
      if (bytes) return bytes;
    }
    return undefined;
  }

  /** Only an online holder that answers with the wrong bytes, or none, is bad; an unreachable one is churn. */
  async #servesBadBytes(chunk: Name, holder: Name): Promise<boolean> {
    if (!this.#ctx.routing.isOnline(holder)) return false;
    try {
      const { bytes } = await this.#ctx.transport.request(holder, { type: 'node.get', chunk });
      checkChunk(chunk, bytes);
      return false;
    } catch (error) {
      return isSafeVaultError(error) && error.code !== 'unavailable';
    }
  }

  async #fetchFrom(chunk: Name, holder: Name): Promise<Buffer | undefined> {
    try {
      const { bytes } = await this.#ctx.transport.request(holder, { type: 'node.get', chunk });
      checkChunk(chunk, bytes);
      return bytes;
    } catch {
      return undefined;
    }
  }

  // --- account transfer ---

  *records(): Iterable<AccountRecord> {
    for (const [name, record] of this.chunks.all()) {
      yield { kind: 'chunk', key: name, group: name, value: encodeRecord(record) };
    }
  }

  placeOf(kind: string, key: Buffer): { group: Name } | undefined {
    return kind === 'chunk' && key.length === NAME_BYTES ? { group: key } : undefined;
  }

  read(kind: string, key: Buffer): Buffer | null {
    const record = kind === 'chunk' ? this.chunks.get(key) : undefined;
    return record ? encodeRecord(record) : null;
  }

  lockKey(_kind: string, key: Buffer): string {
    return `dm:${toHex(key)}`;
  }

  adopt(kind: string, key: Buffer, value: Buffer | null): void {
    if (kind !== 'chunk') return;
    if (value === null) this.chunks.delete(key);
    else this.chunks.put(key, decodeRecord(value));
  }

  drop(kind: string, key: Buffer): void {
    this.adopt(kind, key, null);
  }
}

function encodeRecord(record: ChunkRecord): Buffer {
  const head = Buffer.alloc(12);
  head.writeUInt32BE(record.subscribers, 0);
  head.writeUInt32BE(record.size, 4);
  head.writeUInt32BE(record.holders.length, 8);
  return Buffer.concat([head, ...record.holders]);
}

function decodeRecord(bytes: Buffer): ChunkRecord {
  const count = bytes.length >= 12 ? bytes.readUInt32BE(8) : -1;
  if (count < 0 || bytes.length !== 12 + count * NAME_BYTES) throw new SafeVaultError('bad-request', 'malformed data_manager record');
  const holders = Array.from({ length: count }, (_, i) => Buffer.from(bytes.subarray(12 + i * NAME_BYTES, 12 + (i + 1) * NAME_BYTES)));
  return { subscribers: bytes.readUInt32BE(0), size: bytes.readUInt32BE(4), holders };
}
