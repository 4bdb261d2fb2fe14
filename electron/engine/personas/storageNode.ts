/**
 * storage_node: holds chunk bytes as content-addressed files within its donated space. The hash is
 * checked on every write and every read, so it never keeps or serves a chunk that fails it.
 */
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MAX_CHUNK_SIZE } from '../constants.ts';
import { migrate, type Db } from '../db.ts';
import { fail, SafeVaultError } from '../../api/errors.ts';
import type { EventBus } from '../events.ts';
import type { MessageOf, Reply } from '../messages.ts';
import { sha256, toHex, type Name } from '../names.ts';

const migrations = [
  `CREATE TABLE sn_chunk (name BLOB PRIMARY KEY, size INTEGER NOT NULL) WITHOUT ROWID, STRICT;`,
];

export interface StorageNodeOptions {
  self: Name;
  db: Db;
  chunksDir: string;
  donated: number;
  events: EventBus;
}

/** Refuses bytes that are not the chunk they claim to be, or bigger than any chunk may be. */
export function checkChunk(name: Name, bytes: Buffer): void {
  if (bytes.length > MAX_CHUNK_SIZE) fail('too-large', `chunk is ${bytes.length} bytes; a chunk holds at most ${MAX_CHUNK_SIZE}`);
  if (!sha256(bytes).equals(name)) fail('bad-hash', `chunk bytes do not hash to ${toHex(name)}`);
}

export class StorageNode {
  readonly #opts: StorageNodeOptions;
  readonly #sql;
  #usage: { count: number; bytes: number };

  constructor(opts: StorageNodeOptions) {
    this.#opts = opts;
    migrate(opts.db, 'storage_node', migrations);
    const db = opts.db;
    this.#sql = {
      has: db.prepare<[Buffer], 1>('SELECT 1 FROM sn_chunk WHERE name = ?').pluck(),
      insert: db.prepare<[Buffer, number]>('INSERT OR IGNORE INTO sn_chunk (name, size) VALUES (?, ?)'),
      remove: db.prepare<[Buffer], number>('DELETE FROM sn_chunk WHERE name = ? RETURNING size').pluck(),
      usage: db.prepare<[], { count: number; bytes: number }>('SELECT count(*) AS count, coalesce(sum(size), 0) AS bytes FROM sn_chunk'),
    };
    this.#sweep();
    // Counted once at open and kept in step, so a put doesn't sum the whole table.
    this.#usage = this.#sql.usage.get()!;
  }

  #forget(chunk: Name): void {
    const size = this.#sql.remove.get(chunk);
    if (size !== undefined) this.#count(-1, -size);
  }

  #count(chunks: number, bytes: number): void {
    this.#usage = { count: this.#usage.count + chunks, bytes: this.#usage.bytes + bytes };
  }

  /**
   * A vault that stopped mid-write can leave a temp file, or a chunk file whose row never committed.
   * Neither was acknowledged, so both go: the disk holds exactly what the table says.
   */
  #sweep(): void {
    const root = this.#opts.chunksDir;
    for (const dir of existsSync(root) ? readdirSync(root) : []) {
      for (const file of readdirSync(join(root, dir))) {
        if (!/^[0-9a-f]{64}$/.test(file) || !this.#sql.has.get(Buffer.from(file, 'hex'))) rmSync(join(root, dir, file), { force: true });
      }
    }
  }

  get donated(): number {
    return this.#opts.donated;
  }

  /** A new donation takes effect for the next put; what is already stored stays (the caller refuses shrinking below it). */
  set donated(bytes: number) {
    this.#opts.donated = bytes;
  }

  usage(): { count: number; bytes: number } {
    return { ...this.#usage };
  }

  pathOf(chunk: Name): string {
    const hex = toHex(chunk);
    return join(this.#opts.chunksDir, hex.slice(0, 2), hex);
  }

  async onPut(msg: MessageOf<'node.put'>): Promise<Reply<'node.put'>> {
    checkChunk(msg.chunk, msg.bytes);
    if (this.#sql.has.get(msg.chunk)) return { added: false };
    const used = this.#usage.bytes;
    if (used + msg.bytes.length > this.#opts.donated) {
      fail('no-space', `vault ${toHex(this.#opts.self).slice(0, 12)} has no room for ${msg.bytes.length} more bytes`);
    }
    const path = this.pathOf(msg.chunk);
    await mkdir(join(path, '..'), { recursive: true });
    // Write then rename: a crash leaves either no file or the whole chunk, never a torn one.
    const temp = `${path}.${process.pid}.tmp`;
    await writeFile(temp, msg.bytes);
    await rename(temp, path);
    if (this.#sql.insert.run(msg.chunk, msg.bytes.length).changes) this.#count(1, msg.bytes.length);
    if (msg.copy) this.#opts.events.emit({ type: 'copy.made', chunk: toHex(msg.chunk), vault: toHex(this.#opts.self) });
    return { added: true };
  }

  async onDelete(msg: MessageOf<'node.delete'>): Promise<Reply<'node.delete'>> {
    const held = this.#sql.has.get(msg.chunk) !== undefined;
    await rm(this.pathOf(msg.chunk), { force: true });
    this.#forget(msg.chunk);
    if (held && msg.reason === 'pruned') {
      this.#opts.events.emit({ type: 'holder.pruned', chunk: toHex(msg.chunk), vault: toHex(this.#opts.self) });
    }
    return { deleted: held };
  }

  async onGet(msg: MessageOf<'node.get'>): Promise<Reply<'node.get'>> {
    if (!this.#sql.has.get(msg.chunk)) fail('not-found', `vault ${toHex(this.#opts.self).slice(0, 12)} does not hold chunk ${toHex(msg.chunk)}`);
    let bytes: Buffer;
    try {
      bytes = await readFile(this.pathOf(msg.chunk));
    } catch {
      throw new SafeVaultError('not-found', `chunk ${toHex(msg.chunk)} is missing from vault ${toHex(this.#opts.self).slice(0, 12)}'s disk`);
    }
    try {
      checkChunk(msg.chunk, bytes);
    } catch (error) {
      // Never keep a chunk that fails its hash: drop it, so the data_manager replaces this copy.
      await rm(this.pathOf(msg.chunk), { force: true });
      this.#forget(msg.chunk);
      throw error;
    }
    return { bytes };
  }
}
