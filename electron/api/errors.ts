/** Every refusal the engine makes carries one of these codes and a one-line message. */
const CODES = [
  'bad-request',
  'not-found',
  'non-owner',
  'bad-signature',
  'bad-hash',
  'too-large',
  'no-space',
  'over-allowance',
  'conflict',
  'unavailable',
  'unauthorized',
] as const;
export type ErrorCode = (typeof CODES)[number];

export const isErrorCode = (code: unknown): code is ErrorCode => typeof code === 'string' && (CODES as readonly string[]).includes(code);

export class SafeVaultError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string) {
    super(message);
    this.name = 'SafeVaultError';
    this.code = code;
  }
}

export const fail = (code: ErrorCode, message: string): never => {
  throw new SafeVaultError(code, message);
};

export const isSafeVaultError = (e: unknown): e is SafeVaultError => e instanceof SafeVaultError;

/** An error as it crosses any boundary (HTTP, IPC, the engine host, between vaults): its code and one line. */
export interface WireError {
  code: ErrorCode;
  message: string;
}

/** A message as it crosses a boundary: its first line, at most 500 characters. */
const oneLine = (message: string): string => message.split('\n')[0]!.slice(0, 500);

/** The wire form of `error`; an error that is not a SafeVaultError goes as `unknownAs`. */
export function toWireError(error: unknown, unknownAs: ErrorCode): WireError {
  return { code: isSafeVaultError(error) ? error.code : unknownAs, message: oneLine(error instanceof Error ? error.message : String(error)) };
}

/** The SafeVaultError a wire error stands for, its message cut to one line (a peer's is not trusted to be); anything malformed becomes `fallback` as 'unavailable'. */
export function fromWireError(value: unknown, fallback: string): SafeVaultError {
  const { code, message } = (typeof value === 'object' && value !== null ? value : {}) as { code?: unknown; message?: unknown };
  return isErrorCode(code) && typeof message === 'string' ? new SafeVaultError(code, oneLine(message)) : new SafeVaultError('unavailable', fallback);
}
