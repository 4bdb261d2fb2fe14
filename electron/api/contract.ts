/**
 * The one API contract. The daemon serves it over HTTP/WebSocket, the desktop host over IPC,
 * the CLI and the renderer call it; every call's params are validated here before the engine sees them.
 * A leaf: types and zod schemas only, importable by the engine, both hosts and the renderer alike.
 */
import { z } from 'zod';
import type { RecordedEvent } from './events.ts';
import { SafeVaultError } from './errors.ts';

const clientName = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, 'a client name is 1-64 letters, digits, "_", "-" or ".", starting with a letter or digit');
const chunkName = z.string().regex(/^[0-9a-f]{64}$/, 'a chunk name is 64 lowercase hex digits');
const fileId = z.string().regex(/^[0-9a-f]{32}$/, 'a file id is 32 lowercase hex digits');
const vaultId = z.string().regex(/^[0-9a-f]{4,64}$/, 'a vault id is 4-64 lowercase hex digits (a unique prefix is enough)');
/** An operation id the caller picks: it names the operation's progress events and lets `cancel` stop it. */
const operationId = z.string().regex(/^[0-9a-f]{32}$/, 'an operation id is 32 lowercase hex digits');
/** A file's display name: no path separators or control characters, so it can never name another file on disk. */
export const fileName = z
  .string()
  .min(1)
  .max(255)
  .refine((n) => !/[\\/\u0000-\u001f\u007f]/.test(n) && n !== '.' && n !== '..', 'a file name cannot contain "/", "\\" or control characters');
export const absolutePath = z
  .string()
  .min(1)
  .max(4096)
  .refine((p) => p.startsWith('/') || /^[A-Za-z]:[\\/]/.test(p), 'paths must be absolute')
  .refine((p) => !p.includes('\0'), 'paths cannot contain NUL');

export const settingsSchema = z.strictObject({
  /** Bytes the user's own vault donates to the network. */
  donated: z.number().int().min(64 * 1024 * 1024).max(2 ** 50),
  theme: z.enum(['auto', 'light', 'dark']),
  startAtLogin: z.boolean(),
  /** Run a local network of vaults, or join a network over libp2p with one vault of the user's own. */
  mode: z.enum(['local', 'network']),
  /** Multiaddrs of vaults to join through (mode 'network'); the engine checks each is a multiaddr. */
  bootstrap: z.array(z.string().min(1).max(512)).max(32),
  /** The multiaddr the own vault listens on when joined (a port of 0 picks a free one). */
  listen: z.string().min(1).max(512),
  /** Find vaults on the LAN by mDNS when joined. */
  mdns: z.boolean(),
  notifications: z.strictObject({
    storeFinished: z.boolean(),
    storeFailed: z.boolean(),
    vaultOffline: z.boolean(),
    spaceNearlyFull: z.boolean(),
  }),
});
export type Settings = z.infer<typeof settingsSchema>;

export const logLevel = z.enum(['debug', 'info', 'warn', 'error']);
export type LogLevel = z.infer<typeof logLevel>;

export const methods = {
  /** `name` overrides the stored name (an upload's temp file); `op` names its progress events and makes it cancellable. */
  putFile: z.strictObject({ as: clientName, path: absolutePath, name: fileName.optional(), op: operationId.optional() }),
  getFile: z.strictObject({ as: clientName, id: fileId, out: absolutePath, op: operationId.optional() }),
  /** Stops a putFile/getFile in flight: a cancelled store releases what it stored, a cancelled get leaves no file. */
  cancel: z.strictObject({ op: operationId }),
  /** Replication health of some of a client's files (the visible rows of a list). */
  fileHealth: z.strictObject({ as: clientName, ids: z.array(fileId).max(500) }),
  removeFile: z.strictObject({ as: clientName, id: fileId }),
  listFiles: z.strictObject({ as: clientName }),
  putChunk: z.strictObject({ as: clientName, path: absolutePath }),
  removeChunk: z.strictObject({ as: clientName, name: chunkName }),
  chunkInfo: z.strictObject({ name: chunkName, as: clientName.optional() }),
  listVaults: z.strictObject({}),
  addVault: z.strictObject({ donated: z.number().int().positive().max(2 ** 50).optional() }),
  stopVault: z.strictObject({ id: vaultId }),
  startVault: z.strictObject({ id: vaultId }),
  killVault: z.strictObject({ id: vaultId }),
  events: z.strictObject({ since: z.number().int().nonnegative().optional(), limit: z.number().int().positive().max(10_000).optional() }),
  status: z.strictObject({}),
  /** Local client identities (the Accounts view); creating one that exists is a 'conflict'. */
  listClients: z.strictObject({}),
  createClient: z.strictObject({ label: clientName }),
  /** The user's own vault: the one this app runs for its user (the first of the local network). */
  myVault: z.strictObject({}),
  /** Pauses or resumes vaulting: the user's own vault leaves the network with a goodbye, or comes back. */
  setPaused: z.strictObject({ paused: z.boolean() }),
  getSettings: z.strictObject({}),
  setSettings: settingsSchema.partial().strict(),
  /** Samples taken every few seconds and kept for a bounded window, oldest first; `since` is a sample time. */
  timeSeries: z.strictObject({ since: z.number().int().nonnegative().optional() }),
  /** The network as the own vault sees it: its addresses and the vaults it is connected to (none in a local network). */
  peers: z.strictObject({}),
  /** The host's log, oldest first; `since` is a line's seq; `level` keeps that level and above. */
  logs: z.strictObject({
    since: z.number().int().nonnegative().optional(),
    level: logLevel.optional(),
    limit: z.number().int().positive().max(10_000).optional(),
  }),
} as const;

export type Method = keyof typeof methods;
export type Params<M extends Method> = z.infer<(typeof methods)[M]>;

export interface FileInfo { id: string; name: string; size: number; chunks: string[]; storedAt: number }
export interface ChunkPutResult { name: string; refcount: number; subscribers: number }
export interface ChunkRemoveResult { refcount: number; subscribers: number; deleted: boolean }
export interface HolderInfo { vault: string; online: boolean; rank: number }
/** `managers`: the chunk's data_manager close group (the 4 online vaults closest to its name), closest first. */
export interface ChunkInfo { name: string; size: number; subscribers: number; refcount: number; holders: HolderInfo[]; managers: string[] }
export interface VaultInfo { id: string; online: boolean; donated: number; used: number; chunks: number; rank: number }
/** `opsInFlight`: client operations (stores, gets, removals, chunk calls) running now. */
export interface Status {
  dataDir: string;
  vaults: number;
  online: number;
  clients: string[];
  paused: boolean;
  used: number;
  donated: number;
  opsInFlight: number;
}
/** `minOnlineHolders`: the fewest online holders any of its chunks has (4 or more is healthy). */
export interface FileHealth { id: string; chunks: number; minOnlineHolders: number; underReplicated: number }
export interface ClientInfo { label: string; name: string; files: number; createdAt: number }
/** Records each persona holds in this vault's database. */
export interface PersonaRecords { storageClientManager: number; dataManager: number; storageNodeManager: number; storageNode: number }
export interface MyVault extends VaultInfo { startedAt: number | null; records: PersonaRecords }
export interface Sample {
  at: number;
  vaultsOnline: number;
  underReplicated: number;
  used: number;
  donated: number;
  chunksHeld: number;
  opsPerSecond: number;
}
export interface LogLine { seq: number; at: number; level: LogLevel; message: string }
/** A vault the own vault knows on a joined network: `latencyMs` from its last ping, `connectedSince` while connected. */
export interface PeerInfo { vault: string; peer: string; addresses: string[]; online: boolean; latencyMs?: number; connectedSince?: number }
/**
 * `mode` is the running network's; `addresses` are the own vault's (dialable, ending in /p2p/<peer id>);
 * `problem` says why a joined vault is not on the network (its listen address refused, paused).
 */
export interface Peers { mode: Settings['mode']; addresses: string[]; peers: PeerInfo[]; problem?: string }

export interface Results {
  putFile: FileInfo;
  getFile: { id: string; path: string; size: number };
  removeFile: { id: string; chunks: (ChunkRemoveResult & { name: string })[] };
  listFiles: FileInfo[];
  putChunk: ChunkPutResult;
  removeChunk: ChunkRemoveResult;
  chunkInfo: ChunkInfo;
  listVaults: VaultInfo[];
  addVault: VaultInfo;
  stopVault: VaultInfo;
  startVault: VaultInfo;
  killVault: VaultInfo;
  events: RecordedEvent[];
  status: Status;
  cancel: { cancelled: boolean };
  fileHealth: FileHealth[];
  listClients: ClientInfo[];
  createClient: ClientInfo;
  myVault: MyVault;
  setPaused: Status;
  getSettings: Settings;
  setSettings: Settings;
  timeSeries: Sample[];
  peers: Peers;
  logs: LogLine[];
}

/** What both hosts serve and every caller uses: one async function per method. */
export type Api = { [M in Method]: (params: Params<M>) => Promise<Results[M]> };

/** Whether a host's connection to the engine is up: the daemon's socket (browser) or the engine process (desktop). */
export type ConnectionState = 'connecting' | 'connected' | 'disconnected';

/**
 * What the desktop preload exposes on `window.safevault` through contextBridge: the Api plus the few
 * things only a desktop can do. `file` is a DOM File (this leaf is DOM-free, so it is typed loosely).
 */
export type DesktopBridge = Api & {
  onEvent(listener: (event: RecordedEvent) => void): () => void;
  onConnection(listener: (state: ConnectionState) => void): () => void;
  getPathForFile(file: object): string;
  /** A native "Save as…" dialog; null when the user cancels. */
  chooseSavePath(suggestedName: string): Promise<string | null>;
  /** A native folder picker (for the data folder); null when the user cancels. */
  chooseFolder(): Promise<string | null>;
  /**
   * Moves the data folder to `target` (absolute; empty or new): the engine stops, everything is copied
   * and verified, the setting saved, the old folder removed, and the engine starts there. Resolves once
   * the engine has been started again; a refusal or failure leaves everything where it was.
   */
  moveDataFolder(target: string): Promise<{ dataDir: string }>;
  /** Progress of a move in flight (also what a window opened during one hears). */
  onDataFolderMove(listener: (progress: DataFolderMove) => void): () => void;
};

/** A data-folder move in flight: bytes copied and verified of the total; `done` once it has ended either way. */
export interface DataFolderMove {
  target: string;
  copied: number;
  total: number;
  done: boolean;
}

/**
 * The daemon's browser wire, beside POST /api/<method>:
 * - WS_PATH?token=T: one WebSocket per page. Calls go up as {id, method, params} and come back as
 *   {id, result} or {id, error: {code, message}}; events come down as {event: RecordedEvent}.
 * - POST UPLOAD_PATH?as=&name=&op= with `Authorization: Bearer T` and the raw bytes as the body
 *   (Content-Length required): streamed to a temp file, then stored as putFile; answers FileInfo.
 * - POST DOWNLOAD_TICKET_PATH {as, id} (Bearer) -> {url}: a one-use URL, valid for a minute, that
 *   streams the file as an attachment (so the browser saves it; no token in the address).
 */
export const WS_PATH = '/api/ws';
export const UPLOAD_PATH = '/upload';
export const DOWNLOAD_TICKET_PATH = '/download-ticket';

export const isMethod = (name: string): name is Method => Object.hasOwn(methods, name);

/** Validates untrusted params; throws a one-line 'bad-request' error naming the first problem. */
export function parseParams<M extends Method>(method: M, params: unknown): Params<M> {
  const parsed = methods[method].safeParse(params ?? {});
  if (parsed.success) return parsed.data as Params<M>;
  const issue = parsed.error.issues[0]!;
  const where = issue.path.length ? `${issue.path.join('.')}: ` : '';
  throw new SafeVaultError('bad-request', `${method}: ${where}${issue.message}`);
}

