/**
 * What a data_manager record costs on a live network, beyond its row and holder index: the replica
 * layer's own rows for it (replica.ts). Chunks are stored through the whole protocol on 12 vaults
 * (virtual time, real SQLite files), then each vault's file is read with dbstat: right after, and
 * once the operations' memory (OP_MEMORY_MS) and the promises' (PROMISE_MEMORY_MS) have passed.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { StorageClient } from '../../electron/engine/client/storageClient.ts';
import { AUDIT_INTERVAL_MS, OP_MEMORY_MS, PROMISE_MEMORY_MS } from '../../electron/engine/constants.ts';
import { EventBus } from '../../electron/engine/events.ts';
import { createIdentity } from '../../electron/engine/identity.ts';
import { startVirtualNetwork } from '../sim/virtualNetwork.ts';

/** Bytes per data_manager record, by where they lie. */
export interface RecordBytes {
  records: number;
  /** rec_ops: each record's last operations and their replies (exactly-once). */
  operations: number;
  /** rec_slot: promises and accepted values of decisions, most of them left with the two witnesses. */
  slots: number;
  /** rec_tomb: deleted records. */
  tombstones: number;
}

const REPLICA_TABLES = { operations: 'rec_ops', slots: 'rec_slot', tombstones: 'rec_tomb' } as const;

/** The bytes of every vault's file, per data_manager record; a replica table's pages are shared by persona in proportion to its rows' payload. */
function measure(root: string, ids: string[]): RecordBytes {
  const sums: RecordBytes = { records: 0, operations: 0, slots: 0, tombstones: 0 };
  for (const id of ids) {
    const db = new Database(join(root, id, 'vault.sqlite'), { readonly: true });
    try {
      const pages = new Map((db.prepare('SELECT name, sum(pgsize) AS bytes FROM dbstat GROUP BY name').all() as { name: string; bytes: number }[]).map((r) => [r.name, r.bytes]));
      sums.records += db.prepare('SELECT count(*) FROM dm_chunk').pluck().get() as number;
      for (const [part, table] of Object.entries(REPLICA_TABLES) as [keyof typeof REPLICA_TABLES, string][]) {
        // Every column's length, as a share of the table's payload: the data_manager's rows' part of its pages.
        const columns = (db.prepare(`SELECT name FROM pragma_table_info('${table}')`).pluck().all() as string[]).map((c) => `coalesce(length(${c}), 0)`).join(' + ');
        const { mine, total } = db.prepare(`SELECT coalesce(sum(CASE WHEN persona = 'data_manager' THEN ${columns} END), 0) AS mine, coalesce(sum(${columns}), 0) AS total FROM ${table}`).get() as { mine: number; total: number };
        if (total > 0) sums[part] += ((pages.get(table) ?? 0) * mine) / total;
      }
    } finally {
      db.close();
    }
  }
  const per = (bytes: number) => bytes / Math.max(1, sums.records);
  return { records: sums.records, operations: per(sums.operations), slots: per(sums.slots), tombstones: per(sums.tombstones) };
}

/** Stores `chunks` small chunks on 12 vaults; the bytes per record then, and once what is remembered for a while has been forgotten. */
export async function liveRecordBytes(dir: string, chunks: number): Promise<{ fresh: RecordBytes; later: RecordBytes }> {
  const { clock, network, close } = await startVirtualNetwork(dir, 1, 12);
  try {
    const identity = createIdentity();
    const client = new StorageClient('bench', identity, network.networkOf(identity.name), new EventBus());
    // A chunk's size does not change its record: small ones keep the disk out of it.
    const puts = Array.from({ length: 8 }, async (_, lane) => {
      for (let i = lane; i < chunks; i += 8) await client.putChunk(randomBytes(4096));
    });
    await clock.drive(Promise.all(puts));
    await clock.drive(network.settled());
    const root = join(dir, 'vaults');
    const ids = network.running().map((v) => v.id);
    const fresh = measure(root, ids);
    await clock.pass(Math.max(OP_MEMORY_MS, PROMISE_MEMORY_MS) + 2 * AUDIT_INTERVAL_MS);
    return { fresh, later: measure(root, ids) };
  } finally {
    close();
  }
}
