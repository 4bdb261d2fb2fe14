/**
 * One vault: its identity, its SQLite file, its chunk files, and the four personas it performs.
 * Messages are dispatched here, each judged first by its type's sender rule (messages.ts); membership changes in this
 * vault's own view move records to the vaults newly responsible for them and start churn handling.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { derivedOp } from './clientRequest.ts';
import { AUDIT_INTERVAL_MS, GROUP_SIZE } from './constants.ts';
import { migrate, openDatabase, type Db } from './db.ts';
import { fail, isSafeVaultError } from '../api/errors.ts';
import type { EventBus } from './events.ts';
import { Groups, NEAR_SLACK } from './group.ts';
import { createIdentity, loadIdentity, type Identity } from './identity.ts';
import { KeyedLock } from './keyedLock.ts';
import { answeredLater } from './outbox.ts';
import { MESSAGES, quorumKeyOf, type Message, type MessageOf, type MessageType, type Persona, type RecordState, type Reply } from './messages.ts';
import { candidatesIn, closest, rangesNear, toHex, type Name } from './names.ts';
import type { VaultContext } from './personas/context.ts';
import { DataManager } from './personas/dataManager.ts';
import { StorageClientManager } from './personas/storageClientManager.ts';
import { StorageNode } from './personas/storageNode.ts';
import { StorageNodeManager } from './personas/storageNodeManager.ts';
import { Replicas, type RecordBook } from './replica.ts';
import { SenderJudge } from './senderJudge.ts';
import type { Endpoint, MembershipChange, Network } from './transport.ts';

const migrations = [`CREATE TABLE vault_meta (key TEXT PRIMARY KEY, value BLOB NOT NULL) STRICT;`];

/** Records sent to one new member per message. */
const TRANSFER_BATCH = 512;
/** The longest wait between two attempts to hand records to a new member. */
const TRANSFER_RETRY_MAX_MS = 30_000;

export interface VaultOptions {
  dir: string;
  /** This vault's link to the others, given its name once the identity is known (and the identity, which a libp2p link uses as its key). */
  networkOf: (self: Name, identity: Identity) => Network;
  events: EventBus;
  /** Bytes donated to the network; stored on first open, kept afterwards unless given again. */
  donated?: number;
  /** The identity (PKCS#8) of a new vault; an existing vault keeps its own. */
  identity?: Buffer;
  /** Chunk files written off the event loop (see StorageNode); not on a virtual clock. */
  backgroundWrites?: boolean;
}

type Receivers = { [T in MessageType]: (from: Name, msg: MessageOf<T>) => Reply<T> | Promise<Reply<T>> };

export class Vault implements Endpoint {
  readonly name: Name;
  readonly id: string;
  readonly storageNode: StorageNode;
  readonly dataManager: DataManager;
  readonly storageNodeManager: StorageNodeManager;
  readonly storageClientManager: StorageClientManager;
  readonly #ctx: VaultContext;
  readonly #judge: SenderJudge;
  readonly #stopWatching: () => void;
  #changes: Promise<void> = Promise.resolve();
  /** What handing records over took at the last membership change: records examined, sent to new members, forgotten. */
  lastTransfer: { examined: number; sent: number; forgotten: number } = { examined: 0, sent: 0, forgotten: 0 };
  #stopAudit: () => void = () => undefined;
  #closed = false;
  /** Messages being handled, by quorum key: the same message again (a duplicate, a retry, another sender's) shares the answer. */
  readonly #inHand = new Map<string, Promise<unknown>>();
  /** Handovers a new member has not confirmed yet (an attempt was lost): sent again until it does. Rare, so kept as they are. */
  readonly #unconfirmed = new Set<Handover>();
  /** Records this vault is no longer near, kept until no unconfirmed handover holds them. */
  readonly #forgetLater = new Map<string, { book: RecordBook; key: Buffer }>();

  constructor(options: VaultOptions) {
    mkdirSync(options.dir, { recursive: true });
    const db = openDatabase(join(options.dir, 'vault.sqlite'));
    migrate(db, 'vault', migrations);
    const identity = loadOrCreate(db, 'identity', () => options.identity ?? createIdentity().secret);
    const donatedBytes = loadOrCreate(db, 'donated', () => encodeNumber(options.donated ?? 0), options.donated !== undefined);
    const keys = loadIdentity(identity);
    const self = keys.name;
    this.name = self;
    this.id = toHex(self);
    const network = options.networkOf(self, keys);
    const locks = new KeyedLock();
    this.#ctx = {
      self,
      db,
      network,
      clock: network.clock,
      groups: new Groups(network),
      locks,
      replicas: new Replicas({ self, db, network, locks }),
      events: options.events,
    };
    this.storageNode = new StorageNode(this.#ctx, join(options.dir, 'chunks'), decodeNumber(donatedBytes), options.backgroundWrites);
    this.dataManager = new DataManager(this.#ctx, (chunk) => this.storageNode.staged(chunk));
    this.storageNodeManager = new StorageNodeManager(this.#ctx);
    this.storageClientManager = new StorageClientManager(this.#ctx);
    for (const book of [this.storageClientManager, this.dataManager, this.storageNodeManager]) this.#ctx.replicas.register(book);
    this.#judge = new SenderJudge(self, this.#ctx.groups, this.#ctx.replicas);
    // Changes are handled one at a time, in the order this vault's view reports them.
    this.#stopWatching = network.view.onChange((change) => {
      this.#changes = this.#changes.then(() => this.#onMembershipChange(change)).catch(() => undefined);
    });
  }

  /** The records this vault holds for its groups, and the decisions it takes part in. */
  get replicas(): Replicas {
    return this.#ctx.replicas;
  }

  /** Tells this vault's storage_node_manager group how much space it donates. */
  async register(): Promise<void> {
    const { donated } = this.storageNode;
    const op = derivedOp('snm.register', this.name, this.#ctx.clock.bytes(16));
    await this.#ctx.groups.askMember(this.name, { type: 'snm.register', op, donated }, { exclude: this.name });
  }

  /** Starts the periodic audit of records and sweep of the disk (churn that went unseen, bytes nobody lists). */
  startAudits(): void {
    const { clock } = this.#ctx;
    const tick = () => {
      if (this.#closed) return;
      this.#changes = this.#changes
        .then(async () => {
          if (this.#closed) return;
          this.replicas.expire();
          await this.replicas.finishUnfinished();
          if (!this.#closed) await this.dataManager.audit();
          if (!this.#closed) await this.storageClientManager.audit();
          if (!this.#closed) await this.storageNode.sweep();
        })
        .catch(() => undefined)
        .finally(() => {
          if (!this.#closed) this.#stopAudit = clock.after(AUDIT_INTERVAL_MS * (0.75 + clock.random() / 2), tick);
        });
    };
    this.#stopAudit = clock.after(AUDIT_INTERVAL_MS * clock.random(), tick);
  }

  /** Changes this vault's donated space: kept in its meta, then told to its storage_node_manager group as at registration. */
  async setDonated(bytes: number): Promise<void> {
    loadOrCreate(this.#ctx.db, 'donated', () => encodeNumber(bytes), true);
    this.storageNode.donated = bytes;
    await this.register();
  }

  /** Records each persona holds in this vault's database. */
  records(): { storageClientManager: number; dataManager: number; storageNodeManager: number; storageNode: number } {
    return {
      storageClientManager: this.storageClientManager.count(),
      dataManager: this.dataManager.count(),
      storageNodeManager: this.storageNodeManager.count(),
      storageNode: this.storageNode.usage().count,
    };
  }

  /** Resolves when every membership change reported so far has been handled. */
  settled(): Promise<void> {
    return this.#changes;
  }

  /** Reviews every record with too few online holders (after a cold start). */
  audit(): Promise<void> {
    return this.dataManager.audit();
  }

  receive(from: Name, message: Message): Promise<unknown> {
    if (this.#closed) fail('unavailable', `vault ${this.id.slice(0, 12)} is stopped`);
    return Promise.resolve().then(() => this.#handle(from, message));
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#stopWatching();
    this.#stopAudit();
    this.#ctx.db.close();
  }

  /** What this vault answers to each message type: one entry per type, typed by the message and its reply (messages.ts says who may send it). */
  readonly #receivers: Receivers = {
    'client.put': (_from, msg) => this.storageClientManager.onClientPut(msg),
    'client.delete': (_from, msg) => this.storageClientManager.onClientDelete(msg),
    'cm.refcount': (_from, msg) => this.storageClientManager.onRefcount(msg),
    'cm.passed': (_from, msg) => this.storageClientManager.onPassed(msg),
    'chunk.stage': (_from, msg) => this.storageNode.onStage(msg),
    'stage.fetch': (_from, msg) => this.storageNode.onStageFetch(msg),
    'dm.put': (from, msg) => this.dataManager.onPut(from, msg),
    'dm.delete': (from, msg) => this.dataManager.onDelete(from, msg),
    'dm.info': (_from, msg) => this.dataManager.onInfo(msg),
    'dm.badHolder': (_from, msg) => this.dataManager.onBadHolder(msg),
    'node.store': (_from, msg) => this.storageNode.onStore(msg),
    // Each order as the node.store it stands for: judged, matched with the same order from others, answered or refused on its own.
    'node.storeMany': (from, msg) => Promise.all(msg.orders.map((order) => answeredLater(() => this.#handle(from, { type: 'node.store', ...order }) as Promise<Reply<'node.store'>>))).then((replies) => ({ replies })),
    'node.get': (_from, msg) => this.storageNode.onGet(msg),
    'node.sweep': (_from, msg) => this.storageNode.onSweep(msg),
    'snm.register': (from, msg) => this.storageNodeManager.onRegister(from, msg),
    'snm.report': (_from, msg) => this.storageNodeManager.onReport(msg),
    'snm.account': (_from, msg) => this.storageNodeManager.onAccount(msg),
    'rec.prepare': (_from, msg) => this.#ctx.replicas.onDecision(msg),
    'rec.accept': (_from, msg) => this.#ctx.replicas.onDecision(msg),
    'rec.commit': (_from, msg) => this.#ctx.replicas.onDecision(msg),
    'rec.steps': (from, msg) => this.#ctx.replicas.onSteps(msg.steps, (step) => this.#judge.judge(from, step)),
    'rec.behind': (_from, msg) => this.#ctx.replicas.pull(this.#ctx.replicas.book(msg.persona), msg.key).then((version) => ({ version })),
    'rec.state': (_from, msg) => this.#ctx.replicas.onState(msg),
    'rec.prepareMany': (from, msg) => this.#ctx.replicas.onPrepareMany(msg, (key) => this.#judge.judgeRecord(from, msg, key)),
    'rec.acceptMany': (from, msg) => this.#ctx.replicas.onAcceptMany(msg, (key) => this.#judge.judgeRecord(from, msg, key)),
    'rec.commitMany': (from, msg) => this.#ctx.replicas.onCommitMany(msg, (key) => this.#judge.judgeRecord(from, msg, key)),
    'rec.transfer': (from, msg) => {
      const { claims } = MESSAGES['rec.transfer'].sender;
      const reply = this.#ctx.replicas.onTransfer(msg, (key) => this.#judge.holds(from, claims(msg.persona, key)));
      if (reply.adopted > 0) this.#ctx.events.emit({ type: 'account.transferred', vault: this.id, records: reply.adopted });
      return reply;
    },
  };

  /**
   * Judges the sender by the message type's rule, then has the message answered. The same message
   * (by quorum key) arriving while one is in hand shares its answer, as any sender allowed to send
   * it would get the same. A rule judged only once the message is handled (by the persona, step by
   * step, record by record) has not cleared this sender yet: its message is matched with its own sender's only.
   */
  #handle(from: Name, message: Message): Promise<unknown> {
    const rule = this.#judge.judge(from, message);
    const cleared = rule.kind === 'anyone' || rule.kind === 'claims';
    const key = cleared ? quorumKeyOf(message) : `${toHex(from)}:${quorumKeyOf(message)}`;
    const inHand = this.#inHand.get(key);
    if (inHand) return inHand;
    const reply = (async () => this.#dispatch(from, message))().finally(() => this.#inHand.delete(key));
    this.#inHand.set(key, reply);
    return reply;
  }

  #dispatch<T extends MessageType>(from: Name, msg: MessageOf<T>): Reply<T> | Promise<Reply<T>> {
    return (this.#receivers[msg.type] as Receivers[T])(from, msg);
  }

  // --- churn ---

  async #onMembershipChange(change: MembershipChange): Promise<void> {
    // Until this vault is online itself its view is not the network's: nothing to hand over or repair yet.
    if (this.#closed || change.vault.equals(this.name) || !change.after.some((v) => v.equals(this.name))) return;
    await this.dataManager.onMembershipChange(change.vault, change.kind === 'joined');
    if (!this.#closed) await this.#transferRecords(change);
  }

  /**
   * Members hand each record to the vaults newly in its group, and forget records well outside
   * theirs: at once, unless a handover of the record is still unconfirmed (then once it is).
   */
  async #transferRecords(change: MembershipChange): Promise<void> {
    const plan = planTransfer(this.#ctx.replicas, this.name, change);
    // Most often no handover is unconfirmed, and the whole list goes without a look at each record.
    const waiting = this.#waitingOn();
    const forget =
      waiting.size === 0
        ? plan.forget
        : plan.forget.filter((record) => {
            const id = recordId(record.book.persona, record.key);
            if (waiting.has(id)) this.#forgetLater.set(id, record);
            return !waiting.has(id);
          });
    this.#ctx.replicas.forget(forget);
    this.lastTransfer = { examined: plan.examined, sent: plan.sent, forgotten: forget.length };
    await Promise.all(plan.sends.map(({ to, message }) => this.#handOver(to, { persona: message.persona, records: message.records }, 0)));
  }

  /**
   * Sends records to a new member of their groups. Those it does not confirm (it holds that version
   * or newer) go again, with backoff and as this vault now holds them, while the member stays online
   * in this vault's view and in their groups; only the first attempt is waited for.
   */
  async #handOver(to: Name, handover: Handover, attempt: number): Promise<void> {
    const { persona, records } = handover;
    // A record declined now (the member's view lags, or no longer has this vault near it) is confirmed later, once it holds it from any member.
    let unconfirmed = records;
    try {
      unconfirmed = (await this.#ctx.network.request(to, { type: 'rec.transfer', persona, records })).declined.flatMap((i) => records[i] ?? []);
    } catch (error) {
      // Only a lost message or an unreachable member is worth another try; a refusal would be repeated, and what it refused is kept here.
      if (!isSafeVaultError(error) || error.code !== 'unavailable') {
        this.#unconfirmed.delete(handover);
        for (const { key } of records) this.#forgetLater.delete(recordId(persona, key));
        return;
      }
    }
    if (this.#closed) return;
    this.#waitOn(handover, unconfirmed);
    if (unconfirmed.length === 0) return;
    const { clock } = this.#ctx;
    clock.after(Math.min(TRANSFER_RETRY_MAX_MS, 500 * 2 ** attempt) * (0.5 + clock.random()), () => {
      if (this.#closed) return;
      const book = this.#ctx.replicas.book(persona);
      const online = this.#ctx.network.view.isOnline(to);
      // A member gone, or no longer in a record's group, is no longer one that should hold it.
      const stillOwed = ({ key }: { key: Buffer }) => {
        const place = book.placeOf(key)!;
        return online && this.#ctx.groups.members(place.group, place.exclude).some((m) => m.equals(to));
      };
      this.#waitOn(handover, unconfirmed.filter(stillOwed).map(({ key }) => ({ key, state: this.#ctx.replicas.state(book, key) })));
      if (handover.records.length > 0) void this.#handOver(to, handover, attempt + 1);
    });
  }

  /**
   * `handover` now waits on `records` only. A record waiting to be forgotten goes once no handover
   * waits on it, if this vault is still not near it.
   */
  #waitOn(handover: Handover, records: Handover['records']): void {
    handover.records = records;
    if (records.length > 0) this.#unconfirmed.add(handover);
    else this.#unconfirmed.delete(handover);
    if (this.#forgetLater.size === 0) return;
    const waiting = this.#waitingOn();
    const forget: { book: RecordBook; key: Buffer }[] = [];
    for (const [id, record] of this.#forgetLater) {
      if (waiting.has(id)) continue;
      this.#forgetLater.delete(id);
      const place = record.book.placeOf(record.key)!;
      if (!this.#ctx.groups.isNear(place.group, this.name, place.exclude)) forget.push(record);
    }
    this.#ctx.replicas.forget(forget);
  }

  /** The records some unconfirmed handover holds. */
  #waitingOn(): Set<string> {
    return new Set([...this.#unconfirmed].flatMap(({ persona, records }) => records.map(({ key }) => recordId(persona, key))));
  }
}

/** Records on their way to one new member, as one rec.transfer carries them. */
interface Handover {
  persona: Persona;
  records: MessageOf<'rec.transfer'>['records'];
}

const recordId = (persona: Persona, key: Buffer): string => `${persona}:${toHex(key)}`;

/**
 * What `self` hands over when `change.vault` comes or goes: each record goes to the vaults newly in
 * its group, and records well outside self's groups (slack included) are forgotten. Only records
 * whose group can include that vault are examined: a few name ranges around it, read through each
 * table's index, never a scan of every record.
 */
export function planTransfer(
  replicas: Replicas,
  self: Name,
  change: MembershipChange,
): { sends: { to: Name; message: MessageOf<'rec.transfer'> }[]; forget: { book: RecordBook; key: Buffer }[]; examined: number; sent: number } {
  const ranges = rangesNear(change.vault, change.kind === 'joined' ? change.after : change.before, GROUP_SIZE + NEAR_SLACK);
  const sends: { to: Name; message: MessageOf<'rec.transfer'> }[] = [];
  const forget: { book: RecordBook; key: Buffer }[] = [];
  let examined = 0;
  let sent = 0;
  // Per range, only the few members that can be close to a name in it (one more, for a group that excludes one),
  // each one Buffer for one vault, so that the tens of thousands of records below compare them by identity.
  const byHex = new Map<string, Name>();
  const shared = (names: Name[]) => names.map((name) => byHex.get(toHex(name)) ?? (byHex.set(toHex(name), name), name));
  const me = shared([self])[0]!;
  const candidates = ranges.map((range) => ({
    range,
    after: shared(candidatesIn(range, change.after, GROUP_SIZE + NEAR_SLACK + 1)),
    before: shared(candidatesIn(range, change.before, GROUP_SIZE + 1)),
  }));
  for (const book of replicas.books()) {
    const batches = new Map<Name, { to: Name; records: { key: Buffer; state: RecordState }[] }>();
    for (const { range, after: afterNear, before: beforeNear } of candidates) {
      // Judged by its key alone: a record is decoded only if it goes to a vault new in its group.
      const newMembers = (key: Buffer): Name[] | undefined => {
        examined++;
        const place = book.placeOf(key)!;
        const near = closest(place.group, afterNear, GROUP_SIZE + NEAR_SLACK, place.exclude);
        const rank = near.indexOf(me);
        if (rank < 0) forget.push({ book, key });
        if (rank < 0 || rank >= GROUP_SIZE) return undefined;
        const before = closest(place.group, beforeNear, GROUP_SIZE, place.exclude);
        const added = near.slice(0, GROUP_SIZE).filter((member) => member !== me && !before.includes(member));
        return added.length > 0 ? added : undefined;
      };
      for (const { key, state, selected } of replicas.records(book, range, newMembers)) {
        for (const member of selected) {
          const batch = batches.get(member) ?? { to: member, records: [] };
          batch.records.push({ key, state });
          batches.set(member, batch);
        }
      }
    }
    for (const { to, records } of batches.values()) {
      sent += records.length;
      for (let i = 0; i < records.length; i += TRANSFER_BATCH) {
        sends.push({ to, message: { type: 'rec.transfer', persona: book.persona, records: records.slice(i, i + TRANSFER_BATCH) } });
      }
    }
  }
  return { sends, forget, examined, sent };
}

function loadOrCreate(db: Db, key: string, create: () => Buffer, replace = false): Buffer {
  const row = db.prepare<[string], Buffer>('SELECT value FROM vault_meta WHERE key = ?').pluck().get(key);
  if (row && !replace) return row;
  const value = create();
  db.prepare('INSERT OR REPLACE INTO vault_meta (key, value) VALUES (?, ?)').run(key, value);
  return value;
}

const encodeNumber = (n: number): Buffer => Buffer.from(String(n));
const decodeNumber = (b: Buffer): number => Number(b.toString());
