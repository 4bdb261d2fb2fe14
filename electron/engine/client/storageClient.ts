/**
 * storage_client: a user's identity on the network. It signs each request once and sends it to a
 * member of its manager group, retrying the same signed request (the same operation id) until
 * answered, so a lost answer never becomes a second count. A new chunk's bytes go up once, to the
 * vault closest to the chunk. Reads check every chunk: a holder that serves bad bytes is skipped and reported.
 */
import { sleep } from '../clock.ts';
import { signRequest } from '../clientRequest.ts';
import { MAX_CHUNK_SIZE, OP_DEADLINE_MS } from '../constants.ts';
import { fail, isSafeVaultError } from '../../api/errors.ts';
import type { EventBus } from '../events.ts';
import { Groups } from '../group.ts';
import type { Identity } from '../identity.ts';
import type { ChunkRecord, Reply } from '../messages.ts';
import { sha256, toHex, type Name } from '../names.ts';
import type { Network } from '../transport.ts';

/** One round of trying to store a chunk before it is uploaded again. */
const ATTEMPT_MS = 20_000;

export class StorageClient {
  readonly label: string;
  readonly identity: Identity;
  readonly #network: Network;
  readonly #groups: Groups;
  readonly #events: EventBus;

  constructor(label: string, identity: Identity, network: Network, events: EventBus) {
    this.label = label;
    this.identity = identity;
    this.#network = network;
    this.#groups = new Groups(network);
    this.#events = events;
  }

  /**
   * Stores one chunk. `name`, if given, is the bytes' hash as the caller already computed it (self-
   * encryption's workers do), sparing the main thread a hash: the vaults check it in any case.
   */
  async putChunk(bytes: Buffer, name: Name = sha256(bytes)): Promise<Reply<'client.put'> & { name: Name }> {
    if (bytes.length > MAX_CHUNK_SIZE) fail('too-large', `chunk is ${bytes.length} bytes; a chunk holds at most ${MAX_CHUNK_SIZE}`);
    const request = signRequest(this.identity, 'put', name, bytes.length, this.#network.clock);
    const { clock, view } = this.#network;
    const deadline = clock.now() + OP_DEADLINE_MS;
    let reply: Reply<'client.put'>;
    for (let round = 0; ; round++) {
      try {
        // Staged again each round: the vault it went to may have gone since.
        const stagedAt = view.closest(name, 1)[0] ?? fail('unavailable', 'no vaults are online');
        await this.#network.request(stagedAt, { type: 'chunk.stage', chunk: name, bytes });
        reply = await this.#groups.askMember(this.identity.name, { type: 'client.put', request, stagedAt }, { deadlineMs: ATTEMPT_MS });
        break;
      } catch (error) {
        // Unreachable vaults are churn, and a lost upload (not-found: the vault it was staged at went, or
        // its bytes were swept with a copy of the chunk) is uploaded again, both until the deadline: the
        // request stays open with the client's managers until decided, so giving up sooner would report
        // a failure that could still count.
        const retry = isSafeVaultError(error) && (error.code === 'unavailable' || error.code === 'not-found');
        if (!retry || clock.now() > deadline) throw error;
        await sleep(clock, Math.min(5000, 100 * 2 ** round) * (0.5 + clock.random()));
      }
    }
    const chunk = toHex(name);
    if (reply.refcount === 1 && reply.subscribers === 1) {
      this.#events.emit({ type: 'chunk.stored', client: this.label, chunk, size: bytes.length, holders: reply.holders.map(toHex) });
    } else {
      this.#events.emit({ type: 'chunk.deduplicated', client: this.label, chunk, refcount: reply.refcount, subscribers: reply.subscribers });
    }
    return { ...reply, name };
  }

  async deleteChunk(name: Name): Promise<Reply<'client.delete'>> {
    const request = signRequest(this.identity, 'delete', name, 0, this.#network.clock);
    const chunk = toHex(name);
    try {
      const reply = await this.#groups.askMember(this.identity.name, { type: 'client.delete', request });
      this.#events.emit(
        reply.deleted
          ? { type: 'chunk.deleted', client: this.label, chunk }
          : { type: 'chunk.released', client: this.label, chunk, refcount: reply.refcount, subscribers: reply.subscribers },
      );
      return reply;
    } catch (error) {
      if (isSafeVaultError(error) && error.code === 'non-owner') {
        this.#events.emit({ type: 'delete.refused', client: this.label, chunk, reason: error.message });
      }
      throw error;
    }
  }

  async refcount(name: Name): Promise<number> {
    return (await this.#groups.read(this.identity.name, { type: 'cm.refcount', client: this.identity.name, chunk: name })).refcount;
  }

  /** The chunk's record, as its data_manager group agrees on it. */
  async info(name: Name): Promise<ChunkRecord | null> {
    return (await this.#groups.read(name, { type: 'dm.info', chunk: name })).record;
  }

  /**
   * The chunk from the first online holder, in list order, whose bytes `open` takes: by default
   * checked against the name here; a get that decrypts on a worker checks them there instead, so
   * each chunk is hashed once. `open` gives null for bytes that are not the chunk, and that holder
   * is reported.
   */
  async getChunk<T = Buffer>(name: Name, open: (bytes: Buffer) => T | null | Promise<T | null> = (bytes) => (sha256(bytes).equals(name) ? (bytes as T) : null)): Promise<T> {
    const record = (await this.info(name)) ?? fail('not-found', `chunk ${toHex(name)} is not stored on the network`);
    for (const holder of record.holders.filter((h) => this.#network.view.isOnline(h))) {
      let bytes: Buffer | undefined;
      try {
        ({ bytes } = await this.#network.request(holder, { type: 'node.get', chunk: name }));
      } catch (error) {
        // An unreachable holder is churn, and the next is tried; one that lacks the chunk is bad.
        if (!isSafeVaultError(error) || !['not-found', 'too-large'].includes(error.code)) continue;
      }
      const opened = bytes && bytes.length <= MAX_CHUNK_SIZE ? await open(bytes) : null;
      if (opened !== null) return opened;
      this.#events.emit({ type: 'holder.bad', chunk: toHex(name), vault: toHex(holder) });
      void this.#groups.askMember(name, { type: 'dm.badHolder', chunk: name, holder }, { deadlineMs: 10_000 }).catch(() => undefined);
    }
    return fail('unavailable', `no holder of chunk ${toHex(name)} could serve it intact`);
  }
}
