/**
 * The engine's `Network` over libp2p, between processes and machines: TCP, noise, yamux, identify,
 * ping, kad-dht (to find the vaults closest to a name) and, on a LAN, mDNS. Only codec frames cross
 * (wire/frames.ts): one stream per request on `/safevault/1/frame`, each frame length-prefixed and at
 * most MAX_FRAME_BYTES, written with back-pressure. A peer that sends garbage is logged and dropped.
 *
 * A vault's libp2p key is its Ed25519 identity, so a peer id and a vault name are one: the name is
 * the SHA-256 of the peer's public key, which noise has authenticated, so `from` cannot be forged.
 *
 * Membership comes from the network itself, each vault with its own view: a peer that speaks the
 * frame protocol (learnt by identify) joins the view; a lost connection, failed pings or a goodbye
 * (`/safevault/1/goodbye`) take it out; known vaults are redialled with backoff, so a vault that
 * comes back (a restart, a healed partition) rejoins. A client's network (`member: false`) speaks
 * to the vaults but is never in their views.
 */
import { createPrivateKey } from 'node:crypto';
import { noise } from '@chainsafe/libp2p-noise';
import { yamux } from '@chainsafe/libp2p-yamux';
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys';
import { identify, type Identify } from '@libp2p/identify';
import type { ComponentLogger, Connection, Libp2p, Logger, PeerId, PeerInfo, Stream } from '@libp2p/interface';
import { kadDHT, passthroughMapper, type KadDHT } from '@libp2p/kad-dht';
import { mdns } from '@libp2p/mdns';
import { ping, type Ping } from '@libp2p/ping';
import { tcp } from '@libp2p/tcp';
import { lpStream } from '@libp2p/utils';
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr';
import { createLibp2p } from 'libp2p';
import { isSafeVaultError, SafeVaultError, type ErrorCode } from '../../api/errors.ts';
import { sleep, systemClock, within, type Clock } from '../clock.ts';
import { REQUEST_TIMEOUT_MS } from '../constants.ts';
import type { Identity } from '../identity.ts';
import type { MessageOf, MessageType, Reply } from '../messages.ts';
import { sha256, toHex, type Name } from '../names.ts';
import { countFrame, View, type Network, type RoutingView, type WireStats } from '../transport.ts';
import { MAX_FRAME_BYTES } from '../wire/codec.ts';
import { readReply, requestFrame, serveFrame, type Receiver } from '../wire/frames.ts';

export const FRAME_PROTOCOL = '/safevault/1/frame';
export const GOODBYE_PROTOCOL = '/safevault/1/goodbye';
/** The goodbye's one frame, each way. */
const GOODBYE = new Uint8Array([1]);
/** The DHT of SafeVault vaults only, never mixed with IPFS's on a shared LAN. */
export const DHT_PROTOCOL = '/safevault/kad/1.0.0';
export const MDNS_SERVICE = 'safevault';

export type LogFn = (level: 'debug' | 'info' | 'warn' | 'error', message: string) => void;

export interface Libp2pNetworkOptions {
  /** Multiaddrs to listen on (none for a client). */
  listen?: string[];
  /** Vaults to dial first. */
  bootstrap?: string[];
  /**
   * False: start returns once listening and the bootstrap vaults are dialled in the background until
   * one answers (an app that joins stays usable while they are away). By default start waits for one.
   */
  waitForBootstrap?: boolean;
  /** LAN discovery (on by default for vaults). */
  mdns?: boolean;
  /** False for a client: it asks, never answers, and is in nobody's view. */
  member?: boolean;
  /** How often each connected vault is pinged, and how many failures in a row mark it gone. */
  pingIntervalMs?: number;
  pingFailures?: number;
  log?: LogFn;
  clock?: Clock;
}

/** Streams one peer may have open on the frame protocol at once; more is a misbehaving peer's flood. */
const MAX_STREAMS = 512;
/** Refusals that mean a sender forged something (logged; the sender gets the refusal). */
const FORGERY_CODES = new Set<ErrorCode>(['unauthorized', 'bad-signature']);
/** Redial backoff for a vault that is known but unreachable. */
const REDIAL_MIN_MS = 500;
const REDIAL_MAX_MS = 10_000;
/** A dial that takes longer is a failure (generous: a loaded machine is slow, not gone). */
const DIAL_TIMEOUT_MS = 10_000;
/** How long a starting vault keeps trying its bootstrap vaults before it gives up. */
const BOOTSTRAP_DEADLINE_MS = 60_000;
/** Each connected vault is pinged this often; one with no answer in PING_TIMEOUT_MS has failed it. */
const PING_INTERVAL_MS = 5_000;
const PING_TIMEOUT_MS = 10_000;
/** Mesh maintenance runs this often while membership moves, backing off to MAINTAIN_MAX_MS while it is quiet. */
const MAINTAIN_MIN_MS = 1_000;
const MAINTAIN_MAX_MS = 30_000;

/**
 * libp2p's own debug logging, off unless DEBUG asks for it: libp2p makes several loggers for every
 * stream (one per request here), and each checks whether stderr is a terminal, a system call: 2% of
 * the vault processes' CPU while they repaired (profiles).
 */
const quiet: Logger = Object.assign(() => undefined, { error: () => undefined, trace: () => undefined, enabled: false, newScope: () => quiet });
const quietLogger: ComponentLogger = { forComponent: () => quiet };

/** The libp2p private key of an identity: the same Ed25519 key (its 32-byte seed). */
async function libp2pKey(identity: Identity) {
  const seed = Buffer.from(createPrivateKey({ key: identity.secret, format: 'der', type: 'pkcs8' }).export({ format: 'jwk' }).d!, 'base64url');
  return generateKeyPairFromSeed('Ed25519', seed);
}

/** The vault name a peer id stands for (the SHA-256 of its Ed25519 public key), or undefined for another key type. */
export function nameOfPeer(peer: PeerId): Name | undefined {
  return peer.type === 'Ed25519' ? sha256(peer.publicKey.raw) : undefined;
}

/** A multiaddr from user input, or a one-line error saying what is wrong with it. */
export function parseMultiaddr(text: string, what: string): Multiaddr {
  let addr: Multiaddr;
  try {
    addr = multiaddr(text);
  } catch (error) {
    throw new SafeVaultError('bad-request', `${what} ${JSON.stringify(text)} is not a multiaddr (${(error as Error).message})`);
  }
  if (!addr.getComponents().some((c) => c.name === 'tcp')) throw new SafeVaultError('bad-request', `${what} ${text} has no /tcp/PORT part (SafeVault vaults speak TCP)`);
  return addr;
}

interface Known {
  peer: PeerId;
  name: Name;
  /** Redial backoff while it is unreachable. */
  nextDialAt: number;
  backoffMs: number;
  pingFailures: number;
  latencyMs?: number;
  connectedSince?: number;
}

export interface PeerStatus {
  vault: string;
  peer: string;
  addresses: string[];
  online: boolean;
  latencyMs?: number;
  connectedSince?: number;
}

type Node = Libp2p<{ identify: Identify; ping: Ping; dht: KadDHT }>;

export class Libp2pNetwork implements Network {
  readonly self: Name;
  readonly clock: Clock;
  readonly #view = new View();
  readonly #identity: Identity;
  readonly #options: Libp2pNetworkOptions;
  readonly #log: LogFn;
  readonly #member: boolean;
  /** Every vault this one has met, by name: who to redial and which peer a name is. */
  readonly #known = new Map<string, Known>();
  /** Vaults whose goodbye arrived, until their connections close: that close is graceful, and nothing identified before it brings them back. */
  readonly #leaving = new Set<string>();
  /** Peers identified as not speaking the frame protocol (clients, strangers): never in the view. */
  readonly #strangers = new Set<string>();
  readonly #stats: WireStats = { messages: 0, bytes: 0, byType: {} };
  #node?: Node;
  #receiver?: Receiver;
  #timers: (() => void)[] = [];
  /** Membership changes seen so far, dials to vaults newly found, and how long until the next mesh maintenance. */
  #changes = 0;
  #found = 0;
  #unsettled = true;
  #maintainDelay = MAINTAIN_MIN_MS;
  #stopped = false;

  constructor(identity: Identity, options: Libp2pNetworkOptions = {}) {
    this.self = identity.name;
    this.#identity = identity;
    this.#options = options;
    this.#member = options.member ?? true;
    this.clock = options.clock ?? systemClock;
    this.#log = options.log ?? (() => undefined);
  }

  get view(): RoutingView {
    return this.#view;
  }

  /** The addresses others can dial, each ending in /p2p/<peer id>. */
  addresses(): string[] {
    return this.#node?.getMultiaddrs().map(String) ?? [];
  }

  /** The peer id (the libp2p form of this vault's name). */
  peerId(): string {
    return this.#node?.peerId.toString() ?? '';
  }

  /**
   * Listens, then dials the bootstrap vaults; resolves once at least one of them answered (any
   * failure to start, such as an address in use, rejects). A vault is in its own view from here.
   */
  async start(receiver?: Receiver): Promise<void> {
    this.#receiver = receiver;
    const { listen = [], bootstrap = [] } = this.#options;
    const bootAddrs = bootstrap.map((b) => parseMultiaddr(b, 'bootstrap address'));
    for (const l of listen) parseMultiaddr(l, 'listen address');
    const node = await createLibp2p({
      // Started below, once every listener is in place: mDNS may dial the moment it runs.
      start: false,
      privateKey: await libp2pKey(this.#identity),
      ...(!process.env.DEBUG && { logger: quietLogger }),
      addresses: { listen },
      transports: [tcp()],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
      // Loopback and private addresses are where test networks and LANs live: never refused for being many.
      connectionManager: { allow: ['/ip4/127.0.0.0/ipcidr/8', '/ip4/10.0.0.0/ipcidr/8', '/ip4/192.168.0.0/ipcidr/16', '/ip4/172.16.0.0/ipcidr/12'], maxConnections: 1000 },
      // Liveness is this class's own ping loop (it also feeds latency and membership): one detector, not two.
      connectionMonitor: { enabled: false },
      peerDiscovery: this.#options.mdns ?? this.#member ? [mdns({ serviceTag: MDNS_SERVICE })] : [],
      services: {
        // Generous: an identify that times out on a busy machine would leave a connected vault out of the view until #maintain retries it.
        identify: identify({ timeout: 20_000 }),
        ping: ping(),
        dht: kadDHT({
          protocol: DHT_PROTOCOL,
          // A vault is a full DHT server (the default would wait for a public address it never gets on a LAN).
          clientMode: !this.#member,
          // Keep loopback and private addresses: removePrivateAddressesMapper would leave a LAN network empty.
          peerInfoMapper: passthroughMapper,
          allowQueryWithZeroPeers: true,
        }),
      },
    });
    this.#node = node;
    node.addEventListener('peer:identify', (event) => this.#identified(event.detail.peerId, event.detail.protocols));
    node.addEventListener('peer:disconnect', (event) => this.#disconnected(event.detail));
    node.addEventListener('peer:discovery', (event) => this.#discovered(event.detail));
    if (this.#member && receiver) {
      await node.handle(FRAME_PROTOCOL, (stream, connection) => this.#serve(stream, connection), { maxInboundStreams: MAX_STREAMS, maxOutboundStreams: MAX_STREAMS });
      await node.handle(GOODBYE_PROTOCOL, (stream, connection) => this.#goodbye(stream, connection));
    }
    await node.start();
    // Settled by the first maintenance round that finds no vault this one has not met (see #maintain).
    this.#view.unsettle();
    if (this.#member && receiver) this.#view.apply('joined', this.self, true);
    if (bootAddrs.length > 0 && this.#options.waitForBootstrap === false) {
      void this.#bootstrap(node, bootAddrs, Infinity).catch((error: Error) => this.#stopped || this.#log('warn', error.message));
    } else if (bootAddrs.length > 0) {
      await this.#bootstrap(node, bootAddrs, BOOTSTRAP_DEADLINE_MS);
    }
    this.#every(() => this.#options.pingIntervalMs ?? PING_INTERVAL_MS, () => this.#pingAll());
    this.#every(() => this.#maintainDelay, () => this.#maintain());
  }

  /**
   * Dials the bootstrap vaults until one answers: a busy machine or a vault still starting may take
   * a while, so only `patienceMs` of silence from all of them is a failure.
   */
  async #bootstrap(node: Node, addrs: Multiaddr[], patienceMs: number): Promise<void> {
    const deadline = this.clock.now() + patienceMs;
    for (let attempt = 0; ; attempt++) {
      const dialled = await Promise.allSettled(addrs.map((addr) => node.dial(addr, { signal: AbortSignal.timeout(DIAL_TIMEOUT_MS) })));
      if (dialled.some((r) => r.status === 'fulfilled')) return;
      const why = dialled.map((r, i) => `${addrs[i]}: ${((r as PromiseRejectedResult).reason as Error).message}`).join('; ');
      if (this.clock.now() > deadline || this.#stopped) {
        await this.stop(false);
        throw new SafeVaultError('unavailable', `no bootstrap vault answered (${why})`);
      }
      this.#log('warn', `no bootstrap vault answered yet, trying again (${why})`);
      await sleep(this.clock, Math.min(REDIAL_MAX_MS, REDIAL_MIN_MS * 2 ** attempt));
    }
  }

  /** Leaves: with `goodbye`, every vault in the view is told first, so they need not wait for a failure detector. */
  async stop(goodbye = true): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    for (const cancel of this.#timers) cancel();
    const node = this.#node;
    if (!node) return;
    if (goodbye && this.#member) {
      await Promise.allSettled(
        this.#view.online().filter((v) => !v.equals(this.self)).map(async (vault) => {
          const known = this.#known.get(toHex(vault));
          if (!known) return;
          const signal = AbortSignal.timeout(DIAL_TIMEOUT_MS);
          const stream = await node.dialProtocol(known.peer, GOODBYE_PROTOCOL, { signal });
          // Hung up only once the goodbye is taken in: a stream that is merely opened may still be
          // unread when the connection closes, and the hang-up would pass for a crash.
          const lp = lpStream(stream);
          await lp.write(GOODBYE, { signal });
          await lp.read({ signal });
          await stream.close();
        }),
      );
    }
    await node.stop();
  }

  /** The vaults this one knows, with what the ping loop measured (the Network view's peers). */
  peers(): PeerStatus[] {
    return [...this.#known.values()].map((k) => ({
      vault: toHex(k.name),
      peer: k.peer.toString(),
      addresses: this.#node?.getConnections(k.peer).map((c) => String(c.remoteAddr)) ?? [],
      online: this.#view.isOnline(k.name),
      ...(k.latencyMs !== undefined && { latencyMs: k.latencyMs }),
      ...(k.connectedSince !== undefined && { connectedSince: k.connectedSince }),
    }));
  }

  /** Frames this vault has sent (requests and replies) and their bytes, by message type: the benchmark's count. */
  stats(): WireStats {
    return structuredClone(this.#stats);
  }

  request<T extends MessageType>(to: Name, message: MessageOf<T>): Promise<Reply<T>> {
    const short = toHex(to).slice(0, 12);
    const known = this.#known.get(toHex(to));
    if (this.#stopped || !this.#node) return Promise.reject(new SafeVaultError('unavailable', 'this vault is stopped'));
    let frame: Buffer;
    try {
      frame = requestFrame(message);
    } catch (error) {
      return Promise.reject(error);
    }
    // A vault is often one of the vaults a message of its own goes to (a data_manager placing a copy
    // on itself): answered here, through the same codec, as the in-process hub does.
    if (to.equals(this.self) && this.#receiver) return serveFrame(this.#receiver, this.self, frame).then((reply) => readReply(message.type, reply, short));
    if (!known) return Promise.reject(new SafeVaultError('unavailable', `vault ${short} is not known to this vault`));
    const abort = new AbortController();
    const exchange = (async () => {
      let stream: Stream;
      try {
        // Not negotiated fully: the protocol's name goes with the first frame, saving a round trip per request.
        stream = await this.#node!.dialProtocol(known.peer, FRAME_PROTOCOL, { signal: abort.signal, negotiateFully: false });
      } catch (error) {
        throw new SafeVaultError('unavailable', `vault ${short} is unreachable: ${(error as Error).message}`);
      }
      const lp = lpStream(stream, { maxDataLength: MAX_FRAME_BYTES });
      let reply: Uint8Array;
      try {
        await lp.write(frame, { signal: abort.signal });
        countFrame(this.#stats, message.type, frame.length);
        reply = (await lp.read({ signal: abort.signal })).subarray();
      } catch (error) {
        stream.abort(error as Error);
        throw new SafeVaultError('unavailable', `vault ${short} did not answer: ${(error as Error).message}`);
      }
      // The answer is in: closing is the stream's own business, not something the caller waits for.
      void stream.close().catch(() => undefined);
      return readReply(message.type, reply, short);
    })();
    return within(this.clock, REQUEST_TIMEOUT_MS, exchange, () => {
      abort.abort();
      return new SafeVaultError('unavailable', `vault ${short} did not answer in time`);
    });
  }

  /** One request on one stream: read a frame, answer it. Garbage (oversize, undecodable, not a message) drops the peer. */
  async #serve(stream: Stream, connection: Connection): Promise<void> {
    const from = nameOfPeer(connection.remotePeer);
    const lp = lpStream(stream, { maxDataLength: MAX_FRAME_BYTES });
    const drop = async (why: string) => {
      this.#log('warn', `dropped peer ${connection.remotePeer.toString()} (${connection.remoteAddr.toString()}): ${why}`);
      stream.abort(new Error(why));
      await connection.close().catch(() => undefined);
    };
    if (!from) return drop('not an Ed25519 peer');
    let frame: Uint8Array;
    try {
      frame = (await lp.read({ signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) })).subarray();
    } catch (error) {
      return drop(`unreadable frame: ${(error as Error).message}`);
    }
    let malformed: unknown;
    let type = 'error';
    const receiver = this.#loggingReceiver(connection);
    const reply = await serveFrame({ receive: (sender, message) => ((type = `${message.type}:reply`), receiver.receive(sender, message)) }, from, frame, (error) => (malformed = error));
    try {
      await lp.write(reply, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
      countFrame(this.#stats, type, reply.length);
      await stream.close();
    } catch {
      stream.abort(new Error('reply not delivered'));
    }
    if (malformed) await drop((malformed as Error).message);
  }

  /** The receiver, logging what it refuses as forged (a bad signature, a sender with no right to send it). */
  #loggingReceiver(connection: Connection): Receiver {
    return {
      receive: (from, message) =>
        this.#receiver!.receive(from, message).catch((error: unknown) => {
          if (isSafeVaultError(error) && FORGERY_CODES.has(error.code)) {
            this.#log('warn', `refused ${message.type} from peer ${connection.remotePeer.toString()}: ${error.message}`);
          }
          throw error;
        }),
    };
  }

  /** A vault says goodbye: taken out of the view as a graceful leave, then acknowledged, so its hang-up that follows finds it gone already. */
  async #goodbye(stream: Stream, connection: Connection): Promise<void> {
    const name = nameOfPeer(connection.remotePeer);
    if (name && this.#view.isOnline(name)) {
      this.#log('info', `vault ${toHex(name).slice(0, 12)} said goodbye`);
      this.#leaving.add(toHex(name));
      this.#view.apply('left', name, true);
      this.#changed();
    }
    try {
      const lp = lpStream(stream);
      const signal = AbortSignal.timeout(DIAL_TIMEOUT_MS);
      await lp.read({ signal });
      await lp.write(GOODBYE, { signal });
      await stream.close();
    } catch (error) {
      stream.abort(error as Error);
    }
  }

  #identified(peer: PeerId, protocols: readonly string[]): void {
    if (protocols.includes(FRAME_PROTOCOL)) this.#joined(peer);
    else this.#strangers.add(peer.toString());
  }

  #joined(peer: PeerId): void {
    const name = nameOfPeer(peer);
    if (!name || name.equals(this.self) || this.#stopped) return;
    const hex = toHex(name);
    const known = this.#known.get(hex) ?? { peer, name, nextDialAt: 0, backoffMs: REDIAL_MIN_MS, pingFailures: 0 };
    Object.assign(known, { peer, nextDialAt: 0, backoffMs: REDIAL_MIN_MS, pingFailures: 0 });
    known.connectedSince ??= this.clock.now();
    this.#known.set(hex, known);
    // A vault that said goodbye stays gone until its connections close: a connection of the old
    // session identified late is not a return (a return comes on a new connection, after the close).
    if (this.#leaving.has(hex)) return;
    if (!this.#view.isOnline(name)) {
      this.#view.apply('joined', name, true);
      this.#changed();
      this.#log('info', `vault ${hex.slice(0, 12)} joined (${this.#view.online().length} online)`);
    }
  }

  #disconnected(peer: PeerId): void {
    const name = nameOfPeer(peer);
    if (!name) return;
    const hex = toHex(name);
    const known = this.#known.get(hex);
    if (known) delete known.connectedSince;
    const graceful = this.#leaving.delete(hex);
    if (this.#stopped || !this.#view.isOnline(name)) return;
    this.#view.apply('left', name, graceful);
    this.#changed();
    this.#log('info', `vault ${hex.slice(0, 12)} ${graceful ? 'left' : 'is gone (connection lost)'} (${this.#view.online().length} online)`);
  }

  #discovered(info: PeerInfo): void {
    const name = nameOfPeer(info.id);
    if (!name || name.equals(this.self) || this.#stopped) return;
    if (this.#node!.getConnections(info.id).length > 0) return;
    // The addresses a DHT answer carries are what to dial: without them the dialer would first look the peer up.
    if (info.multiaddrs.length > 0) void this.#node!.peerStore.merge(info.id, { multiaddrs: info.multiaddrs }).catch(() => undefined);
    this.#found++;
    void this.#dial(info.id);
  }

  async #dial(peer: PeerId): Promise<void> {
    try {
      await this.#node!.dial(peer, { signal: AbortSignal.timeout(DIAL_TIMEOUT_MS) });
    } catch {
      const known = this.#known.get(toHex(nameOfPeer(peer)!));
      if (known) {
        known.nextDialAt = this.clock.now() + known.backoffMs;
        known.backoffMs = Math.min(REDIAL_MAX_MS, known.backoffMs * 2);
      }
    }
  }

  /** Pings every connected vault; failures in a row hang up on it (which marks it gone). */
  async #pingAll(): Promise<void> {
    const node = this.#node!;
    const limit = this.#options.pingFailures ?? 3;
    await Promise.allSettled(
      [...this.#known.values()].filter((k) => node.getConnections(k.peer).length > 0).map(async (k) => {
        try {
          k.latencyMs = await node.services.ping.ping(k.peer, { signal: AbortSignal.timeout(PING_TIMEOUT_MS) });
          k.pingFailures = 0;
        } catch (error) {
          if (++k.pingFailures < limit || this.#stopped) return;
          this.#log('warn', `vault ${toHex(k.name).slice(0, 12)} failed ${k.pingFailures} pings (${(error as Error).message}): hanging up`);
          k.pingFailures = 0;
          // Aborted, not closed: a cut-off peer never answers a polite close.
          for (const connection of node.getConnections(k.peer)) connection.abort(new Error('ping failures'));
          this.#disconnected(k.peer);
        }
      }),
    );
  }

  /**
   * Keeps the mesh whole: walks the DHT towards this vault and a random name (which fills the peer
   * store with vaults further away), then dials every vault it knows and is not connected to. The
   * first round whose walks both end, meet vaults (unless this one is alone) and turn up none it
   * has not met, with no identify outstanding and no membership change, settles the view.
   */
  async #maintain(): Promise<void> {
    const node = this.#node!;
    if (this.#stopped) return;
    const [changesBefore, foundBefore] = [this.#changes, this.#found];
    let walked = true;
    let met = 0;
    for (const key of [this.self, this.clock.bytes(32)]) {
      try {
        for await (const event of node.services.dht.getClosestPeers(key, { signal: AbortSignal.timeout(DIAL_TIMEOUT_MS) })) {
          if (event.name === 'FINAL_PEER') {
            met++;
            this.#discovered(event.peer);
          }
          if (event.name === 'PEER_RESPONSE') for (const peer of event.closer) this.#discovered(peer);
        }
      } catch {
        // A walk cut short still found what it found (but does not settle the view).
        walked = false;
      }
    }
    // A connection whose identify failed (a timeout under load) is asked again: otherwise a vault
    // connected to this one would never be in its view.
    let unidentified = 0;
    for (const connection of node.getConnections()) {
      const name = nameOfPeer(connection.remotePeer);
      if (!name || this.#stopped || this.#view.isOnline(name) || this.#strangers.has(connection.remotePeer.toString())) continue;
      unidentified++;
      try {
        const result = await node.services.identify.identify(connection, { signal: AbortSignal.timeout(DIAL_TIMEOUT_MS) });
        this.#identified(result.peerId, result.protocols);
      } catch {
        // Asked again next round.
      }
    }
    const now = this.clock.now();
    for (const known of this.#known.values()) {
      if (this.#stopped) return;
      if (node.getConnections(known.peer).length === 0 && known.nextDialAt <= now) void this.#dial(known.peer);
    }
    const alone = this.#view.online().length <= 1 && (this.#options.bootstrap ?? []).length === 0;
    if (walked && (met > 0 || alone) && unidentified === 0 && this.#changes === changesBefore && this.#found === foundBefore && this.#unsettled) {
      this.#unsettled = false;
      this.#view.settle();
      this.#log('info', `view settled (${this.#view.online().length} online)`);
    }
    // A quiet network is walked less and less often; any change makes it eager again (see #changed).
    if (this.#changes === changesBefore) this.#maintainDelay = Math.min(MAINTAIN_MAX_MS, this.#maintainDelay * 2);
  }

  /**
   * Membership moved: whoever else is out there is worth looking for soon. A vault left alone (cut
   * off, or everyone else gone) has to find the network again: its view is unsettled until then.
   */
  #changed(): void {
    this.#changes++;
    this.#maintainDelay = MAINTAIN_MIN_MS;
    if (this.#view.online().length <= 1 && !this.#unsettled) {
      this.#unsettled = true;
      this.#view.unsettle();
    }
  }

  /** Runs `task` every `ms()`, never two at once (a slow round is skipped, not queued). */
  #every(ms: () => number, task: () => Promise<void>): void {
    const slot = this.#timers.length;
    let running = false;
    const tick = () => {
      if (this.#stopped) return;
      if (!running) {
        running = true;
        void task().finally(() => (running = false));
      }
      this.#timers[slot] = this.clock.after(ms(), tick);
    };
    this.#timers[slot] = this.clock.after(0, tick);
  }
}
