/** Network constants, from the seeds and MaidSafe's vault of that time (see DESIGN.md). */
export const GROUP_SIZE = 4;
export const QUORUM = 3;
/** New copies go to the best candidate among this many vaults closest to the chunk. */
export const CANDIDATES = 16;
export const MIN_HOLDERS = 4;
export const MAX_HOLDERS = 8;

export const MAX_CHUNK_SIZE = 1024 * 1024;
/** Self-encryption never makes fewer chunks than this, so every chunk has two neighbours. */
export const MIN_FILE_CHUNKS = 3;

export const DEFAULT_VAULTS = 12;
export const DEFAULT_DONATED_BYTES = 1024 ** 3;
export const DEFAULT_ALLOWANCE_BYTES = 10 * 1024 ** 3;

/** How long a group member waits for the rest of a quorum before giving up. */
export const QUORUM_TIMEOUT_MS = 10_000;
/** A request with no reply by then fails as unreachable, as over a real link: nothing waits forever. */
export const REQUEST_TIMEOUT_MS = 3 * QUORUM_TIMEOUT_MS;
/** Signed client requests older or newer than this are refused (replay window). */
export const REQUEST_WINDOW_MS = 5 * 60_000;
