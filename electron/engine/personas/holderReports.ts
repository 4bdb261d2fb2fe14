/**
 * A data_manager's reports of a holder pruned or lost, to that node's storage_node_manager group:
 * queued in the vault's database and sent until the group acknowledges them, as a node queues its
 * own reports (storageNode.ts). Each carries an operation id derived from the change, so a resend
 * counts once.
 */
import { isSafeVaultError } from '../../api/errors.ts';
import { migrate } from '../db.ts';
import type { NodeChange } from '../messages.ts';
import { toHex, type Name } from '../names.ts';
import type { VaultContext } from './context.ts';

const migrations = [
  `CREATE TABLE dm_report (op BLOB PRIMARY KEY, node BLOB NOT NULL, chunk BLOB NOT NULL, size INTEGER NOT NULL, change TEXT NOT NULL) WITHOUT ROWID, STRICT;`,
];

/** How long one attempt keeps asking the node's managers; a report not delivered by then waits for the next resend. */
const ATTEMPT_MS = 10_000;

interface HolderReport {
  op: Buffer;
  node: Name;
  chunk: Name;
  size: number;
  change: NodeChange;
}

export class HolderReports {
  readonly #ctx: VaultContext;
  readonly #sql;
  /** Reports on their way, by operation id: a resend does not send one twice at once. */
  readonly #sending = new Map<string, Promise<void>>();

  constructor(ctx: VaultContext) {
    this.#ctx = ctx;
    migrate(ctx.db, 'dm_report', migrations);
    this.#sql = {
      queue: ctx.db.prepare<[Buffer, Buffer, Buffer, number, string]>('INSERT OR IGNORE INTO dm_report (op, node, chunk, size, change) VALUES (?, ?, ?, ?, ?)'),
      all: ctx.db.prepare<[], HolderReport>('SELECT op, node, chunk, size, change FROM dm_report'),
      done: ctx.db.prepare<[Buffer]>('DELETE FROM dm_report WHERE op = ?'),
    };
  }

  /** Queues a report and makes a first attempt, waited for so a settled network has its ranks up to date. */
  send(report: HolderReport): Promise<void> {
    this.#sql.queue.run(report.op, report.node, report.chunk, report.size, report.change);
    return this.#deliver(report);
  }

  /** Sends every report still queued (a failed attempt, or one from before a restart), one after another. */
  async resend(): Promise<void> {
    for (const report of this.#sql.all.all()) {
      if (!this.#ctx.db.open) return;
      await this.#deliver(report);
    }
  }

  #deliver(report: HolderReport): Promise<void> {
    const id = toHex(report.op);
    let sending = this.#sending.get(id);
    if (!sending) {
      sending = this.#attempt(report).finally(() => this.#sending.delete(id));
      this.#sending.set(id, sending);
    }
    return sending;
  }

  async #attempt({ op, node, chunk, size, change }: HolderReport): Promise<void> {
    const finished = await this.#ctx.groups.askMember(node, { type: 'snm.report', op, node, changes: [{ chunk, size, change }] }, { exclude: node, deadlineMs: ATTEMPT_MS }).then(
      () => true,
      // A refusal is final (this vault no longer manages the chunk, say); only an unreachable group is tried again.
      (error: unknown) => !isSafeVaultError(error) || error.code !== 'unavailable',
    );
    // A vault stopped meanwhile keeps the report queued for when it returns.
    if (finished && this.#ctx.db.open) this.#sql.done.run(op);
  }
}
