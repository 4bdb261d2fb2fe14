/**
 * One vault on a real network over libp2p: opened from its data dir, listening, joined through its
 * bootstrap vaults (or starting a network), registered with its storage_node_manager group once that
 * group has formed, auditing. Both `safevault node` and an app that joins a network run it.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { isSafeVaultError } from '../../api/errors.ts';
import { sleep, systemClock } from '../clock.ts';
import { DEFAULT_DONATED_BYTES } from '../constants.ts';
import type { EventBus } from '../events.ts';
import { Vault } from '../vault.ts';
import { Libp2pNetwork, parseMultiaddr, type LogFn } from './libp2pNetwork.ts';

export interface NetVaultOptions {
  dir: string;
  listen: string;
  bootstrap: readonly string[];
  mdns: boolean;
  /** Donated bytes; a new vault without it donates the default. */
  donated?: number;
  events: EventBus;
  log: LogFn;
  /** See Libp2pNetworkOptions.waitForBootstrap. */
  waitForBootstrap?: boolean;
}

export interface NetVault {
  readonly vault: Vault;
  readonly network: Libp2pNetwork;
  /** Says goodbye to the vaults it knows, stops listening and closes the vault. */
  leave(): Promise<void>;
}

/** Checks the addresses (a listen address if given) before anything is opened, so a typo is one clear line and changes nothing. */
export function checkAddresses(listen: string | undefined, bootstrap: readonly string[], what = { listen: 'listen address', bootstrap: 'bootstrap address' }): void {
  if (listen !== undefined) parseMultiaddr(listen, what.listen);
  for (const b of bootstrap) parseMultiaddr(b, what.bootstrap);
}

/** The donation to open a vault with: the one given, else the default for a new vault, else what it has. */
export function donationFor(dir: string, donated?: number): { donated?: number } {
  if (donated !== undefined) return { donated };
  return existsSync(join(dir, 'vault.sqlite')) ? {} : { donated: DEFAULT_DONATED_BYTES };
}

export async function startNetVault(options: NetVaultOptions): Promise<NetVault> {
  const { dir, log } = options;
  let network!: Libp2pNetwork;
  const vault = new Vault({
    dir,
    events: options.events,
    ...donationFor(dir, options.donated),
    networkOf: (_self, identity) =>
      (network = new Libp2pNetwork(identity, {
        listen: [options.listen],
        bootstrap: [...options.bootstrap],
        mdns: options.mdns,
        log,
        ...(options.waitForBootstrap !== undefined && { waitForBootstrap: options.waitForBootstrap }),
      })),
  });
  try {
    await network.start(vault);
  } catch (error) {
    vault.close();
    throw error;
  }
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
    // Not part of joining: leaving must not wait for a check of every chunk (it waits for a settled
    // view, which a vault that has stopped listening never gets). Once closed, the check just ends.
    void vault.storageNode.sweepAll().catch(() => undefined);
  })();
  return {
    vault,
    network,
    async leave() {
      leaving = true;
      log('info', 'leaving: saying goodbye');
      await network.stop(true);
      await joined.catch(() => undefined);
      vault.close();
    },
  };
}
