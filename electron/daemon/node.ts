/**
 * `safevault node`: one vault in this process, on a real network over libp2p. It listens, joins
 * through its bootstrap vaults (or starts a network), prints one `ready` line with its addresses,
 * registers its donated space with its storage_node_manager group, and serves until SIGTERM, when
 * it says goodbye to the vaults it knows and leaves.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { isSafeVaultError } from '../api/errors.ts';
import { sleep, systemClock } from '../engine/clock.ts';
import { DEFAULT_DONATED_BYTES } from '../engine/constants.ts';
import { EventBus } from '../engine/events.ts';
import { Libp2pNetwork, parseMultiaddr, type LogFn } from '../engine/net/libp2pNetwork.ts';
import { Vault } from '../engine/vault.ts';

export interface NodeOptions {
  dataDir: string;
  listen: string;
  bootstrap: string[];
  donated?: number;
  mdns: boolean;
  /** Resolves when the node should leave (SIGTERM, Ctrl-C). */
  stopRequested: Promise<void>;
  print(line: string): void;
  log: LogFn;
}

/** Checks the addresses before anything is opened, so a typo is one clear line and changes nothing. */
export function checkNodeAddresses(listen: string, bootstrap: readonly string[]): void {
  parseMultiaddr(listen, '--listen');
  for (const b of bootstrap) parseMultiaddr(b, '--bootstrap');
}

export async function runNode(options: NodeOptions): Promise<void> {
  const { dataDir, log } = options;
  const fresh = !existsSync(join(dataDir, 'vault.sqlite'));
  let network!: Libp2pNetwork;
  const vault = new Vault({
    dir: dataDir,
    events: new EventBus(),
    ...(options.donated !== undefined ? { donated: options.donated } : fresh ? { donated: DEFAULT_DONATED_BYTES } : {}),
    networkOf: (_self, identity) =>
      (network = new Libp2pNetwork(identity, { listen: [options.listen], bootstrap: options.bootstrap, mdns: options.mdns, log })),
  });
  try {
    await network.start(vault);
  } catch (error) {
    vault.close();
    throw error;
  }
  options.print(`safevault node ready at ${network.addresses().join(' ')} (vault ${vault.id})`);
  let leaving = false;
  const joined = (async () => {
    // Its group may not have formed yet (the network is still meeting): keep asking until it has.
    for (let attempt = 0; !leaving; attempt++) {
      try {
        await vault.register();
        log('info', `registered ${vault.storageNode.donated} bytes donated with this vault's managers`);
        break;
      } catch (error) {
        if (!isSafeVaultError(error) || error.code !== 'unavailable') log('warn', `registration refused: ${(error as Error).message}`);
        await sleep(systemClock, Math.min(5_000, 250 * 2 ** attempt));
      }
    }
    if (leaving) return;
    vault.startAudits();
    await vault.storageNode.sweepAll().catch(() => undefined);
  })();
  // SIGUSR2: one line of frame counts on stderr, for the benchmark (which sums them over processes).
  const report = () => process.stderr.write(`safevault node stats ${JSON.stringify(network.stats())}\n`);
  process.on('SIGUSR2', report);
  await options.stopRequested;
  process.off('SIGUSR2', report);
  leaving = true;
  log('info', 'leaving: saying goodbye');
  await network.stop(true);
  await joined.catch(() => undefined);
  vault.close();
}
