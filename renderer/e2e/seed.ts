/**
 * A very long list, quickly and for real: `count` real files on disk with the same bytes, each stored
 * by a real putFile over the daemon's WebSocket, many in flight at once. Equal bytes make every store
 * after the first a deduplicated one (the chunks gain a reference, no new copies), which is what keeps
 * 10,000 stores to a couple of minutes on a laptop instead of ten.
 */
import { writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import WebSocket from 'ws';
import { WS_PATH } from '../../electron/api/contract.ts';
import type { Daemon } from './harness.ts';

const IN_FLIGHT = 64;

export async function seedFiles(daemon: Daemon, as: string, count: number, scratch: string): Promise<void> {
  const dir = join(scratch, as);
  await mkdir(dir, { recursive: true });
  const socket = new WebSocket(`${daemon.url.replace(/^http/, 'ws')}${WS_PATH}?token=${daemon.token}`);
  await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));
  const waiting = new Map<number, { resolve(result: unknown): void; reject(error: Error): void }>();
  socket.on('message', (data) => {
    const message = JSON.parse(String(data)) as { id?: number; result?: unknown; error?: { message: string } };
    const call = message.id === undefined ? undefined : waiting.get(message.id);
    if (!call) return;
    waiting.delete(message.id!);
    if (message.error) call.reject(new Error(message.error.message));
    else call.resolve(message.result);
  });
  let nextId = 0;
  const call = (method: string, params: unknown) =>
    new Promise((resolve, reject) => {
      const id = nextId++;
      waiting.set(id, { resolve, reject });
      socket.send(JSON.stringify({ id, method, params }));
    });

  await call('createClient', { label: as });
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < count; i = next++) {
      const path = join(dir, `${as}-${String(i).padStart(5, '0')}.txt`);
      await writeFile(path, 'one of many equal files\n');
      await call('putFile', { as, path });
    }
  };
  try {
    await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
  } finally {
    socket.close();
  }
}
