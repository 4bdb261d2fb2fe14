/**
 * The exactly-once invariants, checked after a run: of the simulation (vaults in one process) and of
 * the network tests (vault processes over libp2p). Each owner's reference count is what it was last
 * told; subscribers equal the owners; every live chunk has at least MIN_HOLDERS online holders, each
 * with the bytes, and at most MAX_HOLDERS listed; no other vault keeps its bytes, and no chunk
 * without owners has bytes on any disk; every node's account, as its manager group agrees on it,
 * matches its disk; every file still held comes back byte-identical.
 */
import { MAX_HOLDERS, MIN_HOLDERS } from '../../electron/engine/constants.ts';
import type { StorageClient } from '../../electron/engine/client/storageClient.ts';
import { Groups } from '../../electron/engine/group.ts';
import { toHex, type Name } from '../../electron/engine/names.ts';
import type { Network } from '../../electron/engine/transport.ts';

/** A running vault as the checker sees it: its name and its disk. */
export interface VaultOnDisk {
  id: string;
  name: Name;
  holds(chunk: Name): boolean;
  usage(): { count: number; bytes: number };
}

export interface RunOutcome {
  running: VaultOnDisk[];
  isOnline(vault: Name): boolean;
  /** The clients, and for each the reference count (by chunk hex) it was last told. */
  clients: StorageClient[];
  told: Map<string, number>[];
  /** Every chunk the run touched, by hex, with a label for the failure messages. */
  chunks: Map<string, string>;
  /** The files some client still holds: each read back, resolving true when byte-identical. */
  files: { label: string; readBack(): Promise<boolean> }[];
  /** Where manager groups are read from. */
  network: Network;
}

/** Every invariant that does not hold, one line each (none: the run was exact). */
export async function invariantFailures(run: RunOutcome): Promise<string[]> {
  const failures: string[] = [];
  const observer = run.clients[0]!;
  for (const [hex, label] of run.chunks) {
    const name = Buffer.from(hex, 'hex');
    let owners = 0;
    for (const [ci, client] of run.clients.entries()) {
      const refcount = await client.refcount(name).catch((e: Error) => e);
      const expected = run.told[ci]!.get(hex) ?? 0;
      if (refcount !== expected) failures.push(`${label}: c${ci} was told refcount ${expected}, the network says ${refcount instanceof Error ? refcount.message : refcount}`);
      if (typeof refcount === 'number' && refcount > 0) owners++;
    }
    const record = await observer.info(name).catch((e: Error) => e);
    if (record instanceof Error) {
      failures.push(`${label}: record unreadable: ${record.message}`);
      continue;
    }
    const onDisk = run.running.filter((v) => v.holds(name)).map((v) => v.id);
    if (!record) {
      if (owners > 0) failures.push(`${label}: ${owners} owners but no record`);
      if (onDisk.length > 0) failures.push(`${label}: no owners, bytes on ${onDisk.length} disks`);
      continue;
    }
    if (record.subscribers !== owners) failures.push(`${label}: ${record.subscribers} subscribers, ${owners} owners`);
    const online = record.holders.filter((h) => run.isOnline(h)).map(toHex);
    if (online.length < MIN_HOLDERS) failures.push(`${label}: ${online.length} online holders`);
    if (record.holders.length > MAX_HOLDERS) failures.push(`${label}: ${record.holders.length} holders listed`);
    for (const holder of online) if (!onDisk.includes(holder)) failures.push(`${label}: listed holder ${holder.slice(0, 8)} has no bytes`);
    for (const vault of onDisk) if (!online.includes(vault)) failures.push(`${label}: vault ${vault.slice(0, 8)} keeps bytes it is not listed for`);
  }
  const groups = new Groups(run.network);
  for (const vault of run.running) {
    const node = vault.name;
    const { account } = await groups.read(node, { type: 'snm.account', node }, node).catch(() => ({ account: null }));
    const disk = vault.usage();
    const counted = account ? { count: account.storedCount, bytes: account.storedBytes } : { count: 0, bytes: 0 };
    if (counted.count !== disk.count || counted.bytes !== disk.bytes) {
      failures.push(`vault ${vault.id.slice(0, 8)}: account says ${counted.count} chunks, ${counted.bytes} bytes; disk holds ${disk.count}, ${disk.bytes}`);
    }
  }
  for (const file of run.files) {
    const same = await file.readBack().catch((error: Error) => error);
    if (same instanceof Error) failures.push(`${file.label} could not be read back: ${same.message}`);
    else if (!same) failures.push(`${file.label} came back different`);
  }
  return failures;
}
