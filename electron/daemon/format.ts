/** The CLI's one place for output: each API result as raw JSON (--json) or as short human lines and tables. */
import type { Method, Results, VaultInfo } from '../api/contract.ts';

export function render<M extends Method>(method: M, result: Results[M], json: boolean): string {
  // Events are a stream, so they are JSON lines either way (what `events --follow` then continues with).
  if (method === 'events') return (result as Results['events']).map((event) => JSON.stringify(event)).join('\n');
  return json ? JSON.stringify(result) : human[method](result);
}

const human: { [M in Method]: (result: Results[M]) => string } = {
  putFile: (f) => `stored ${f.name} (${bytes(f.size)} in ${f.chunks.length} chunks) as file ${f.id}`,
  getFile: (r) => `wrote ${bytes(r.size)} to ${r.path}`,
  removeFile: (r) => {
    const deleted = r.chunks.filter((c) => c.deleted).length;
    return `removed file ${r.id}: released ${r.chunks.length} chunks, ${deleted} deleted from the network`;
  },
  listFiles: (files) =>
    files.length === 0
      ? 'no files'
      : table(['ID', 'NAME', 'SIZE', 'CHUNKS', 'STORED'], files.map((f) => [f.id, f.name, bytes(f.size), f.chunks.length, time(f.storedAt)])),
  putChunk: (r) => `${r.name}  refcount ${r.refcount}  subscribers ${r.subscribers}`,
  removeChunk: (r) => `refcount ${r.refcount}  subscribers ${r.subscribers}  ${r.deleted ? 'deleted from the network' : 'still stored'}`,
  chunkInfo: (c) =>
    [
      `chunk ${c.name}  ${bytes(c.size)}  subscribers ${c.subscribers}  refcount ${c.refcount}`,
      table(['VAULT', 'ONLINE', 'RANK'], c.holders.map((h) => [short(h.vault), yes(h.online), h.rank])),
    ].join('\n'),
  listVaults: (vaults) => vaultTable(vaults),
  addVault: (v) => vaultTable([v]),
  stopVault: (v) => vaultTable([v]),
  startVault: (v) => vaultTable([v]),
  killVault: (v) => vaultTable([v]),
  events: () => '', // rendered above
  status: (s) =>
    [
      `data dir ${s.dataDir}`,
      `vaults ${s.online} online of ${s.vaults}${s.paused ? ' (your vault is paused)' : ''}`,
      `space ${bytes(s.used)} used of ${bytes(s.donated)} donated`,
      `clients ${s.clients.length ? s.clients.join(', ') : 'none'}`,
      `operations in flight ${s.opsInFlight}`,
    ].join('\n'),
  cancel: (r) => (r.cancelled ? 'cancelled' : 'no such operation in flight'),
  fileHealth: (files) =>
    table(['ID', 'CHUNKS', 'MIN ONLINE HOLDERS', 'UNDER-REPLICATED'], files.map((f) => [f.id, f.chunks, f.minOnlineHolders, f.underReplicated])),
  listClients: (clients) =>
    clients.length === 0 ? 'no clients' : table(['CLIENT', 'NAME', 'FILES', 'CREATED'], clients.map((c) => [c.label, short(c.name), c.files, time(c.createdAt)])),
  createClient: (c) => `created client ${c.label} (${short(c.name)})`,
  myVault: (v) =>
    [
      vaultTable([v]),
      `online since ${v.startedAt === null ? '-' : time(v.startedAt)}`,
      `records: client manager ${v.records.storageClientManager}, data manager ${v.records.dataManager}, ` +
        `node manager ${v.records.storageNodeManager}, chunks ${v.records.storageNode}`,
    ].join('\n'),
  setPaused: (s) => (s.paused ? 'your vault is paused (offline)' : 'your vault is vaulting'),
  getSettings: (s) => JSON.stringify(s, null, 2),
  setSettings: (s) => JSON.stringify(s, null, 2),
  timeSeries: (samples) =>
    table(
      ['AT', 'ONLINE', 'UNDER-REPLICATED', 'USED', 'DONATED', 'CHUNKS', 'OPS/S'],
      samples.map((s) => [time(s.at), s.vaultsOnline, s.underReplicated, bytes(s.used), bytes(s.donated), s.chunksHeld, s.opsPerSecond.toFixed(2)]),
    ),
  peers: (p) =>
    p.mode === 'local'
      ? 'a local network: no peers (set mode "network" to join one)'
      : [
          p.problem ? `not on the network: ${p.problem}` : `listening on ${p.addresses.join(' ')}`,
          table(
            ['VAULT', 'ONLINE', 'ADDRESS', 'LATENCY', 'CONNECTED SINCE'],
            p.peers.map((peer) => [short(peer.vault), yes(peer.online), peer.addresses[0] ?? '-', peer.latencyMs === undefined ? '-' : `${peer.latencyMs} ms`, peer.connectedSince === undefined ? '-' : time(peer.connectedSince)]),
          ),
        ].join('\n'),
  logs: (lines) => lines.map((l) => `${time(l.at)} ${l.level.padEnd(5)} ${l.message}`).join('\n'),
};

const vaultTable = (vaults: VaultInfo[]) =>
  table(
    ['VAULT', 'ONLINE', 'DONATED', 'USED', 'CHUNKS', 'RANK'],
    vaults.map((v) => [short(v.id), yes(v.online), bytes(v.donated), bytes(v.used), v.chunks, v.rank]),
  );

function table(headers: string[], rows: (string | number)[][]): string {
  const cells = [headers, ...rows.map((row) => row.map(String))];
  const widths = headers.map((_, i) => Math.max(...cells.map((row) => row[i]!.length)));
  return cells.map((row) => row.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n');
}

/** Vault ids are long; 12 hex digits are plenty to tell them apart and are accepted as a prefix. */
const short = (id: string) => id.slice(0, 12);
const yes = (b: boolean) => (b ? 'yes' : 'no');
const time = (ms: number) => new Date(ms).toISOString().replace('T', ' ').slice(0, 19);

export function bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let i = 0;
  for (; n >= 1024 && i < units.length - 1; i++) n /= 1024;
  return i === 0 ? `${n} B` : `${n.toFixed(1)} ${units[i]}`;
}
