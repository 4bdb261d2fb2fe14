/**
 * How vaults reach each other. The engine sees only `Transport` (send a message, await its reply)
 * and `RoutingTable` (who is online, who is closest); the in-process network implements both for the
 * local network, and a libp2p transport implements the same two for network mode.
 */
import { EventEmitter } from 'node:events';
import { REQUEST_TIMEOUT_MS } from './constants.ts';
import { SafeVaultError } from '../api/errors.ts';
import type { Message, Reply } from './messages.ts';
import { closest, toHex, type Name } from './names.ts';

export interface Transport {
  /** Resolves with the receiver's reply; rejects with the receiver's error, or 'unavailable' if unreachable. */
  request<M extends Message>(to: Name, message: M): Promise<Reply<M['type']>>;
}

export interface Endpoint {
  receive(from: Name, message: Message): Promise<unknown>;
}

export interface MembershipChange {
  kind: 'joined' | 'left';
  vault: Name;
  /** False when a vault vanished without saying goodbye (killed, crashed, cut off). */
  graceful: boolean;
  before: readonly Name[];
  after: readonly Name[];
}

/** A vault's view of which vaults are online. */
export interface RoutingTable {
  online(): readonly Name[];
  isOnline(name: Name): boolean;
  /** The `count` online vaults closest to `target`, closest first. */
  closest(target: Name, count: number, exclude?: Name): Name[];
  onChange(listener: (change: MembershipChange) => void): () => void;
}

/**
 * All vaults of one process: delivery is a function call, and membership is one shared table
 * (every vault sees the same changes in the same order).
 */
export class InProcessNetwork implements RoutingTable {
  readonly #endpoints = new Map<string, Endpoint>();
  readonly #online = new Map<string, Name>();
  readonly #changes = new EventEmitter();
  #detector: NodeJS.Timeout | undefined;

  constructor() {
    this.#changes.setMaxListeners(0);
  }

  /** A transport whose messages come from `from` (the receiver learns the sender from the link, as with a secure channel). */
  transportFor(from: Name): Transport {
    return { request: (to, message) => this.#deliver(from, to, message) };
  }

  attach(name: Name, endpoint: Endpoint): void {
    this.#endpoints.set(toHex(name), endpoint);
  }

  /** A cold start: the vaults come online together, as the network they were, so nothing churns. */
  start(names: readonly Name[]): void {
    for (const name of names) this.#online.set(toHex(name), name);
  }

  /** Vaults join a running network, each announced as a membership change. */
  join(names: readonly Name[]): void {
    for (const name of names) this.#change('joined', name, true);
  }

  /** A goodbye: the vault leaves the routing table at once. */
  leave(name: Name): void {
    this.#endpoints.delete(toHex(name));
    if (this.#online.has(toHex(name))) this.#change('left', name, true);
  }

  /** No goodbye: the vault stops answering; resolves when the failure detector has noticed. */
  vanish(name: Name): Promise<void> {
    this.#endpoints.delete(toHex(name));
    this.#detector ??= setTimeout(() => this.#detectFailures(), 100);
    return new Promise((resolve) => {
      const stop = this.onChange((change) => {
        if (change.kind === 'left' && change.vault.equals(name)) resolve(stop());
      });
    });
  }

  online(): readonly Name[] {
    return [...this.#online.values()];
  }

  isOnline(name: Name): boolean {
    return this.#online.has(toHex(name));
  }

  closest(target: Name, count: number, exclude?: Name): Name[] {
    return closest(target, this.#online.values(), count, exclude);
  }

  onChange(listener: (change: MembershipChange) => void): () => void {
    this.#changes.on('change', listener);
    return () => this.#changes.off('change', listener);
  }

  close(): void {
    clearTimeout(this.#detector);
    this.#changes.removeAllListeners();
  }

  #detectFailures(): void {
    this.#detector = undefined;
    for (const [hex, name] of this.#online) {
      if (!this.#endpoints.has(hex)) this.#change('left', name, false);
    }
  }

  #change(kind: MembershipChange['kind'], name: Name, graceful: boolean): void {
    const before = this.online();
    if (kind === 'joined') this.#online.set(toHex(name), name);
    else this.#online.delete(toHex(name));
    this.#changes.emit('change', { kind, vault: name, graceful, before, after: this.online() } satisfies MembershipChange);
  }

  async #deliver<M extends Message>(from: Name, to: Name, message: M): Promise<Reply<M['type']>> {
    const endpoint = this.#endpoints.get(toHex(to));
    if (!endpoint) {
      if (this.#online.has(toHex(to))) this.#detectFailures();
      throw new SafeVaultError('unavailable', `vault ${toHex(to).slice(0, 12)} is unreachable`);
    }
    // Hop through the event loop as a real link would, so no caller relies on synchronous delivery.
    await Promise.resolve();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new SafeVaultError('unavailable', `vault ${toHex(to).slice(0, 12)} did not answer in time`)), REQUEST_TIMEOUT_MS);
    });
    try {
      return (await Promise.race([endpoint.receive(from, message), timeout])) as Reply<M['type']>;
    } finally {
      clearTimeout(timer);
    }
  }
}
