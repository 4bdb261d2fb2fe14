/**
 * Files on their way into the network: checked first (bad input changes nothing), then uploaded and
 * stored, with chunks stored of total and bytes/s from the engine's progress events; cancellable.
 */
import { defineStore } from 'pinia';
import { computed, ref } from 'vue';
import { fileName } from '../../../electron/api/contract.ts';
import type { RecordedEvent } from '../../../electron/api/events.ts';
import { newOperationId } from '../api/client.ts';
import { errorMessage } from '../api/errors.ts';
import { api } from '../api/index.ts';
import { useAccounts } from './accounts.ts';
import { useConnection } from './connection.ts';
import { useFiles } from './files.ts';
import { useNotices } from './notices.ts';

export interface Transfer {
  op: string;
  name: string;
  size: number;
  /** Bytes handed to the host so far. */
  sent: number;
  /** Bytes the engine has stored as chunks so far (its progress events). */
  stored: number;
  /** Chunks stored so far: the engine reports once per chunk. */
  chunks: number;
  startedAt: number;
  bytesPerSecond: number;
  state: 'sending' | 'storing' | 'stored' | 'failed' | 'cancelled';
  message?: string;
}

/** A dropped item the browser could tell us about: a folder shows up as an entry, or as a typeless empty File. */
export interface Dropped {
  file: File | null;
  isDirectory?: boolean;
}

/** Why a dropped item cannot be stored, or null when it can. */
export function refusal(item: Dropped): string | null {
  const { file } = item;
  if (!file || item.isDirectory) return `${file?.name ?? 'That item'} is a folder: drop the files inside it instead`;
  if (file.size === 0 && file.type === '') {
    return `${file.name} is empty or a folder: there is nothing to store`;
  }
  if (file.size === 0) return `${file.name} is empty: there is nothing to store`;
  const name = fileName.safeParse(file.name);
  if (!name.success) return `${JSON.stringify(file.name)} cannot be stored: ${name.error.issues[0]!.message}`;
  return null;
}

export const useTransfers = defineStore('transfers', () => {
  const accounts = useAccounts();
  const connection = useConnection();
  const files = useFiles();
  const notices = useNotices();
  const list = ref<Transfer[]>([]);

  const update = (op: string, change: Partial<Transfer>) => {
    list.value = list.value.map((t) => (t.op === op ? { ...t, ...change } : t));
  };
  const find = (op: string) => list.value.find((t) => t.op === op);

  async function storeOne(file: File) {
    const op = newOperationId();
    const as = accounts.current;
    const startedAt = performance.now();
    list.value = [...list.value, { op, name: file.name, size: file.size, sent: 0, stored: 0, chunks: 0, startedAt: Date.now(), bytesPerSecond: 0, state: 'sending' }];
    try {
      const stored = await api().storeFile(file, { as, op }, (sent) => {
        const seconds = (performance.now() - startedAt) / 1000;
        update(op, { sent, bytesPerSecond: seconds > 0 ? sent / seconds : 0, state: sent >= file.size ? 'storing' : 'sending' });
      });
      update(op, { state: 'stored', sent: file.size, stored: file.size, chunks: stored.chunks.length });
      if (as === accounts.current) files.added(stored);
      notices.info(`${file.name} stored`);
    } catch (e) {
      if (find(op)?.state === 'cancelled') return;
      update(op, { state: 'failed', message: errorMessage(e) });
      notices.error(`${file.name}: ${errorMessage(e)}`);
    }
  }

  /** Checks every item first; only what passes is stored. */
  function store(items: Dropped[]) {
    if (!connection.connected) {
      notices.error('Not connected to the vault engine: nothing was stored. Try again once it is back.');
      return;
    }
    for (const item of items) {
      const why = refusal(item);
      if (why) notices.error(why);
      else void storeOne(item.file!);
    }
  }

  async function cancel(op: string) {
    update(op, { state: 'cancelled', message: 'cancelled' });
    try {
      await api().cancel({ op });
    } catch (e) {
      notices.error(`Cancel: ${errorMessage(e)}`);
    }
  }

  function onEvent(event: RecordedEvent) {
    if (event.type !== 'file.progress' || event.direction !== 'store' || !event.op) return;
    const transfer = find(event.op);
    if (!transfer || transfer.state === 'cancelled') return;
    if (transfer.state === 'stored') return;
    update(event.op, { stored: event.done, chunks: transfer.chunks + 1, state: 'storing' });
  }

  const clearFinished = () => (list.value = list.value.filter((t) => t.state === 'sending' || t.state === 'storing'));
  const inFlight = computed(() => list.value.filter((t) => t.state === 'sending' || t.state === 'storing').length);

  return { list, inFlight, store, cancel, onEvent, clearFinished };
});
