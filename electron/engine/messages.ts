/**
 * Every message between vaults and clients: its schema (checked at receipt), its reply's schema,
 * and one table of who may send it and which vault must receive it. Messages travel as codec
 * frames (wire/codec.ts), never by reference.
 */
import { z } from 'zod';
import { MAX_CHUNK_SIZE } from './constants.ts';
import { NAME_BYTES } from './names.ts';

const buffer = (what: string, check: (b: Buffer) => boolean) =>
  z.custom<Buffer>((v) => Buffer.isBuffer(v) && check(v), { message: `expected ${what}` });
const name = buffer('a 32-byte name', (b) => b.length === NAME_BYTES);
const opId = buffer('a 32-byte operation id', (b) => b.length === NAME_BYTES);
const chunkBytes = buffer(`at most ${MAX_CHUNK_SIZE} bytes`, (b) => b.length <= MAX_CHUNK_SIZE);
const blob = (max: number) => buffer(`at most ${max} bytes`, (b) => b.length <= max);
const count = z.number().int().min(0).max(2 ** 48);
const persona = z.enum(['storage_client_manager', 'data_manager', 'storage_node_manager']);

/** A client's signed instruction; `payload` is the canonical encoding its signature covers. */
const signedRequest = z.strictObject({ payload: blob(256), publicKey: blob(64), signature: blob(128) });
export type SignedRequest = z.infer<typeof signedRequest>;

/** A replicated record as members hold it: its version, its value (null: deleted), and the operations applied lately with their replies. */
const recordState = z.strictObject({
  version: count,
  value: blob(64 * 1024).nullable(),
  ops: z.array(z.strictObject({ op: opId, reply: blob(64 * 1024) })).max(64),
});
export type RecordState = z.infer<typeof recordState>;
/** A Paxos ballot: round, then proposer name (compared bytewise). */
const ballot = buffer('a ballot', (b) => b.length === 4 + NAME_BYTES);

const chunkRecord = z.strictObject({ subscribers: count, size: count, holders: z.array(name).max(64) });
export type ChunkRecord = z.infer<typeof chunkRecord>;
const nodeAccount = z.strictObject({
  donated: count,
  storedBytes: count,
  storedCount: count,
  lostBytes: count,
  lostCount: count,
  rank: z.number().int().min(-(2 ** 31)).max(2 ** 31),
});
export type NodeAccount = z.infer<typeof nodeAccount>;
const nodeChange = z.enum(['stored', 'released', 'pruned', 'lost']);
export type NodeChange = z.infer<typeof nodeChange>;
/** Disk changes a node reports in one message, and its managers apply in one decision. */
export const REPORT_BATCH = 128;

// The three steps of a record decision (replica.ts), each its own message or one of a rec.steps batch.
const key = blob(2 * NAME_BYTES);
const recPrepare = {
  message: z.strictObject({ persona, key, slot: count, ballot }),
  reply: z.strictObject({
    promised: z.boolean(),
    promise: ballot.nullable(),
    accepted: z.strictObject({ ballot, value: recordState }).nullable(),
    committed: recordState.nullable(),
  }),
};
const recAccept = {
  message: z.strictObject({ persona, key, slot: count, ballot, value: recordState }),
  reply: z.strictObject({ accepted: z.boolean(), promise: ballot.nullable(), committed: recordState.nullable() }),
};
const recCommit = {
  message: z.strictObject({ persona, key, value: recordState }),
  reply: z.strictObject({ installed: z.boolean() }),
};
const recStep = z.discriminatedUnion('type', [
  recPrepare.message.extend({ type: z.literal('rec.prepare') }),
  recAccept.message.extend({ type: z.literal('rec.accept') }),
  recCommit.message.extend({ type: z.literal('rec.commit') }),
]);
/** Steps in one rec.steps: record states are a few KiB at most, so a batch stays well inside a frame. */
export const MAX_STEPS = 32;
const wireError = z.strictObject({ code: z.string().max(40), message: z.string().max(500) });

/** Each message type: its schema, its reply's schema, who may send it, and who receives it. */
export const MESSAGES = {
  // storage_client -> any member of its storage_client_manager group
  'client.put': {
    message: z.strictObject({ request: signedRequest, stagedAt: name }),
    reply: z.strictObject({ refcount: count, subscribers: count, holders: z.array(name) }),
    sender: 'client',
    receiver: 'a member of the client manager group of the client who signed',
  },
  'client.delete': {
    message: z.strictObject({ request: signedRequest }),
    reply: z.strictObject({ refcount: count, subscribers: count, deleted: z.boolean() }),
    sender: 'client',
    receiver: 'a member of the client manager group of the client who signed',
  },
  'cm.refcount': {
    message: z.strictObject({ client: name, chunk: name }),
    reply: z.strictObject({ version: count, refcount: count }),
    sender: 'anyone',
    receiver: 'each member of the client manager group (reader takes a quorum)',
  },
  // storage_client -> the vault closest to the chunk: the one upload of a chunk's bytes
  'chunk.stage': {
    message: z.strictObject({ bytes: chunkBytes }),
    reply: z.strictObject({ staged: z.literal(true) }),
    sender: 'anyone',
    receiver: 'any vault (it keeps the bytes in memory for a while)',
  },
  // a storage_client_manager member -> a data_manager member (the client's signature proves the request)
  'dm.put': {
    // base: the version of the client's reference record this first reference is decided on (one dm.put per version, whichever request).
    message: z.strictObject({ request: signedRequest, stagedAt: name, base: count }),
    reply: z.strictObject({ subscribers: count, holders: z.array(name) }),
    sender: 'a member of the client manager group',
    receiver: 'a member of the data manager group of the chunk',
  },
  'dm.delete': {
    message: z.strictObject({ request: signedRequest }),
    reply: z.strictObject({ subscribers: count }),
    sender: 'a member of the client manager group',
    receiver: 'a member of the data manager group of the chunk',
  },
  'dm.info': {
    message: z.strictObject({ chunk: name }),
    reply: z.strictObject({ version: count, record: chunkRecord.nullable() }),
    sender: 'anyone',
    receiver: 'each member of the data manager group (reader takes a quorum)',
  },
  'dm.badHolder': {
    message: z.strictObject({ chunk: name, holder: name }),
    reply: z.strictObject({ removed: z.boolean() }),
    sender: 'anyone',
    receiver: 'a member of the data manager group (it checks the holder itself)',
  },
  // a data_manager member -> the vault the client staged the bytes at
  'stage.fetch': {
    message: z.strictObject({ chunk: name }),
    reply: z.strictObject({ bytes: chunkBytes }),
    sender: 'anyone',
    receiver: 'the staging vault',
  },
  // a data_manager member -> a storage node: the bytes travel once per holder, and not at all to
  // the vault the client staged them at (it stores its staged copy, so `bytes` is left out)
  'node.store': {
    // `base`: the version of the chunk's record this placement builds on (see the sweep in storageNode.ts)
    message: z.strictObject({ chunk: name, bytes: chunkBytes.optional(), copy: z.boolean(), base: count }),
    reply: z.strictObject({ added: z.boolean() }),
    sender: 'a member of the data manager group of the chunk',
    receiver: 'the storage node',
  },
  'node.get': {
    message: z.strictObject({ chunk: name }),
    reply: z.strictObject({ bytes: chunkBytes }),
    sender: 'anyone',
    receiver: 'the storage node (chunks are self-validating)',
  },
  // a hint: the node checks with the data manager group itself before deleting anything
  'node.sweep': {
    message: z.strictObject({ chunk: name }),
    reply: z.strictObject({ deleted: z.boolean() }),
    sender: 'anyone',
    receiver: 'the storage node',
  },
  // a vault -> a member of its own storage_node_manager group
  'snm.register': {
    message: z.strictObject({ op: opId, donated: count }),
    reply: z.strictObject({ donated: count }),
    sender: 'the node itself',
    receiver: 'a member of the node manager group of the sender',
  },
  // stored/released: from the node itself, the changes queued since its last report, in order;
  // pruned/lost: from a data_manager member, one change
  'snm.report': {
    message: z.strictObject({
      op: opId,
      node: name,
      changes: z.array(z.strictObject({ chunk: name, size: count, change: nodeChange })).min(1).max(REPORT_BATCH),
    }),
    reply: z.strictObject({ rank: z.number().int() }),
    sender: 'the node (stored, released) or a data manager of the chunk (pruned, lost)',
    receiver: 'a member of the node manager group of the node',
  },
  'snm.account': {
    message: z.strictObject({ node: name }),
    reply: z.strictObject({ version: count, account: nodeAccount.nullable() }),
    sender: 'anyone',
    receiver: 'each member of the node manager group (reader takes a quorum)',
  },
  // one decision per record and version, among the members of its group (single-decree Paxos)
  'rec.prepare': { ...recPrepare, sender: 'a member of the record group', receiver: 'a member of the record group' },
  'rec.accept': { ...recAccept, sender: 'a member of the record group', receiver: 'a member of the record group' },
  'rec.commit': { ...recCommit, sender: 'a member of the record group', receiver: 'a member of the record group' },
  // several of those steps, for records whose groups both vaults are in, answered in one transaction
  'rec.steps': {
    message: z.strictObject({ steps: z.array(recStep).min(1).max(MAX_STEPS) }),
    reply: z.strictObject({
      replies: z.array(z.union([z.strictObject({ reply: z.union([recPrepare.reply, recAccept.reply, recCommit.reply]) }), z.strictObject({ refused: wireError })])),
    }),
    sender: 'a member of each step\'s record group',
    receiver: 'a member of each step\'s record group',
  },
  // old members of a group -> its new members; a record is adopted only if newer than the one held.
  // `declined`: the indexes of records the receiver does not hold now (it is not in their groups as it
  // sees the network); every other record it holds at that version or newer, so the sender may forget it.
  'rec.transfer': {
    message: z.strictObject({ persona, records: z.array(z.strictObject({ key, state: recordState })).max(4096) }),
    reply: z.strictObject({ adopted: count, declined: z.array(count).max(4096) }),
    sender: 'a member of each record group',
    receiver: 'a member of each record group',
  },
  // a reader -> a member that answered with an older version than the group's: a hint only, the member
  // asks its group for the record itself (rec.state); replies with the version it holds afterwards
  'rec.behind': {
    message: z.strictObject({ persona, key }),
    reply: z.strictObject({ version: count }),
    sender: 'anyone',
    receiver: 'a member of the record group',
  },
  // a member catching up -> the other members: the record as each last committed it
  'rec.state': {
    message: z.strictObject({ persona, key }),
    reply: z.strictObject({ committed: recordState }),
    sender: 'a member of the record group',
    receiver: 'a member of the record group',
  },
} as const;

export type MessageType = keyof typeof MESSAGES;
export type MessageOf<T extends MessageType> = { type: T } & z.infer<(typeof MESSAGES)[T]['message']>;
export type Message = { [T in MessageType]: MessageOf<T> }[MessageType];
export type Reply<T extends MessageType> = z.infer<(typeof MESSAGES)[T]['reply']>;
export type Persona = z.infer<typeof persona>;
/** A step of a record decision. */
export type RecStep = MessageOf<'rec.prepare'> | MessageOf<'rec.accept'> | MessageOf<'rec.commit'>;

/** Checks a decoded message against its schema: unknown types and malformed fields are refused. */
export function parseMessage(value: unknown): Message {
  const type = (value as { type?: unknown } | null)?.type;
  if (typeof type !== 'string' || !Object.hasOwn(MESSAGES, type)) throw new TypeError(`unknown message type ${String(type).slice(0, 40)}`);
  const { type: _type, ...body } = value as { type: MessageType };
  const parsed = MESSAGES[type as MessageType].message.safeParse(body);
  if (!parsed.success) throw new TypeError(`bad ${type}: ${parsed.error.issues[0]?.path.join('.')} ${parsed.error.issues[0]?.message}`);
  return { type, ...parsed.data } as Message;
}

export function parseReply<T extends MessageType>(type: T, value: unknown): Reply<T> {
  const parsed = MESSAGES[type].reply.safeParse(value);
  if (!parsed.success) throw new TypeError(`bad reply to ${type}: ${parsed.error.issues[0]?.path.join('.')} ${parsed.error.issues[0]?.message}`);
  return parsed.data as Reply<T>;
}
