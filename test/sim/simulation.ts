/**
 * The deterministic simulation of issue 7: a seeded scheduler over the in-process network with
 * delays, drops, duplicates, reordering and per-vault view lag, running random concurrent chunk
 * puts and deletes, file stores and removals by several owners while vaults join, leave
 * gracefully, crash and return. Afterwards every invariant is checked. `runSeed(n)` replays exactly.
 */
import { createPrivateKey } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isSafeVaultError } from '../../electron/api/errors.ts';
import { StorageClient } from '../../electron/engine/client/storageClient.ts';
import { decryptChunk, encryptChunk, planChunks, type DataMap } from '../../electron/engine/client/selfEncryption.ts';
import { AUDIT_INTERVAL_MS, OP_DEADLINE_MS, SWEEP_RECHECK_MS } from '../../electron/engine/constants.ts';
import { openDatabase } from '../../electron/engine/db.ts';
import { EventBus } from '../../electron/engine/events.ts';
import { loadIdentity, type Identity } from '../../electron/engine/identity.ts';
import { KeyedLock } from '../../electron/engine/keyedLock.ts';
import { sha256, toHex, type Name } from '../../electron/engine/names.ts';
import { LocalNetwork } from '../../electron/engine/network.ts';
import type { LinkConditions } from '../../electron/engine/transport.ts';
import { invariantFailures } from './invariants.ts';
import { VirtualClock } from './virtualClock.ts';

export interface SimOptions {
  vaults: number;
  clients: number;
  chunks: number;
  files: number;
  workers: number;
  opsPerWorker: number;
  links: LinkConditions;
  /** Mean virtual ms between churn events, and how many vaults may be away at once. */
  churnEveryMs: number;
  maxAway: number;
  /** Virtual time left for audits and sweeps once the last operation is done. */
  quietMs: number;
  /** For testing the checker: retry each put as a new operation, as a client without operation ids would after a lost reply. */
  sabotage?: 'retry-without-op-id';
}

export const DEFAULT_SIM: SimOptions = {
  vaults: 14,
  clients: 4,
  chunks: 6,
  files: 2,
  workers: 8,
  opsPerWorker: 12,
  links: { delayMs: [1, 30], loss: 0.01, duplicate: 0.01, viewLagMs: [0, 400], detectMs: 1500, timeoutMs: 3000 },
  churnEveryMs: 2500,
  maxAway: 3,
  // Long enough for every storage node to recheck every chunk it holds once (a lost sweep hint is caught then).
  quietMs: SWEEP_RECHECK_MS + 2 * AUDIT_INTERVAL_MS,
};

export interface SimResult {
  seed: number;
  failures: string[];
  ops: number;
  churn: number;
  /** Virtual ms each client operation took, for the benchmark's p50 and p99. */
  latencies: number[];
  messages: number;
  bytes: number;
  /** A digest of the final state: equal for two runs of one seed. */
  fingerprint: string;
}

const PKCS8_ED25519 = Buffer.from('302e020100300506032b657004220420', 'hex');

/** An identity drawn from the clock's generator, so a seed replays the same vault names. */
export function seededIdentity(clock: VirtualClock): Identity {
  const der = Buffer.concat([PKCS8_ED25519, clock.bytes(32)]);
  return loadIdentity(createPrivateKey({ key: der, format: 'der', type: 'pkcs8' }).export({ format: 'der', type: 'pkcs8' }));
}

interface SimFile {
  bytes: Buffer;
  map: DataMap;
  chunks: Buffer[];
}

function makeFile(clock: VirtualClock, size: number): SimFile {
  const bytes = clock.bytes(size);
  const plan = planChunks(size);
  const plains = plan.map(({ offset, length }) => bytes.subarray(offset, offset + length));
  const preHashes = plains.map((p) => sha256(p));
  const chunks = plains.map((p, i) => encryptChunk(p, i, preHashes));
  return { bytes, chunks, map: { size, chunks: chunks.map((c, i) => ({ name: sha256(c), preHash: preHashes[i]!, size: plains[i]!.length })) } };
}

export async function runSeed(seed: number, options: SimOptions = DEFAULT_SIM): Promise<SimResult> {
  const clock = new VirtualClock(seed);
  const dir = mkdtempSync(join(tmpdir(), `safevault-sim-${seed}-`));
  const appDb = openDatabase(join(dir, 'app.sqlite'));
  const network = new LocalNetwork(join(dir, 'vaults'), appDb, new EventBus(), { clock, links: options.links, newIdentity: () => seededIdentity(clock) });
  const failures: string[] = [];
  const latencies: number[] = [];
  let ops = 0;
  let churnEvents = 0;
  try {
    await clock.drive(network.start(options.vaults));
    const clients = Array.from({ length: options.clients }, (_, i) => {
      const identity = seededIdentity(clock);
      return new StorageClient(`c${i}`, identity, network.networkOf(identity.name), new EventBus());
    });
    const chunks = Array.from({ length: options.chunks }, () => clock.bytes(500 + Math.floor(clock.random() * 3000)));
    const files = Array.from({ length: options.files }, () => makeFile(clock, 3000 + Math.floor(clock.random() * 6000)));
    // Each client's reference count per chunk as its answered operations add up (what it was told, when its
    // operations on a chunk do not overlap), and which files it holds.
    const told = clients.map(() => new Map<string, number>());
    const holdsFile = clients.map(() => new Set<number>());
    const locks = new KeyedLock();
    // One client's operations on one chunk run at once (two workers, or a file and a chunk): those that overlap are marked.
    const active = new Map<string, Set<{ overlapped: boolean }>>();
    const tracked = async <T>(key: string, work: (op: { overlapped: boolean }) => Promise<T>): Promise<T> => {
      const op = { overlapped: false };
      const others = active.get(key) ?? new Set();
      active.set(key, others.add(op));
      if (others.size > 1) for (const other of others) other.overlapped = true;
      try {
        return await work(op);
      } finally {
        others.delete(op);
      }
    };

    const timed = async <T>(what: string, work: () => Promise<T>): Promise<T | undefined> => {
      const started = clock.now();
      try {
        return await work();
      } catch (error) {
        failures.push(`${what} failed after ${clock.now() - started} ms: ${(error as Error).message}`);
        return undefined;
      } finally {
        ops++;
        latencies.push(clock.now() - started);
        if (clock.now() - started > OP_DEADLINE_MS + 30_000) failures.push(`${what} waited ${clock.now() - started} ms, past its deadline`);
      }
    };

    /** Adds an answered operation to the client's count; one that ran alone must have been told exactly that count. */
    const count = (ci: number, hex: string, step: number, reply: number, op: { overlapped: boolean }, what: string) => {
      const counted = (told[ci]!.get(hex) ?? 0) + step;
      told[ci]!.set(hex, counted);
      if (!op.overlapped && reply !== counted) failures.push(`${what}: told refcount ${reply}, its operations add up to ${counted}`);
    };

    const putChunk = (ci: number, bytes: Buffer, what: string) =>
      timed(what, () =>
        tracked(`${ci}:${toHex(sha256(bytes))}`, async (op) => {
          const reply = await clients[ci]!.putChunk(bytes);
          count(ci, toHex(reply.name), 1, reply.refcount, op, what);
          if (options.sabotage === 'retry-without-op-id') {
            const again = await clients[ci]!.putChunk(bytes);
            count(ci, toHex(again.name), 0, again.refcount, op, what);
          }
        }),
      );

    const deleteChunk = (ci: number, name: Name, what: string) =>
      timed(what, () =>
        tracked(`${ci}:${toHex(name)}`, async (op) => {
          const hex = toHex(name);
          try {
            const reply = await clients[ci]!.deleteChunk(name);
            count(ci, hex, -1, reply.refcount, op, what);
          } catch (error) {
            if (!isSafeVaultError(error) || error.code !== 'non-owner') throw error;
            if (!op.overlapped && (told[ci]!.get(hex) ?? 0) > 0) failures.push(`${what}: refused as non-owner although told refcount ${told[ci]!.get(hex)}`);
          }
        }),
      );

    const operate = async (worker: number) => {
      for (let i = 0; i < options.opsPerWorker; i++) {
        const ci = Math.floor(clock.random() * clients.length);
        const roll = clock.random();
        if (roll < 0.8) {
          const ki = Math.floor(clock.random() * chunks.length);
          const name = sha256(chunks[ki]!);
          await (roll < 0.45 ? putChunk(ci, chunks[ki]!, `w${worker}: c${ci} put chunk ${ki}`) : deleteChunk(ci, name, `w${worker}: c${ci} delete chunk ${ki}`));
        } else {
          const fi = Math.floor(clock.random() * files.length);
          await locks.run(`${ci}:file${fi}`, async () => {
            const file = files[fi]!;
            const store = !holdsFile[ci]!.has(fi);
            for (const [j, chunk] of file.chunks.entries()) {
              await (store ? putChunk(ci, chunk, `w${worker}: c${ci} store file ${fi} chunk ${j}`) : deleteChunk(ci, sha256(chunk), `w${worker}: c${ci} remove file ${fi} chunk ${j}`));
            }
            if (store) holdsFile[ci]!.add(fi);
            else holdsFile[ci]!.delete(fi);
          });
        }
        await sleepFor(clock, Math.floor(clock.random() * 500));
      }
    };

    let working = true;
    const away: string[] = [];
    const churn = async () => {
      while (working) {
        await sleepFor(clock, Math.floor(options.churnEveryMs * (0.5 + clock.random())));
        if (!working) break;
        const running = network.running();
        const roll = clock.random();
        churnEvents++;
        if (away.length > 0 && (roll < 0.4 || away.length >= options.maxAway)) {
          await network.startVault(away.splice(Math.floor(clock.random() * away.length), 1)[0]!);
        } else if (roll < 0.5 && network.running().length < options.vaults + 4) {
          await network.add();
        } else if (running.length > options.vaults - options.maxAway) {
          const { id } = running[Math.floor(clock.random() * running.length)]!;
          away.push(id);
          await (clock.random() < 0.5 ? network.stopVault(id) : network.killVault(id));
        }
      }
    };

    const churning = churn();
    await clock.drive(Promise.all(Array.from({ length: options.workers }, (_, w) => operate(w))));
    working = false;
    await clock.drive(churning);
    // Some vaults come back, some stay away; then the network is left alone to audit and sweep.
    for (const id of away.splice(0, Math.ceil(away.length / 2))) await clock.drive(network.startVault(id));
    await clock.pass(options.quietMs);

    const labels = new Map<string, string>();
    chunks.forEach((c, i) => labels.set(toHex(sha256(c)), `chunk ${i}`));
    files.forEach((f, i) => f.chunks.forEach((c, j) => labels.set(toHex(sha256(c)), `file ${i} chunk ${j}`)));
    const held = files.flatMap((file, fi) => (holdsFile.some((h) => h.has(fi)) ? [{ file, fi }] : []));
    const readBack = async (file: SimFile) => {
      const plain = await Promise.all(file.chunks.map(async (c, i) => decryptChunk(await clients[0]!.getChunk(sha256(c)), i, file.map)));
      return Buffer.concat(plain).equals(file.bytes);
    };
    const running = network.running().map((v) => ({ id: v.id, name: v.name, holds: (chunk: Name) => existsSync(v.storageNode.pathOf(chunk)), usage: () => v.storageNode.usage() }));
    failures.push(
      ...(await clock.drive(
        invariantFailures({
          running,
          isOnline: (vault) => network.hub.isOnline(vault),
          clients,
          told,
          chunks: labels,
          files: held.map(({ file, fi }) => ({ label: `file ${fi}`, readBack: () => readBack(file) })),
          network: network.networkOf(clients[0]!.identity.name),
        }),
      )),
    );
    const fingerprint = toHex(sha256(Buffer.from(JSON.stringify({ failures, told: told.map((t) => [...t].sort()), steps: clock.steps }))));
    const stats = network.hub.stats();
    return { seed, failures, ops, churn: churnEvents, latencies, messages: stats.messages, bytes: stats.bytes, fingerprint };
  } finally {
    network.close();
    appDb.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const sleepFor = (clock: VirtualClock, ms: number) => new Promise<void>((resolve) => clock.after(ms, resolve));
