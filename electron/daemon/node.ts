/**
 * `safevault node`: one vault in this process, on a real network over libp2p (engine/net/netVault.ts).
 * It prints one `ready` line with its addresses and serves until SIGTERM, when it says goodbye to
 * the vaults it knows and leaves.
 */
import { EventBus } from '../engine/events.ts';
import type { LogFn } from '../engine/net/libp2pNetwork.ts';
import { checkAddresses, startNetVault } from '../engine/net/netVault.ts';

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
  checkAddresses(listen, bootstrap, { listen: '--listen', bootstrap: '--bootstrap' });
}

export async function runNode(options: NodeOptions): Promise<void> {
  const { network, vault, leave } = await startNetVault({
    dir: options.dataDir,
    listen: options.listen,
    bootstrap: options.bootstrap,
    mdns: options.mdns,
    ...(options.donated !== undefined && { donated: options.donated }),
    events: new EventBus(),
    log: options.log,
  });
  options.print(`safevault node ready at ${network.addresses().join(' ')} (vault ${vault.id})`);
  // SIGUSR2: one line of frame counts on stderr, for the benchmark (which sums them over processes).
  const report = () => process.stderr.write(`safevault node stats ${JSON.stringify(network.stats())}\n`);
  process.on('SIGUSR2', report);
  await options.stopRequested;
  process.off('SIGUSR2', report);
  await leave();
}
