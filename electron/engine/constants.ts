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
/** How long a record remembers an operation it applied (and its reply), so a retry within it counts once. */
export const OP_MEMORY_MS = 10 * 60_000;
/** How long a client keeps retrying one operation before it reports failure. */
export const OP_DEADLINE_MS = 2 * 60_000;
/** A storage node asks the data_manager group about each chunk it holds this often (and at once after time away). */
export const SWEEP_RECHECK_MS = 10 * 60_000;
/** A proposer sends no acceptance later than this after it starts a decision: it gives up instead (see PROMISE_MEMORY_MS). */
export const DECISION_DEADLINE_MS = 10 * 60_000;
/**
 * A promise that no accepted value came with is forgotten after this long. All it guards against is
 * the acceptance of a lower ballot for its slot, and every proposer that could send one started
 * before the promise and sends nothing past its DECISION_DEADLINE_MS; forgotten, it no longer stays
 * with each decision's two witnesses for good (about 60 bytes per record on a live vault).
 */
export const PROMISE_MEMORY_MS = 6 * DECISION_DEADLINE_MS;
/** A decision this member accepted but never heard the end of (its proposer died, the commit was lost) is finished by the member after this long. */
export const UNFINISHED_DECISION_MS = 10_000;
/** How often a vault audits its records (holders short, lists too long) and sweeps its disk. */
export const AUDIT_INTERVAL_MS = 30_000;
/** Staged uploads wait this long for their data_manager to fetch them. */
export const STAGE_TTL_MS = 5 * 60_000;
export const MAX_STAGED_BYTES = 256 * 1024 * 1024;
/** Signed client requests older or newer than this are refused (replay window). */
export const REQUEST_WINDOW_MS = 5 * 60_000;
