/** Every refusal the engine makes carries one of these codes and a one-line message. */
export type ErrorCode =
  | 'bad-request'
  | 'not-found'
  | 'non-owner'
  | 'bad-signature'
  | 'bad-hash'
  | 'too-large'
  | 'no-space'
  | 'over-allowance'
  | 'conflict'
  | 'unavailable'
  | 'unauthorized';

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
