/**
 * Churn at scale on one data_manager's table (the one the layouts benchmark built): the real
 * handling of a holder leaving (find its chunks through the holder index, choose each chunk's new
 * holder among its closest candidates by rank, record it, and make the copy order), and the transfer
 * work of a vault joining (planTransfer over the affected name ranges, and the transfer frames).
 */
import { randomBytes } from 'node:crypto';
import { systemClock } from '../../electron/engine/clock.ts';
import { CANDIDATES } from '../../electron/engine/constants.ts';
import type { Db } from '../../electron/engine/db.ts';
import { KeyedLock } from '../../electron/engine/keyedLock.ts';
import { closest, compareDistance, toHex, type Name } from '../../electron/engine/names.ts';
import type { VaultContext } from '../../electron/engine/personas/context.ts';
import { DataManager } from '../../electron/engine/personas/dataManager.ts';
import { DataManagerRecords } from '../../electron/engine/personas/dataManagerRecords.ts';
import { Replicas } from '../../electron/engine/replica.ts';
import type { Network } from '../../electron/engine/transport.ts';
import { planTransfer } from '../../electron/engine/vault.ts';
import { requestFrame } from '../../electron/engine/wire/frames.ts';

export interface LeaveResult {
  lookupMs: number;
  wholeMs: number;
  chunks: number;
  copyBytes: number;
}

/** One transaction, as the data_manager does it; returns what it took. */
export function holderLeaves(db: Db, vaults: Name[], leaving: Name): LeaveResult {
  const records = new DataManagerRecords(db);
  const online = vaults.filter((v) => !v.equals(leaving));
  // Ranks as the node accounts would give them (read once and cached, as DataManager does).
  const rank = new Map(online.map((v) => [toHex(v), Math.floor(Math.random() * 100)]));
  return db.transaction(() => {
    const t0 = performance.now();
    const names = records.chunksHeldBy(leaving);
    const lookupMs = performance.now() - t0;
    let copyBytes = 0;
    const orders: Buffer[] = [];
    for (const name of names) {
      const record = records.get(name)!;
      const holders = record.holders.filter((h) => !h.equals(leaving));
      const best = closest(name, online, CANDIDATES)
        .filter((c) => !holders.some((h) => h.equals(c)))
        .sort((a, b) => rank.get(toHex(b))! - rank.get(toHex(a))! || compareDistance(name, a, b))[0]!;
      records.put(name, { ...record, version: record.version + 1, holders: [best, ...record.holders] });
      // The copy order: fetch the bytes from a surviving holder, then store them on the new one.
      orders.push(requestFrame({ type: 'node.get', chunk: name }));
      copyBytes += record.size;
    }
    return { lookupMs, wholeMs: performance.now() - t0, chunks: names.length, copyBytes };
  })();
}

export interface JoinResult {
  ms: number;
  examined: number;
  sent: number;
  frames: number;
  records: number;
}

/** A new vault joins next to the vault whose table this is: the transfer that vault works out and encodes. */
export function vaultJoins(db: Db, vaults: Name[]): JoinResult {
  const joining = randomBytes(32);
  const self = closest(joining, vaults, 1)[0]!;
  const network = { self, clock: systemClock } as unknown as Network;
  const replicas = new Replicas({ self, db, network, locks: new KeyedLock() });
  const dataManager = new DataManager({ self, db, network, clock: systemClock, replicas } as unknown as VaultContext, () => undefined);
  replicas.register(dataManager);
  const records = dataManager.count();
  const t0 = performance.now();
  const plan = planTransfer(replicas, self, { kind: 'joined', vault: joining, graceful: true, before: vaults, after: [...vaults, joining] });
  let frames = 0;
  for (const { message } of plan.sends) frames += requestFrame(message).length > 0 ? 1 : 0;
  return { ms: performance.now() - t0, examined: plan.examined, sent: plan.sent, frames, records };
}
