/**
 * Every message between vaults and clients, as one typed union, with the reply each one gets.
 * Names travel as 32-byte Buffers; a transport that crosses processes encodes them.
 */
import type { Name } from './names.ts';

/** A client's signed instruction; `payload` is the canonical encoding its signature covers. */
export interface SignedRequest {
  payload: Buffer;
  publicKey: Buffer;
  signature: Buffer;
}

/** What a signed request payload decodes to. */
export interface ClientInstruction {
  op: 'put' | 'delete';
  client: Name;
  chunk: Name;
  size: number;
  nonce: Buffer;
  time: number;
}

export type RemovalReason = 'deleted' | 'pruned';

/** A data_manager record as it crosses the network: holders by full name, in list order. */
export interface ChunkRecord {
  subscribers: number;
  size: number;
  holders: Name[];
}

export interface NodeAccount {
  donated: number;
  storedBytes: number;
  storedCount: number;
  lostBytes: number;
  lostCount: number;
  rank: number;
}

/** One record handed to vaults that just became responsible for it; `value` null means deleted. */
export interface TransferredRecord {
  persona: string;
  kind: string;
  key: Buffer;
  value: Buffer | null;
}

export type Message =
  // storage_client -> its storage_client_manager group
  | { type: 'client.put'; request: SignedRequest; bytes: Buffer }
  | { type: 'client.delete'; request: SignedRequest }
  | { type: 'cm.refcount'; client: Name; chunk: Name }
  // storage_client_manager group -> data_manager group
  | { type: 'dm.put'; client: Name; requestId: string; chunk: Name; bytes: Buffer }
  | { type: 'dm.delete'; client: Name; requestId: string; chunk: Name }
  // anyone -> a data_manager: reads need no quorum at the receiver; callers take a quorum of replies
  | { type: 'dm.info'; chunk: Name }
  | { type: 'dm.badHolder'; chunk: Name; holder: Name }
  // data_manager group -> storage_node_manager group of `node`
  | { type: 'snm.put'; node: Name; chunk: Name; bytes: Buffer; copy: boolean }
  | { type: 'snm.delete'; node: Name; chunk: Name; size: number; reason: RemovalReason }
  | { type: 'snm.lost'; node: Name; chunk: Name; size: number }
  // a vault -> its own storage_node_manager group
  | { type: 'snm.register'; donated: number }
  | { type: 'snm.account'; node: Name }
  // storage_node_manager group -> the storage_node
  | { type: 'node.put'; chunk: Name; bytes: Buffer; copy: boolean }
  | { type: 'node.delete'; chunk: Name; reason: RemovalReason }
  // anyone -> a storage_node: chunks are self-validating, so reads need no quorum
  | { type: 'node.get'; chunk: Name }
  // old members of a group -> its new members
  | { type: 'account.transfer'; records: TransferredRecord[] }
  // a member missing a record asks the rest of its group (a quorum answer heals it)
  | { type: 'account.read'; persona: string; kind: string; key: Buffer };

export type MessageType = Message['type'];
export type MessageOf<T extends MessageType> = Extract<Message, { type: T }>;

export interface Replies {
  'client.put': { refcount: number; subscribers: number; holders: Name[] };
  'client.delete': { refcount: number; subscribers: number; deleted: boolean };
  'cm.refcount': { refcount: number };
  'dm.put': { subscribers: number; holders: Name[] };
  'dm.delete': { subscribers: number };
  'dm.info': ChunkRecord | null;
  'dm.badHolder': { removed: boolean };
  'snm.put': { stored: true };
  'snm.delete': { queued: boolean };
  'snm.lost': { rank: number };
  'snm.register': { donated: number };
  'snm.account': NodeAccount | null;
  'node.put': { added: boolean };
  'node.delete': { deleted: boolean };
  'node.get': { bytes: Buffer };
  'account.transfer': { accepted: number };
  'account.read': { value: Buffer | null };
}

export type Reply<T extends MessageType> = Replies[T];
