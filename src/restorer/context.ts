/**
 * The state one restore run shares between its stages (plan → file writer → target): the run's context, the folders
 * of the target as they are made and held open ({@link Dir}), the bounds on work in flight, the temporary names and
 * how they are renamed into place or removed, and how failures are recorded.
 *
 * Contracts: a failure of one file or folder is recorded in `errors` (a swap under the restore with a reason that
 * starts with `VP_UNSAFE_PATH`) and the rest goes on; a full target sets `fatal` once (`VP_TARGET_SPACE`), after which
 * nothing new starts. Temporary names are `.vaultpath-restore-<host>-<pid>-<random>-<count>`, unique to the run.
 *
 * @module
 */
import { VaultpathError } from '../errors.js';
import type { Vault, VaultIndex } from '../repo/vault.js';
import type { TreeNode } from '../repo/tree.js';
import type { PackCache } from '../stage/pack-cache.js';
import type { Limiter } from '../limit.js';
import type { Kernels } from '../native/ports.js';
import type { FsAt } from './fs-at.js';
import { type RestoreError, SETID_PATHS_SHOWN } from './types.js';

/** The start of every temporary name a restore makes; the rest says whose it is (see removeStaleTemps, folders.ts). */
export const TEMP_PREFIX = '.vaultpath-restore-';

export interface RestoreContext {
  readonly vault: Vault;
  readonly index: VaultIndex;
  readonly cache: PackCache;
  readonly include: ((path: string) => boolean) | undefined;
  readonly signal: AbortSignal | undefined;
  readonly fs: FsAt;
  /** The addon's whole-file writer, or `null` to write small files with Node's calls. */
  readonly writer: ReturnType<Kernels['fileWriter']>;
  files: number;
  dirs: number;
  bytes: number;
  readonly errors: RestoreError[];
  readonly progress: ((p: { files: number; bytes: number }) => void) | undefined;
  readonly setId: { count: number; paths: string[] };
  /** The error that stops the restore (the target is full), once one happened. */
  fatal: VaultpathError | undefined;
  /** Whether a killed restore wrote into this target: its temporary files are looked for in every folder. */
  readonly sweep: boolean;
  /** Folders whose descriptor is open now (the target's included). */
  readonly open: Set<Dir>;
  /** Temporary names: `<tempPrefix><count>`; see {@link tempName}. */
  readonly tempPrefix: string;
  temps: number;
  readonly limiter: Limiter;
  /** The limit on small files restored by the addon. */
  readonly smallFiles: Limiter;
  /** The addon's blob opener (read, opened and checked on the thread pool), or `null` to do it here. */
  readonly openBlob: ReturnType<Kernels['blobOpener']>;
  /** The addon's blob writer (opened, checked and written to the file on the thread pool), or `null`. */
  readonly writeBlob: ReturnType<Kernels['blobWriter']>;
  readonly openDirect: Kernels['openDirect'];
  /** File restores under way. */
  readonly pending: Set<Promise<void>>;
}

/** Files restored at once: their opens, writes and renames overlap on the thread pool. */
export const FILES_IN_FLIGHT = 8;
/** Small files restored at once by the addon (each at most SMALL_FILE bytes, file-writer.ts): a few batches' worth. */
export const SMALL_FILES_IN_FLIGHT = 32;
/** Chunks of one large file being opened and written by the addon at once. */
export const CHUNKS_IN_FLIGHT = 4;
/** Folder descriptors past which the walk waits for files in flight: the deepest path plus room for the rest. */
export const DIR_BUDGET = 1024 + 512;

/**
 * A folder of the restore: made (or found) and opened on first need from its parent's descriptor, held open while
 * its listing is walked or files are written into it, then given its mode and times through that descriptor and
 * closed. `refs` counts the walk (while listing it), each file in flight in it, and each child folder still open.
 */
export class Dir {
  fd = -1;
  refs = 0;
  /** Opened once: later needs use `fd` (or, once it is closed, find nothing more to do). */
  opened = false;
  /** Making or opening it failed (reported once); what is inside is not restored. */
  failed = false;

  constructor(
    readonly parent: Dir | undefined,
    readonly name: Buffer | undefined,
    readonly rel: string,
    readonly node: TreeNode | undefined,
  ) {}
}

/** Why a swap was refused, for a reason that names what happened. */
export const unsafe = (what: string): string => `VP_UNSAFE_PATH: ${what}; it was not followed`;

/** The permission bits to restore for `node`: set-user-ID and set-group-ID cleared (counted), the sticky bit kept. */
export function keptMode(ctx: RestoreContext, node: TreeNode, rel: string): number {
  const mode = node.mode & 0o7777;
  if ((mode & 0o6000) === 0) return mode;
  ctx.setId.count++;
  if (ctx.setId.paths.length < SETID_PATHS_SHOWN) ctx.setId.paths.push(rel);
  return mode & ~0o6000;
}

/** Whether `code` says the target's file system is full: the restore stops (see {@link stopFull}). */
export const isFull = (code: string | undefined): boolean => code === 'ENOSPC' || code === 'EDQUOT';

/** Stops the restore at the first full disk: one `VP_TARGET_SPACE`, thrown once the files in flight settle. */
export function stopFull(ctx: RestoreContext, rel: string, code: string): void {
  ctx.fatal ??= new VaultpathError('VP_TARGET_SPACE', `The restore target ran out of space (${code}) while writing ${rel}; the restore stopped there. Free space on the target and restore again.`);
}

/** Records the failure of file `rel`: a full target stops the restore instead. */
export function fileFailed(ctx: RestoreContext, rel: string, e: unknown): void {
  const code = (e as NodeJS.ErrnoException).code;
  if (isFull(code)) return stopFull(ctx, rel, code!);
  ctx.errors.push({
    path: rel,
    reason: e instanceof RestoreFileError || e instanceof VaultpathError ? e.message : typeof code === 'string' ? code : String(e),
  });
}

export function done(ctx: RestoreContext, bytes: number): void {
  ctx.files++;
  ctx.bytes += bytes;
  ctx.progress?.({ files: ctx.files, bytes: ctx.bytes });
}

export const SWAPPED = unsafe('the temporary file was replaced (by a link or another file) while it was written');
/** The folder is held open, so a temporary file missing at the rename was moved away or removed by someone else. */
export const MOVED = unsafe('the temporary file was moved away or removed while it was written');

/** Renames `temp` over `name` in `dir`: a temporary file gone by then (ENOENT) was taken by someone else. */
export function renameIntoPlace(ctx: RestoreContext, dir: Dir, temp: Buffer, name: Buffer): void {
  try {
    ctx.fs.rename(dir.fd, temp, name);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new RestoreFileError(MOVED, true);
    throw e;
  }
}

/** Removes temporary file `temp` of `dir` after a failure, unless it was swapped (then what is there is not ours). */
export function removeTemp(ctx: RestoreContext, dir: Dir, temp: Buffer, e: unknown): void {
  if (e instanceof RestoreFileError && e.swapped) return;
  try {
    ctx.fs.unlink(dir.fd, temp, false);
  } catch {
    // not created
  }
}

export class RestoreFileError extends Error {
  /** The temporary file was swapped: what is at its name now is not ours to remove. */
  constructor(message: string, readonly swapped = false) {
    super(message);
  }
}

/**
 * A temporary name, unique to this restore: `.vaultpath-restore-<host>-<pid>-<random>-<count>` (a random draw per
 * file cost more than its write). The host and pid let a later restore remove it if this process is killed. Created
 * exclusively, so a name already taken fails that file instead of opening what is there.
 */
export function tempName(ctx: RestoreContext): Buffer {
  return Buffer.from(`${ctx.tempPrefix}${(ctx.temps++).toString(36)}`);
}

