/**
 * The one error class of vaultpath.
 *
 * Every failure a caller can act on is a {@link VaultpathError} with a stable string `code` (the table below and
 * the error table in docs/errors.md are the contract: codes are never renamed, only added), a message that says what
 * failed, where, and what to do, and the underlying `cause` when there is one. Whether a failure is worth
 * retrying is decided where it arises and carried in `retryable`, so decorators such as retry never guess.
 *
 * Plain argument mistakes by a programmer (a wrong type, a length out of range) are `TypeError` / `RangeError`
 * with a labelled message, as Node and noble do; they are bugs to fix, not conditions to handle.
 *
 * @module
 */

/** Every code a {@link VaultpathError} can carry, with a one-line meaning. */
export const ERROR_CODES = {
  VP_PASSPHRASE_POLICY: 'the passphrase breaks the passphrase rules (length, control characters, whitespace)',
  VP_WRONG_PASSPHRASE: 'no key slot of the vault opens with this passphrase',
  VP_KEY_SLOT_DAMAGED: 'a key slot is truncated or its bytes do not match its checksum',
  VP_KDF_PARAMS: 'key-derivation parameters are outside the accepted bounds; the KDF was not run',
  VP_UNSUPPORTED_VERSION: 'an object was written by a format version this reader does not know',
  VP_MALFORMED_OBJECT: 'an object is too short or its layout is not what the format describes',
  VP_OBJECT_TYPE: 'an object is of another type than the one asked for',
  VP_AUTH_FAILED: 'an object failed authentication: it was damaged, tampered with, swapped or sealed by another key',
  VP_ID_MISMATCH: 'an object opened, but its content does not hash to the id it is stored under',
  VP_UNKNOWN_CODEC: 'an object names a compression codec this reader does not know',
  VP_CHUNKER_PARAMS: 'chunker sizes are outside the accepted bounds',
  VP_SOURCE_NOT_FOUND: 'a source to scan does not exist, cannot be read, or is not a folder',
  VP_SOURCE_TOO_LARGE: 'a data source holds more bytes to back up than the per-source limit (54,400 GB by default)',
  VP_CASE_COLLISION: 'names in one folder differ only by case, and the policy says to fail the source',
  VP_INVALID_NAME: 'an object name is not a valid vault name (it could lead outside the vault)',
  VP_NOT_FOUND: 'an object or vault does not exist',
  VP_ALREADY_EXISTS: 'a create-only write found the object already there',
  VP_STORE_FULL: 'the vault is out of space; permanent, never retried',
  VP_STORE_IO: 'the vault could not be read or written',
  VP_STORE_AUTH: 'the storage service refused the credentials (wrong account key, bad signature, or a SAS without the permission)',
  VP_CREDENTIALS_EXPIRED: 'the credentials have expired: a vault credentials file or a SAS token past its expiry time',
  VP_CREDENTIALS_INVALID: 'a vault credentials file is not valid: corrupted, not a credentials file, for another vault, or superseded by a newer one',
  VP_CREDENTIALS_UNREADABLE: 'a vault credentials file cannot be read (missing, or no permission)',
  VP_REGISTERED_ELSEWHERE: 'this machine is already registered with another vault',
  VP_MACHINE_NAME_TAKEN: 'another machine with this name is already registered with the vault',
  VP_MACHINE_NAME: 'a machine name breaks the naming rule',
  VP_VAULT_NAME: 'a vault name breaks the naming rule (2 to 50 characters, a letter first, letters, digits and hyphens)',
  VP_NOT_REGISTERED: 'no --vault was given and this machine is not registered with a vault',
  VP_SETTINGS: 'the local agent settings cannot be read or are damaged',
  VP_CONTAINER_NOT_FOUND: 'the storage container named in the vault location does not exist',
  VP_PROXY_AUTH: 'the proxy refused the user name or password (HTTP 407); never retried',
  VP_STORE_LIMIT: 'an object breaks a limit of the storage service (block size, block count, object size)',
  VP_NOT_A_VAULT: 'the location holds no vault',
  VP_VAULT_EXISTS: 'a vault already exists at the location',
  VP_SCRATCH_SPACE: 'the scratch folder has less free space than the backup needs; nothing was read',
  VP_TARGET: 'the restore target is not a folder',
  VP_SCHEDULE: 'a bandwidth schedule is not usable (unknown time zone, bad hours, or a rate outside the agent profile)',
  VP_WORKER: 'a worker thread (sealing on another core) failed; the backup stops',
  VP_UNSAFE_PATH: 'a path changed under vaultpath while it worked (a folder or file swapped for a link, a FIFO or another file); it was not followed',
  VP_UNSAFE_FOLDER: 'a working folder (reports, scratch, recovery) is not a folder of this user closed to others; nothing was written into it',
  VP_TARGET_SPACE: 'the restore target has less free space than the restore needs, or ran out of space while writing',
  VP_SNAPSHOT_DAMAGED: 'a snapshot asked for (by id, prefix or `latest`) cannot be read; no other snapshot is taken in its place',
  VP_FORMAT_LIMIT: 'an object exceeds a limit the format states (tree depth, nodes in a listing, JSON nesting, object size)',
  VP_LOCAL_IO: 'a local file or folder (a report, the scratch or recovery folder, a restore target, a passphrase file, the output) could not be read or written',
  VP_PASSPHRASE_MISMATCH: 'a new passphrase typed twice was not the same both times; nothing was changed',
  VP_USAGE: 'the command line is not one vaultpath accepts (an unknown command or option, an option without its value, a missing argument)',
  VP_INTERNAL: 'an unexpected failure inside vaultpath: a bug to report',
  VP_ABORTED: 'the operation was aborted through its AbortSignal',
} as const;

/** A stable error code; see {@link ERROR_CODES}. */
export type ErrorCode = keyof typeof ERROR_CODES;

export interface VaultpathErrorOptions {
  /** The error that caused this one, kept for diagnosis. */
  readonly cause?: unknown;
  /**
   * Whether the same call may succeed if tried again unchanged (a timeout, a busy server).
   * @default false
   */
  readonly retryable?: boolean;
  /** The HTTP status a remote store answered with, when the failure came from one. */
  readonly status?: number;
  /** How long the server asked to wait before a retry (`Retry-After`), in milliseconds. */
  readonly retryAfterMs?: number;
}

/**
 * The base class of every error vaultpath raises on purpose.
 *
 * @example
 * ```ts
 * try { await openVault(...) } catch (e) {
 *   if (e instanceof VaultpathError && e.code === 'VP_WRONG_PASSPHRASE') askAgain();
 * }
 * ```
 */
export class VaultpathError extends Error {
  override readonly name = 'VaultpathError';
  readonly code: ErrorCode;
  readonly retryable: boolean;
  /** The HTTP status behind the failure, for remote stores. */
  readonly status?: number;
  /** The server's `Retry-After`, in milliseconds. */
  readonly retryAfterMs?: number;

  constructor(code: ErrorCode, message: string, options: VaultpathErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.retryable = options.retryable ?? false;
    if (options.status !== undefined) this.status = options.status;
    if (options.retryAfterMs !== undefined) this.retryAfterMs = options.retryAfterMs;
  }
}

/** True when `e` is a {@link VaultpathError}, optionally with the given code. */
export function isVaultpathError(e: unknown, code?: ErrorCode): e is VaultpathError {
  return e instanceof VaultpathError && (code === undefined || e.code === code);
}

/** Throws a `VP_ABORTED` error carrying the signal's reason if `signal` is aborted. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) {
    throw new VaultpathError('VP_ABORTED', 'The operation was aborted.', { cause: signal.reason });
  }
}

/** `e` and the errors in its `cause` chain, nearest first (at most 8, so a cycle cannot loop forever). */
export function* causeChain(e: unknown): Generator<{ readonly code?: unknown; readonly message?: unknown }> {
  for (let c: unknown = e, depth = 0; c && typeof c === 'object' && depth < 8; c = (c as { cause?: unknown }).cause, depth++) {
    yield c as { code?: unknown; message?: unknown };
  }
}
