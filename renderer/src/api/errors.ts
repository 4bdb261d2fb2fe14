/** Errors as the renderer shows them: the engine's one-line message with its code. */
import { SafeVaultError, type ErrorCode } from '../../../electron/api/errors.ts';

export { SafeVaultError };

export function errorCode(e: unknown): ErrorCode | undefined {
  return typeof e === 'object' && e !== null && 'code' in e ? (e as { code: ErrorCode }).code : undefined;
}

export function errorMessage(e: unknown): string {
  if (e instanceof Error) return e.message;
  if (typeof e === 'object' && e !== null && 'message' in e) return String((e as { message: unknown }).message);
  return String(e);
}

/** An error shaped like the wire's {code, message}, rebuilt into the contract's error class. */
export function toError(body: unknown, fallback: string): SafeVaultError {
  const error = typeof body === 'object' && body !== null && 'error' in body ? (body as { error: unknown }).error : body;
  if (typeof error === 'object' && error !== null && 'code' in error && 'message' in error) {
    return new SafeVaultError((error as { code: ErrorCode }).code, String((error as { message: unknown }).message));
  }
  return new SafeVaultError('unavailable', fallback);
}
