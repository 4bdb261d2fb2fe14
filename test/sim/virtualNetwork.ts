/** A local network on virtual time with clean links, for tests and the bench that drive the protocol step by step. */
import { join } from 'node:path';
import { openDatabase } from '../../electron/engine/db.ts';
import { EventBus } from '../../electron/engine/events.ts';
import { LocalNetwork } from '../../electron/engine/network.ts';
import { VirtualClock } from './virtualClock.ts';

/** `vaults` started under `dir` on a seeded virtual clock, links of 1–20 ms with no loss, duplication or lagging views. */
export async function startVirtualNetwork(dir: string, seed: number, vaults: number, timeoutMs = 2000) {
  const clock = new VirtualClock(seed);
  const db = openDatabase(join(dir, 'app.sqlite'));
  const network = new LocalNetwork(join(dir, 'vaults'), db, new EventBus(), {
    clock,
    links: { delayMs: [1, 20], loss: 0, duplicate: 0, viewLagMs: [0, 0], detectMs: 100, timeoutMs },
  });
  await clock.drive(network.start(vaults));
  return { clock, network, dir, close: () => (network.close(), db.close()) };
}
