/**
 * How vaults reach each other. The engine sees only `Network`: send a message and await its reply,
 * and its own `RoutingView` of who is online. Every vault has its own view, fed membership changes
 * asynchronously, so views disagree for a while as they do over a real network.
 *
 * `InProcessHub` implements it for the vaults of one process (the local network and the
 * simulation): every message is encoded to a codec frame and decoded at the receiver, and may be
 * delayed, dropped, duplicated and reordered according to its `LinkConditions`.
 */
import { SafeVaultError } from '../api/errors.ts';
import { systemClock, within, type Clock } from './clock.ts';
import { REQUEST_TIMEOUT_MS } from './constants.ts';
import type { MessageOf, MessageType, Reply } from './messages.ts';
import { ClosestNames, toHex, type Name } from './names.ts';
import { errorFrame, readReply, requestFrame, serveFrame, type Receiver } from './wire/frames.ts';

export interface MembershipChange {
  kind: 'joined' | 'left';
  vault: Name;
  /** False when a vault vanished without saying goodbye (killed, crashed, cut off). */
  graceful: boolean;
  before: readonly Name[];
  after: readonly Name[];
}

/** One vault's view of which vaults are online. */
export interface RoutingView {
  online(): readonly Name[];
  isOnline(name: Name): boolean;
  /** The `count` online vaults closest to `target`, closest first. */
  closest(target: Name, count: number, exclude?: Name): Name[];
  /** Whether `name` is among closest(target, count, exclude). */
  isAmongClosest(target: Name, name: Name, count: number, exclude?: Name): boolean;
  /** How many vaults this view has seen online, gone or not (this one included). */
  knownCount(): number;
  /** Whether `name` is among the `count` vaults closest to `target` of all this view has seen online, gone or not. */
  isNearAmongKnown(target: Name, name: Name, count: number): boolean;
  onChange(listener: (change: MembershipChange) => void): () => void;
  /**
   * Resolves once the view has taken in the network its vault (re)joined: until then it may lack
   * vaults that are online, so a group it names may be the wrong one.
   */
  settled(): Promise<void>;
}

export interface Network {
  readonly self: Name;
  readonly view: RoutingView;
  readonly clock: Clock;
  /** Resolves with the receiver's reply; rejects with its error, or 'unavailable' if it is unreachable or silent. */
  request<T extends MessageType>(to: Name, message: MessageOf<T>): Promise<Reply<T>>;
}

export type Endpoint = Receiver;

export interface LinkConditions {
  /** One-way delay of each frame, uniform in [min, max] ms. */
  delayMs: [number, number];
  /** Chance that a frame is lost, and that it arrives twice. */
  loss: number;
  duplicate: number;
  /** How long after a membership change each view hears of it, uniform in [min, max] ms. */
  viewLagMs: [number, number];
  /** How long a vanished vault takes to be noticed. */
  detectMs: number;
  /**
   * A (re)starting vault learns of the vaults already online one at a time, in no particular order,
   * this many ms apart (as its dials and DHT walks find them). Absent: it knows them all at once.
   */
  learnEachMs?: number;
  /** A request with no reply by then fails as unreachable. */
  timeoutMs: number;
}

export const PERFECT_LINKS: LinkConditions = { delayMs: [0, 0], loss: 0, duplicate: 0, viewLagMs: [0, 0], detectMs: 100, timeoutMs: REQUEST_TIMEOUT_MS };

/** Frames and bytes on the wire, by message type (what the benchmark reports per chunk). */
export interface WireStats {
  messages: number;
  bytes: number;
  byType: Record<string, { messages: number; bytes: number }>;
}

/** Counts one frame of `type` in `stats`: one count for every transport. */
export function countFrame(stats: WireStats, type: string, bytes: number): void {
  stats.messages++;
  stats.bytes += bytes;
  const entry = (stats.byType[type] ??= { messages: 0, bytes: 0 });
  entry.messages++;
  entry.bytes += bytes;
}

/** A view fed by its transport: `apply` reports a change to the listeners once, in order. */
export class View implements RoutingView {
  readonly #online = new Map<string, Name>();
  /** closest() over the vaults online, and over every vault known, worked out again after any change. */
  #closest: ClosestNames | undefined;
  #closestKnown: ClosestNames | undefined;
  /** isOnline() by the name's object, until any change: a data_manager asks it of the same holders' names over and over (names are never changed once made). */
  #isOnline = new WeakMap<Name, boolean>();
  /** Every vault this view has seen online: a judgement made against it stays true as vaults come and go. */
  readonly #known = new Map<string, Name>();
  readonly #listeners = new Set<(change: MembershipChange) => void>();
  #settled = Promise.resolve();
  #settle?: () => void;

  online(): readonly Name[] {
    return [...this.#online.values()];
  }

  isOnline(name: Name): boolean {
    let online = this.#isOnline.get(name);
    if (online === undefined) this.#isOnline.set(name, (online = this.#online.has(toHex(name))));
    return online;
  }

  closest(target: Name, count: number, exclude?: Name): Name[] {
    return (this.#closest ??= new ClosestNames(this.#online.values())).closest(target, count, exclude);
  }

  knownCount(): number {
    return this.#known.size;
  }

  // A vault judging a sender asks it per record of a batch: the memo's list is read, not copied.
  isAmongClosest(target: Name, name: Name, count: number, exclude?: Name): boolean {
    return (this.#closest ??= new ClosestNames(this.#online.values())).includes(target, count, name, exclude);
  }

  isNearAmongKnown(target: Name, name: Name, count: number): boolean {
    // Every member asks it per accept, of records that cluster: the memo answers most.
    return (this.#closestKnown ??= new ClosestNames(this.#known.values())).includes(target, count, name);
  }

  /** Vaults online from the start, as the network stood: nothing changed, so nothing is reported. */
  seed(vaults: Iterable<Name>): void {
    for (const vault of vaults) {
      this.#online.set(toHex(vault), vault);
      this.#known.set(toHex(vault), vault);
    }
    this.#changed();
  }

  #changed(): void {
    this.#closest = undefined;
    this.#closestKnown = undefined;
    this.#isOnline = new WeakMap();
  }

  onChange(listener: (change: MembershipChange) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  settled(): Promise<void> {
    return this.#settled;
  }

  /** The transport is still finding the network: `settled()` waits for `settle()`. */
  unsettle(): void {
    if (!this.#settle) this.#settled = new Promise((resolve) => (this.#settle = resolve));
  }

  settle(): void {
    this.#settle?.();
    this.#settle = undefined;
  }

  apply(kind: MembershipChange['kind'], vault: Name, graceful: boolean): void {
    const hex = toHex(vault);
    if ((kind === 'joined') === this.#online.has(hex)) return;
    const before = this.online();
    if (kind === 'joined') this.#online.set(hex, vault);
    else this.#online.delete(hex);
    this.#changed();
    this.#known.set(hex, vault);
    const change = { kind, vault, graceful, before, after: this.online() };
    for (const listener of [...this.#listeners]) listener(change);
  }
}

export class InProcessHub {
  readonly clock: Clock;
  conditions: LinkConditions;
  readonly #endpoints = new Map<string, Endpoint>();
  readonly #online = new Map<string, Name>();
  readonly #views = new Map<string, View>();
  /** Vaults that left or vanished: whatever they still had in flight goes nowhere. */
  readonly #stopped = new Set<string>();
  /** Running vaults whose link is down (see cutOff). */
  readonly #cut = new Set<string>();
  readonly #stats: WireStats = { messages: 0, bytes: 0, byType: {} };

  constructor(clock: Clock = systemClock, conditions: LinkConditions = PERFECT_LINKS) {
    this.clock = clock;
    this.conditions = conditions;
  }

  /** The network as `self` sees it: its messages come from `self` (the link names the sender, as a secure channel does). */
  networkOf(self: Name): Network {
    // A fresh view each time: a vault that restarts learns the network anew, with nothing stale.
    const view = new View();
    this.#views.set(toHex(self), view);
    const { learnEachMs } = this.conditions;
    if (learnEachMs === undefined) view.seed(this.#online.values());
    else this.#learn(view, self, learnEachMs);
    return { self, view, clock: this.clock, request: (to, message) => this.#request(self, to, message) };
  }

  /** A vault starts answering; it learns the membership as it stands. */
  attach(name: Name, endpoint: Endpoint): void {
    this.#endpoints.set(toHex(name), endpoint);
    this.#stopped.delete(toHex(name));
  }

  /** A cold start: the vaults come online together, as the network they were, so nothing churns (no change is reported). */
  start(names: readonly Name[]): void {
    for (const name of names) this.#online.set(toHex(name), name);
    for (const view of this.#views.values()) view.seed(names);
  }

  join(name: Name): void {
    this.#online.set(toHex(name), name);
    this.#tell('joined', name, true, 0);
  }

  /** A goodbye: the vault leaves; each view hears of it after its lag. */
  leave(name: Name): void {
    this.#endpoints.delete(toHex(name));
    this.#stopped.add(toHex(name));
    if (this.#online.delete(toHex(name))) this.#tell('left', name, true, 0);
  }

  /** No goodbye: the vault stops answering at once; views notice after the failure detector's delay. */
  vanish(name: Name): void {
    this.#endpoints.delete(toHex(name));
    this.#stopped.add(toHex(name));
    if (this.#online.delete(toHex(name))) this.#tell('left', name, false, this.conditions.detectMs);
  }

  /**
   * A link down: the vault keeps running, but nothing passes between it and the others. Each side's
   * view loses the other after the failure detector's delay (no goodbye, as over a real network).
   */
  cutOff(name: Name): void {
    const hex = toHex(name);
    if (this.#cut.has(hex) || !this.#online.has(hex)) return;
    this.#cut.add(hex);
    this.#partition('left', name, false);
  }

  /** The link is back: each side sees the other again. */
  reconnect(name: Name): void {
    if (this.#cut.delete(toHex(name)) && this.#online.has(toHex(name))) this.#partition('joined', name, true);
  }

  isOnline(name: Name): boolean {
    return this.#online.has(toHex(name));
  }

  online(): Name[] {
    return [...this.#online.values()];
  }

  stats(): WireStats {
    return structuredClone(this.#stats);
  }

  /** `vault` and everyone else see each other go (or come back), each view after its own lag. */
  #partition(kind: MembershipChange['kind'], vault: Name, graceful: boolean): void {
    const afterMs = kind === 'left' ? this.conditions.detectMs : 0;
    const mine = this.#views.get(toHex(vault));
    for (const [hex, view] of this.#views) {
      if (hex === toHex(vault) || !this.#online.has(hex)) continue;
      const other = this.#online.get(hex)!;
      this.clock.after(afterMs + this.#uniform(this.conditions.viewLagMs), () => view.apply(kind, vault, graceful));
      if (mine) this.clock.after(afterMs + this.#uniform(this.conditions.viewLagMs), () => mine.apply(kind, other, graceful));
    }
  }

  /** Whether frames pass between two vaults (a vault always reaches itself). */
  #linked(a: Name, b: Name): boolean {
    return a.equals(b) || (!this.#cut.has(toHex(a)) && !this.#cut.has(toHex(b)));
  }

  #tell(kind: MembershipChange['kind'], vault: Name, graceful: boolean, afterMs: number): void {
    for (const [hex, view] of this.#views) {
      // The vault itself knows at once; everyone else after its own lag.
      const lag = hex === toHex(vault) ? 0 : afterMs + this.#uniform(this.conditions.viewLagMs);
      if (lag === 0) view.apply(kind, vault, graceful);
      else this.clock.after(lag, () => view.apply(kind, vault, graceful));
    }
  }

  /** Tells a new view of the vaults online one by one, in random order; it is settled after the last. */
  #learn(view: View, self: Name, eachMs: number): void {
    const vaults = [...this.#online.values()].filter((v) => !v.equals(self));
    for (let i = vaults.length - 1; i > 0; i--) {
      const j = Math.floor(this.clock.random() * (i + 1));
      [vaults[i], vaults[j]] = [vaults[j]!, vaults[i]!];
    }
    view.unsettle();
    vaults.forEach((vault, i) =>
      this.clock.after((i + 1) * eachMs, () => {
        // One that left meanwhile is not learnt (its departure reached the views that knew it).
        if (this.#online.has(toHex(vault))) view.apply('joined', vault, true);
        if (i === vaults.length - 1) view.settle();
      }),
    );
    if (vaults.length === 0) view.settle();
  }

  #uniform([min, max]: [number, number]): number {
    return min === max ? min : min + Math.floor(this.clock.random() * (max - min + 1));
  }

  /** One frame across the link: encoded, counted, maybe lost, delayed (and so reordered), maybe duplicated. */
  #send(type: string, frame: Buffer, deliver: (frame: Buffer) => void): void {
    countFrame(this.#stats, type, frame.length);
    const { loss, duplicate } = this.conditions;
    if (loss > 0 && this.clock.random() < loss) return;
    const copies = duplicate > 0 && this.clock.random() < duplicate ? 2 : 1;
    for (let i = 0; i < copies; i++) {
      const delay = this.#uniform(this.conditions.delayMs);
      if (delay === 0) queueMicrotask(() => deliver(frame));
      else this.clock.after(delay, () => deliver(frame));
    }
  }

  /** A message from `from` without `from`'s own view: see LocalNetwork.impersonate. */
  sendAs<T extends MessageType>(from: Name, to: Name, message: MessageOf<T>): Promise<Reply<T>> {
    return this.#request(from, to, message);
  }

  #request<T extends MessageType>(from: Name, to: Name, message: MessageOf<T>): Promise<Reply<T>> {
    const short = toHex(to).slice(0, 12);
    if (this.#stopped.has(toHex(from))) return Promise.reject(new SafeVaultError('unavailable', 'this vault is stopped'));
    let frame: Buffer;
    try {
      frame = requestFrame(message);
    } catch (error) {
      return Promise.reject(error);
    }
    const reply = new Promise<Reply<T>>((resolve, reject) => {
      let answered = false;
      const answer = (replyFrame: Buffer) => {
        if (answered) return; // a duplicated reply is dropped, as a request id would have it
        answered = true;
        try {
          resolve(readReply(message.type, replyFrame, short));
        } catch (error) {
          reject(error);
        }
      };
      this.#send(message.type, frame, (arrived) => {
        if (!this.#linked(from, to)) return; // lost on a link that is down: the request times out
        const endpoint = this.#endpoints.get(toHex(to));
        // Nobody there: refused at once, as a connection to a process that is gone would be.
        if (!endpoint) return this.#send('error', errorFrame(new SafeVaultError('unavailable', `vault ${short} is not running`)), answer);
        void serveFrame(endpoint, from, arrived).then((out) => {
          // A vault that stopped while handling this never answers, as a crashed process would not.
          if (this.#endpoints.get(toHex(to)) === endpoint && this.#linked(from, to)) this.#send(`${message.type}:reply`, out, answer);
        });
      });
    });
    return within(this.clock, this.conditions.timeoutMs, reply, () => new SafeVaultError('unavailable', `vault ${short} did not answer in time`));
  }
}

