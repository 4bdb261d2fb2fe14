/**
 * The one API contract. The daemon serves it over HTTP/WebSocket, the desktop host over IPC,
 * the CLI and the renderer call it; every call's params are validated here before the engine sees them.
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
const absolutePath = z
  .string()
  .min(1)
  .max(4096)
  .refine((p) => p.startsWith('/') || /^[A-Za-z]:[\\/]/.test(p), 'paths must be absolute')
  .refine((p) => !p.includes('\0'), 'paths cannot contain NUL');

export const methods = {
  putFile: z.strictObject({ as: clientName, path: absolutePath }),
  getFile: z.strictObject({ as: clientName, id: fileId, out: absolutePath }),
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
} as const;

export type Method = keyof typeof methods;
export type Params<M extends Method> = z.infer<(typeof methods)[M]>;

export interface FileInfo { id: string; name: string; size: number; chunks: string[]; storedAt: number }
export interface ChunkPutResult { name: string; refcount: number; subscribers: number }
export interface ChunkRemoveResult { refcount: number; subscribers: number; deleted: boolean }
export interface HolderInfo { vault: string; online: boolean; rank: number }
export interface ChunkInfo { name: string; size: number; subscribers: number; refcount: number; holders: HolderInfo[] }
export interface VaultInfo { id: string; online: boolean; donated: number; used: number; chunks: number; rank: number }
export interface Status { dataDir: string; vaults: number; online: number; clients: string[] }

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
}

/** What both hosts serve and every caller uses: one async function per method. */
export type Api = { [M in Method]: (params: Params<M>) => Promise<Results[M]> };

export const isMethod = (name: string): name is Method => Object.hasOwn(methods, name);

/** Validates untrusted params; throws a one-line 'bad-request' error naming the first problem. */
export function parseParams<M extends Method>(method: M, params: unknown): Params<M> {
  const parsed = methods[method].safeParse(params ?? {});
  if (parsed.success) return parsed.data as Params<M>;
  const issue = parsed.error.issues[0]!;
  const where = issue.path.length ? `${issue.path.join('.')}: ` : '';
  throw new SafeVaultError('bad-request', `${method}: ${where}${issue.message}`);
}

