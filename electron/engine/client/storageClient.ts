/**
 * storage_client: a user's identity on the network. It signs its requests, sends them to its
 * manager group, takes the group's quorum answer, and reads chunks from their holders, checking
 * every one: a holder that serves bad bytes is skipped and reported.
 */
import { signRequest } from '../clientRequest.ts';
import { fail, isSafeVaultError } from '../../api/errors.ts';
import type { EventBus } from '../events.ts';
import type { Groups } from '../group.ts';
import type { Identity } from '../identity.ts';
import type { ChunkRecord, Reply } from '../messages.ts';
import { sha256, toHex, type Name } from '../names.ts';
import { checkChunk } from '../personas/storageNode.ts';
import type { RoutingTable, Transport } from '../transport.ts';

export interface StorageClientLinks {
  groups: Groups;
  routing: RoutingTable;
  transport: Transport;
  events: EventBus;
}

export class StorageClient {
  readonly label: string;
  readonly identity: Identity;
  readonly #links: StorageClientLinks;

  constructor(label: string, identity: Identity, links: StorageClientLinks) {
    this.label = label;
    this.identity = identity;
    this.#links = links;
  }

  async putChunk(bytes: Buffer): Promise<Reply<'client.put'> & { name: Name }> {
    const name = sha256(bytes);
    checkChunk(name, bytes);
    const request = signRequest(this.identity, 'put', name, bytes.length);
    const reply = await this.#links.groups.ask(this.identity.name, { type: 'client.put', request, bytes });
    const chunk = toHex(name);
    if (reply.refcount === 1 && reply.subscribers === 1) {
      this.#links.events.emit({ type: 'chunk.stored', client: this.label, chunk, size: bytes.length, holders: reply.holders.map(toHex) });
    } else {
      this.#links.events.emit({ type: 'chunk.deduplicated', client: this.label, chunk, refcount: reply.refcount, subscribers: reply.subscribers });
    }
    return { ...reply, name };
  }

  async deleteChunk(name: Name): Promise<Reply<'client.delete'>> {
    const request = signRequest(this.identity, 'delete', name, 0);
    const chunk = toHex(name);
    try {
      const reply = await this.#links.groups.ask(this.identity.name, { type: 'client.delete', request });
      this.#links.events.emit(
        reply.deleted
          ? { type: 'chunk.deleted', client: this.label, chunk }
          : { type: 'chunk.released', client: this.label, chunk, refcount: reply.refcount, subscribers: reply.subscribers },
      );
      return reply;
    } catch (error) {
      if (isSafeVaultError(error) && error.code === 'non-owner') {
        this.#links.events.emit({ type: 'delete.refused', client: this.label, chunk, reason: error.message });
      }
      throw error;
    }
  }

  refcount(name: Name): Promise<number> {
    return this.#links.groups.ask(this.identity.name, { type: 'cm.refcount', client: this.identity.name, chunk: name }).then((r) => r.refcount);
  }

  /** The chunk's record, as its data_manager group agrees on it. */
  info(name: Name): Promise<ChunkRecord | null> {
    return this.#links.groups.ask(name, { type: 'dm.info', chunk: name });
  }

  /** The chunk's bytes from the first online holder, in list order, that serves them intact. */
  async getChunk(name: Name): Promise<Buffer> {
    const record = (await this.info(name)) ?? fail('not-found', `chunk ${toHex(name)} is not stored on the network`);
    const { routing, transport, groups, events } = this.#links;
    for (const holder of record.holders.filter((h) => routing.isOnline(h))) {
      try {
        const { bytes } = await transport.request(holder, { type: 'node.get', chunk: name });
        checkChunk(name, bytes);
        return bytes;
      } catch (error) {
        if (!isSafeVaultError(error) || !['bad-hash', 'not-found', 'too-large'].includes(error.code)) continue;
        events.emit({ type: 'holder.bad', chunk: toHex(name), vault: toHex(holder) });
        void groups.ask(name, { type: 'dm.badHolder', chunk: name, holder }).catch(() => undefined);
      }
    }
    return fail('unavailable', `no holder of chunk ${toHex(name)} could serve it intact`);
  }
}
