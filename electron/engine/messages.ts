/**
 * Every message between vaults and clients: its schema (checked at receipt), its reply's schema,
 * and one table of who may send it (a rule the receiving vault enforces before dispatch), which
 * vault must receive it, and its quorum key. Messages travel as codec frames (wire/codec.ts), never
 * by reference.
 */
import { z } from 'zod';
import { MAX_CHUNK_SIZE } from './constants.ts';
import { NEAR_SLACK } from './group.ts';
import { NAME_BYTES, sha256, type Name } from './names.ts';
import { canonical, type WireValue } from './wire/codec.ts';

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
/** Records in one step of a batch of decisions (rec.prepareMany, …): as for MAX_STEPS, well inside a frame. */
export const MAX_BATCH = 128;
const wireError = z.strictObject({ code: z.string().max(40), message: z.string().max(500) });
/**
 * One answer per record of a batch, in order: null for the usual answer (promised, accepted or
 * installed at the batch's ballot, with nothing more to say: most of a batch's, sent in a byte), the
 * step's own reply, or why the record was refused.
 */
const eachRecord = <R extends z.ZodType>(reply: R) =>
  z.strictObject({ replies: z.array(z.union([z.null(), z.strictObject({ reply }), z.strictObject({ refused: wireError })])).max(MAX_BATCH) });
// The same three steps for a batch of records at one ballot (Replicas.decideMany); a commit names the records
// whose values, accepted at that ballot, were chosen.
const recPrepareMany = {
  message: z.strictObject({ persona, ballot, slots: z.array(z.strictObject({ key, slot: count })).min(1).max(MAX_BATCH) }),
  reply: eachRecord(recPrepare.reply),
};
const recAcceptMany = {
  message: z.strictObject({ persona, ballot, values: z.array(z.strictObject({ key, value: recordState })).min(1).max(MAX_BATCH) }),
  reply: eachRecord(recAccept.reply),
};
const recCommitMany = {
  message: z.strictObject({ persona, ballot, keys: z.array(key).min(1).max(MAX_BATCH) }),
  reply: eachRecord(recCommit.reply),
};

// A data_manager's order to a storage node to hold a chunk: `base` is the version of the chunk's record the
// placement builds on (see the sweep in storageNode.ts); the bytes are the ones staged at the node, or a
// repair's, which the node fetches from `from` (the chunk's holders), unless the order carries them (node.store).
const storeOrder = z.strictObject({ chunk: name, from: z.array(name).max(8).optional(), copy: z.boolean(), base: count });
const storeReply = z.strictObject({ added: z.boolean() });

/**
 * A group a rule names: the vaults closest to `of` (less `exclude`), with `slack` places more for
 * views that lag; or the group of a replicated record (NEAR_SLACK places of slack). `what` says
 * what a vault in it is, for a refusal ("among the managers of …").
 */
export type GroupRef = { of: Name; exclude?: Name; slack: number; what: string } | { record: { persona: Persona; key: Buffer } };

/** One thing a rule requires of a message's sender or receiver. */
export type Claim =
  /** The sender is this vault. */
  | { senderIs: Name; what: string }
  /** The sender is in this group (refused: 'unauthorized'). */
  | { senderIn: GroupRef }
  /** The receiver is in this group (refused: 'unavailable', so the sender asks another member). */
  | { receiverIn: GroupRef };

/**
 * Who may send a message, relative to names it carries. The receiving vault enforces it before any
 * persona sees the message (vault.ts); `says` is the rule in words, for the docs.
 */
export type SenderRule<M> = { says: string } & (
  | { kind: 'anyone' }
  /** Checked by the receiving persona, with what only it can check (a client's signature). */
  | { kind: 'receiver' }
  /** Refused unless every claim holds. */
  | { kind: 'claims'; claims: (msg: M, from: Name) => Claim[] }
  /** rec.steps, node.storeMany: each part is judged by the rule of the message it stands for, and refused alone. */
  | { kind: 'each-step' }
  /** rec.transfer and batches of decisions: a record whose claims fail is refused (not adopted); the rest are answered. */
  | { kind: 'each-record'; claims: (persona: Persona, key: Buffer) => Claim[] }
);

/** One row of the table; `quorum` gives the bytes that identify "the same message" whichever vault sends it. */
interface Spec<M extends z.ZodType, R extends z.ZodType, S extends SenderRule<z.infer<M>>> {
  message: M;
  reply: R;
  sender: S;
  receiver: string;
  quorum: (msg: z.infer<M>) => Buffer;
}
const spec = <M extends z.ZodType, R extends z.ZodType, S extends SenderRule<z.infer<M>>>(row: Spec<M, R, S>): Spec<M, R, S> => row;

const anyone = (says: string) => ({ says, kind: 'anyone' }) as const;
const byReceiver = (says: string) => ({ says, kind: 'receiver' }) as const;
const hex = (name: Name) => name.toString('hex').slice(0, 12);
/** A node's managers: the group closest to it, less itself, with one place of slack. */
const managersOf = (node: Name): GroupRef => ({ of: node, exclude: node, slack: 1, what: `among the managers of vault ${hex(node)}` });
const dataManagersOf = (chunk: Name): GroupRef => ({ of: chunk, slack: NEAR_SLACK, what: `among the managers of chunk ${hex(chunk)}` });
/** A record decision is between members of the record's group: its sender and its receiver. */
const recordClaims = (persona: Persona, key: Buffer): Claim[] => [{ senderIn: { record: { persona, key } } }, { receiverIn: { record: { persona, key } } }];

/**
 * Quorum keys. A request that carries an operation id is that operation on its record (what the
 * record's group counts once); anything else is the hash of its canonical encoding (no message has
 * per-sender fields). A client's signed request is whole, signature and all: the op id inside is
 * not the client's word until the manager has checked it.
 */
const wholeMessage = (msg: object): Buffer => sha256(canonical(msg as WireValue));

const recordStep = {
  sender: { says: 'a member of the record group', kind: 'claims', claims: (msg: { persona: Persona; key: Buffer }) => recordClaims(msg.persona, msg.key) },
  receiver: 'a member of the record group',
  quorum: wholeMessage,
} as const;

const recordBatch = {
  sender: { says: 'a member of each record group', kind: 'each-record', claims: recordClaims },
  receiver: 'a member of each record group',
  quorum: wholeMessage,
} as const;

/** Each message type: its schema, its reply's schema, who may send it, who receives it, and its quorum key. */
export const MESSAGES = {
  // storage_client -> any member of its storage_client_manager group
  'client.put': spec({
    message: z.strictObject({ request: signedRequest, stagedAt: name }),
    reply: z.strictObject({ refcount: count, subscribers: count, holders: z.array(name) }),
    sender: byReceiver('a client (anyone may relay its request: the manager checks its signature)'),
    receiver: 'a member of the client manager group of the client who signed',
    quorum: wholeMessage,
  }),
  'client.delete': spec({
    message: z.strictObject({ request: signedRequest }),
    reply: z.strictObject({ refcount: count, subscribers: count, deleted: z.boolean() }),
    sender: byReceiver('a client (anyone may relay its request: the manager checks its signature)'),
    receiver: 'a member of the client manager group of the client who signed',
    quorum: wholeMessage,
  }),
  'cm.refcount': spec({
    message: z.strictObject({ client: name, chunk: name }),
    reply: z.strictObject({ version: count, refcount: count }),
    sender: anyone('anyone'),
    receiver: 'each member of the client manager group (reader takes a quorum)',
    quorum: wholeMessage,
  }),
  // storage_client -> the vault closest to the chunk: the one upload of a chunk's bytes
  'chunk.stage': spec({
    // chunk: the bytes' name (their hash), checked on receipt
    message: z.strictObject({ chunk: name, bytes: chunkBytes }),
    reply: z.strictObject({ staged: z.literal(true) }),
    sender: anyone('anyone'),
    receiver: 'any vault (it keeps the bytes in memory for a while)',
    // The name stands for the bytes (checked against them): a megabyte is not hashed twice.
    quorum: (msg) => msg.chunk,
  }),
  // what a client manager group decided and must pass down: each member answers from its own records,
  // and a data_manager acts only on an answer a quorum of them agrees on
  'cm.passed': spec({
    message: z.strictObject({ client: name, chunk: name, op: opId }),
    reply: z.strictObject({ passed: z.enum(['put', 'release']).nullable(), size: count, deadline: count }),
    sender: anyone('anyone'),
    receiver: 'each member of the client manager group (reader takes a quorum of equal answers)',
    quorum: wholeMessage,
  }),
  // a storage_client_manager member -> a data_manager member: a first reference or a last release its
  // group decided (op: the client's request), checked with that group before it counts
  'dm.put': spec({
    // stagedAt: where the client uploaded the bytes (null: not at hand, as when the request is past its deadline)
    message: z.strictObject({ client: name, chunk: name, op: opId, stagedAt: name.nullable() }),
    // refused: the data_manager decided this put can never count (no room, or its request expired), once for all its retries
    reply: z.strictObject({ subscribers: count, holders: z.array(name), refused: wireError.nullable() }),
    sender: byReceiver('a member of the client manager group; the data manager counts it only when a quorum of that group confirms it (cm.passed)'),
    receiver: 'a member of the data manager group of the chunk',
    // The whole message: a refusal that is not a decision (the upload not found at `stagedAt`) belongs to this upload only.
    quorum: wholeMessage,
  }),
  'dm.delete': spec({
    message: z.strictObject({ client: name, chunk: name, op: opId }),
    // refused: decided past its request's deadline, so never counted (its client was told the delete failed)
    reply: z.strictObject({ subscribers: count, refused: wireError.nullable() }),
    sender: byReceiver('a member of the client manager group; the data manager counts it only when a quorum of that group confirms it (cm.passed)'),
    receiver: 'a member of the data manager group of the chunk',
    quorum: wholeMessage,
  }),
  'dm.info': spec({
    message: z.strictObject({ chunk: name }),
    reply: z.strictObject({ version: count, record: chunkRecord.nullable() }),
    sender: anyone('anyone'),
    receiver: 'each member of the data manager group (reader takes a quorum)',
    quorum: wholeMessage,
  }),
  'dm.badHolder': spec({
    message: z.strictObject({ chunk: name, holder: name }),
    reply: z.strictObject({ removed: z.boolean() }),
    sender: anyone('anyone (the member checks the holder itself)'),
    receiver: 'a member of the data manager group',
    quorum: wholeMessage,
  }),
  // a data_manager member -> the vault the client staged the bytes at
  'stage.fetch': spec({
    message: z.strictObject({ chunk: name }),
    reply: z.strictObject({ bytes: chunkBytes }),
    sender: anyone('anyone'),
    receiver: 'the staging vault',
    quorum: wholeMessage,
  }),
  // a data_manager member -> a storage node: the bytes travel once per holder, and not at all to
  // the vault the client staged them at (it stores its staged copy, so `bytes` is left out)
  'node.store': spec({
    message: storeOrder.extend({ bytes: chunkBytes.optional() }),
    reply: storeReply,
    sender: { says: 'a member of the data manager group of the chunk', kind: 'claims', claims: (msg) => [{ senderIn: dataManagersOf(msg.chunk) }] },
    receiver: 'the storage node',
    // The chunk's name stands for its bytes (checked against it on receipt): a megabyte is not hashed twice.
    quorum: (msg) => wholeMessage({ type: 'node.store', chunk: msg.chunk, copy: msg.copy, base: msg.base, sent: msg.bytes !== undefined }),
  }),
  // a data_manager member -> a storage node: a repair's orders for that node asked for in one turn (byteless: each new holder fetches the bytes itself)
  'node.storeMany': spec({
    message: z.strictObject({ orders: z.array(storeOrder).min(1).max(MAX_BATCH) }),
    reply: z.strictObject({ replies: z.array(z.union([z.strictObject({ reply: storeReply }), z.strictObject({ refused: wireError })])) }),
    sender: { says: 'a member of the data manager group of each chunk (each order is judged and answered as a node.store)', kind: 'each-step' },
    receiver: 'the storage node',
    quorum: wholeMessage,
  }),
  'node.get': spec({
    message: z.strictObject({ chunk: name }),
    reply: z.strictObject({ bytes: chunkBytes }),
    sender: anyone('anyone (chunks are self-validating)'),
    receiver: 'the storage node',
    quorum: wholeMessage,
  }),
  // a hint: the node checks with the data manager group itself before deleting anything
  'node.sweep': spec({
    message: z.strictObject({ chunk: name }),
    reply: z.strictObject({ deleted: z.boolean() }),
    sender: anyone('anyone'),
    receiver: 'the storage node',
    quorum: wholeMessage,
  }),
  // a vault -> a member of its own storage_node_manager group
  'snm.register': spec({
    message: z.strictObject({ op: opId, donated: count }),
    reply: z.strictObject({ donated: count }),
    sender: { says: 'the node itself, to a member of its node manager group', kind: 'claims', claims: (_msg, from) => [{ receiverIn: managersOf(from) }] },
    receiver: 'a member of the node manager group of the sender',
    // Its record is the sender's account, and the node derives the op from its own name: no other sender's register shares it.
    quorum: (msg) => msg.op,
  }),
  // stored/released: from the node itself, the changes queued since its last report, in order;
  // pruned/lost: from a data_manager member, one change
  'snm.report': spec({
    message: z.strictObject({
      op: opId,
      node: name,
      changes: z.array(z.strictObject({ chunk: name, size: count, change: nodeChange })).min(1).max(REPORT_BATCH),
    }),
    reply: z.strictObject({ rank: z.number().int() }),
    sender: {
      says: 'the node (stored, released) or a data manager of the chunk (pruned, lost)',
      kind: 'claims',
      claims: (msg) => [
        { receiverIn: managersOf(msg.node) },
        ...msg.changes.map(({ chunk, change }): Claim =>
          change === 'stored' || change === 'released' ? { senderIs: msg.node, what: `vault ${hex(msg.node)}, the only one that reports what it ${change}` } : { senderIn: dataManagersOf(chunk) },
        ),
      ],
    },
    receiver: 'a member of the node manager group of the node',
    quorum: (msg) => Buffer.concat([msg.node, msg.op]),
  }),
  'snm.account': spec({
    message: z.strictObject({ node: name }),
    reply: z.strictObject({ version: count, account: nodeAccount.nullable() }),
    sender: anyone('anyone'),
    receiver: 'each member of the node manager group (reader takes a quorum)',
    quorum: wholeMessage,
  }),
  // one decision per record and version, among the members of its group (single-decree Paxos)
  'rec.prepare': spec({ ...recPrepare, ...recordStep }),
  'rec.accept': spec({ ...recAccept, ...recordStep }),
  'rec.commit': spec({ ...recCommit, ...recordStep }),
  // several of those steps, for records whose groups both vaults are in, answered in one transaction
  'rec.steps': spec({
    message: z.strictObject({ steps: z.array(recStep).min(1).max(MAX_STEPS) }),
    reply: z.strictObject({
      replies: z.array(z.union([z.strictObject({ reply: z.union([recPrepare.reply, recAccept.reply, recCommit.reply]) }), z.strictObject({ refused: wireError })])),
    }),
    sender: { says: "a member of each step's record group", kind: 'each-step' },
    receiver: "a member of each step's record group",
    quorum: wholeMessage,
  }),
  // a batch of those decisions at one ballot, for records whose groups both vaults are in (a churn review's)
  'rec.prepareMany': spec({ ...recPrepareMany, ...recordBatch }),
  'rec.acceptMany': spec({ ...recAcceptMany, ...recordBatch }),
  'rec.commitMany': spec({ ...recCommitMany, ...recordBatch }),
  // old members of a group -> its new members; a record is adopted only if newer than the one held.
  // `declined`: the indexes of records the receiver does not hold now (it is not in their groups as it
  // sees the network); every other record it holds at that version or newer, so the sender may forget it.
  'rec.transfer': spec({
    message: z.strictObject({ persona, records: z.array(z.strictObject({ key, state: recordState })).max(4096) }),
    reply: z.strictObject({ adopted: count, declined: z.array(count).max(4096) }),
    sender: { says: 'a member of each record group', kind: 'each-record', claims: recordClaims },
    receiver: 'a member of each record group',
    quorum: wholeMessage,
  }),
  // a reader -> a member that answered with an older version than the group's: a hint only, the member
  // asks its group for the record itself (rec.state); replies with the version it holds afterwards
  'rec.behind': spec({
    message: z.strictObject({ persona, key }),
    reply: z.strictObject({ version: count }),
    sender: { says: 'anyone, to a member of the record group', kind: 'claims', claims: (msg) => [{ receiverIn: { record: msg } }] },
    receiver: 'a member of the record group',
    quorum: wholeMessage,
  }),
  // a member catching up -> the other members: the record as each last committed it
  'rec.state': spec({
    message: z.strictObject({ persona, key }),
    reply: z.strictObject({ committed: recordState }),
    sender: { says: 'a member of the record group', kind: 'claims', claims: (msg) => recordClaims(msg.persona, msg.key) },
    receiver: 'a member of the record group',
    quorum: wholeMessage,
  }),
} as const;

export type MessageType = keyof typeof MESSAGES;
export type MessageOf<T extends MessageType> = { type: T } & z.infer<(typeof MESSAGES)[T]['message']>;
export type Message = { [T in MessageType]: MessageOf<T> }[MessageType];
export type Reply<T extends MessageType> = z.infer<(typeof MESSAGES)[T]['reply']>;
export type Persona = z.infer<typeof persona>;
/** A step of a record decision. */
export type RecStep = MessageOf<'rec.prepare'> | MessageOf<'rec.accept'> | MessageOf<'rec.commit'>;
/** An order of a node.storeMany: a node.store without bytes. */
export type StoreOrder = z.infer<typeof storeOrder>;

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

/** Who may send a message of this type (see SenderRule). */
export const senderRule = <T extends MessageType>(type: T): SenderRule<MessageOf<T>> => MESSAGES[type].sender as SenderRule<MessageOf<T>>;

/** The quorum key of a message, as text (a map key). No two types share one: a whole message's hash covers its type, and an op is 32 bytes, an op on a node 64. */
export function quorumKeyOf(msg: Message): string {
  return (MESSAGES[msg.type].quorum as (m: Message) => Buffer)(msg).toString('hex');
}
