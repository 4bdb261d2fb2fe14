/**
 * Many small real files stored through the daemon's API, concurrently: a realistic and quick way to
 * give one identity a very long list (each is a real putFile of a real file on disk).
 */
import { writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Daemon } from './harness.ts';

const CONCURRENCY = 16;

async function call(daemon: Daemon, method: string, params: unknown): Promise<unknown> {
  const response = await fetch(`${daemon.url}/api/${method}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${daemon.token}`, 'content-type': 'application/json' },
    body: JSON.stringify(params),
  });
  const body = await response.json();
  if (!response.ok) throw new Error(`${method}: ${JSON.stringify(body)}`);
  return body;
}

export async function seedFiles(daemon: Daemon, as: string, count: number, scratch: string): Promise<void> {
  const dir = join(scratch, as);
  await mkdir(dir, { recursive: true });
  await call(daemon, 'createClient', { label: as });
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < count; i = next++) {
      const name = `${as}-${String(i).padStart(5, '0')}.txt`;
      const path = join(dir, name);
      await writeFile(path, `file ${i} of ${count}\n`);
      await call(daemon, 'putFile', { as, path });
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
}
