/** What the daemon's server and its client share: where a daemon advertises itself and how errors travel. */
import { join } from 'node:path';
import type { ErrorCode } from '../api/errors.ts';

/** Written to `<dataDir>/daemon.json` (mode 0600) while a daemon runs; the token is the only credential. */
export interface DaemonInfo {
  url: string;
  token: string;
  pid: number;
}

export const daemonFile = (dataDir: string): string => join(dataDir, 'daemon.json');

/** The one mapping from error codes to HTTP statuses. A Record, so a new ErrorCode fails type-checking until mapped. */
export const httpStatus: Record<ErrorCode, number> = {
  'bad-request': 400,
  'not-found': 404,
  'non-owner': 403,
  'bad-signature': 403,
  unauthorized: 403,
  conflict: 409,
  'too-large': 413,
  'no-space': 507,
  'over-allowance': 507,
  unavailable: 503,
  // Data that fails its hash came from the network, not from the caller: a bad upstream answer.
  'bad-hash': 502,
};

export { isErrorCode } from '../api/errors.ts';

/** Every non-2xx answer has this body. `internal` marks a 500 whose details stay in the daemon's log. */
export interface ErrorBody {
  error: { code: ErrorCode | 'internal'; message: string };
}
