/**
 * `restore()`: a snapshot (or part of it) back to a target folder, verified.
 *
 *   snapshot → trees walked once to plan (bounds checked, bytes summed, free space checked; up to 16 MiB of them
 *   kept) → walked again to restore (the kept trees not read again): packs downloaded into the recovery folder →
 *   blobs opened (authenticated, id checked) → written under a temporary name → renamed into place once complete
 *
 * Safety against a local user who can write inside the target while it runs (vaultpath runs as root):
 * - The target is opened once as a descriptor; every folder below is reached from its parent's descriptor, one name
 *   at a time, never following a link (openat2 RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS through the addon, else
 *   `/proc/self/fd/<dirfd>/<name>` with O_NOFOLLOW, fs-at.ts). A folder renamed away or swapped for a link after it
 *   was opened keeps receiving its files wherever it went; a swap before it was opened is refused. Nothing is
 *   created, written, renamed, chmod-ed, stamped or removed outside the target, at any moment.
 * - New folders are made 0700 (no one else enters them while they fill) and must be ours once opened; their mode
 *   and times are set at the end through their own descriptor, never by path.
 * - Files are created exclusively (O_CREAT|O_EXCL|O_NOFOLLOW) under a temporary name, written, given their mode
 *   and times through the descriptor, checked to still be the file at that name, then renamed over whatever was
 *   there (a rename replaces a link, it never follows it). A swap detected fails that file or folder alone, with a
 *   reason that starts with `VP_UNSAFE_PATH`.
 * - A node whose name is empty, `.`, `..`, or holds `/`, `\` or NUL is refused (reported, nothing created). Names
 *   that are not UTF-8 (`nameRaw`) are created with their exact bytes.
 * - Owners are not recorded in trees, so set-user-ID and set-group-ID bits are never restored (the sticky bit is);
 *   the result says which files and folders lost them.
 * - A hostile snapshot (trees nested past MAX_TREE_DEPTH, `next` chains that loop or never end) fails with
 *   `VP_FORMAT_LIMIT` in the planning walk, before anything is written; the walk is iterative (walk.ts).
 * - Recovery runs (`run-<pid>-<host>-…`) that a killed restore left are removed by the next restore, only when their
 *   host is this one and their process is gone; each keeps a record of its target (device and inode) until a
 *   restore into that target removes the temporary files (`.vaultpath-restore-<host>-<pid>-…`, this user's files
 *   and links only) it left there. A target no killed restore wrote into is not searched.
 *
 * Descriptors held: the folders along the walk's current path, and the folders (with their ancestors) that files in
 * flight are written into; a folder's descriptor is closed once its listing and its files are done.
 *
 * A file whose data cannot be read (a missing or damaged pack) fails alone: it is named in the result's errors, its
 * temporary file is removed, and the rest is restored. Content is written as it is verified: each chunk is opened
 * under its id and re-hashed (by the addon on the thread pool where it is built, see src/native/open.ts), and the
 * file's length must match the snapshot before it is renamed into place. Sparse holes are left as holes. The first
 * ENOSPC stops the restore with one `VP_TARGET_SPACE`.
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import { close as closeCb, closeSync, constants, fchmodSync, fstatSync, ftruncate as ftruncateCb, statfsSync, write as writeCb, writeSync } from 'node:fs';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import picomatch from 'picomatch';
import { VaultpathError, throwIfAborted } from '../errors.js';
import { ObjectType } from '../crypto/object-type.js';
import { BLOB_OVERHEAD } from '../crypto/envelope.js';
import type { BlobLocation, Vault, VaultIndex } from '../repo/vault.js';
import type { TreeNode } from '../repo/tree.js';
import { type Clock, systemClock } from '../throttle/clock.js';
import { ensureUserFolder, userFolder } from '../stage/user-folders.js';
import { type FsAt, addonFsAt, closeQuietly, procFsAt, procFsAtUsable } from '../restorer/fs-at.js';
import { TreeMemo, walkTrees } from '../restorer/walk.js';
import { openTarget } from '../restorer/target.js';
import { Limiter } from './limit.js';
import type { nativeWriter } from '../native/write-files.js';
import type { BlobOpener, BlobWriter, openDirect } from '../native/open.js';
import { type Kernels, nativeKernels } from '../native/ports.js';
import { HOST_TAG, isGone } from '../processes.js';
import { PackCache } from '../stage/pack-cache.js';

const writeAt = promisify(writeCb);
const ftruncate = promisify(ftruncateCb);
const closeFd = promisify(closeCb);

export interface RestoreOptions {
  /** Globs (relative to the snapshot's root, e.g. `data/photos/**`) of files to restore. @default everything */
  readonly include?: readonly string[];
  /**
   * Where packs are downloaded; a subfolder `run-<pid>-<host>-<random>` is made for this run and removed at the end
   * (and by a later restore, if this process is killed). @default this user's `recovery` working folder
   * (`~/.cache/vaultpath/recovery`, see user-folders.ts), created 0700
   */
  readonly recoveryFolder?: string;
  /**
   * The most bytes of packs the recovery folder keeps once they are not being read. Packs that files in flight are
   * reading stay until those files are done, so it can briefly hold more: at most one pack per file in flight (40).
   * @default 256 MiB
   */
  readonly recoveryBytes?: number;
  /**
   * With `latest` (or a prefix), pass over snapshots that cannot be read instead of failing with
   * `VP_SNAPSHOT_DAMAGED`: a damaged snapshot's time is sealed inside it, so it could be the newest. Those passed
   * over are named in the result's `skippedDamaged`. @default false
   */
  readonly skipDamaged?: boolean;
  readonly clock?: Clock;
  readonly signal?: AbortSignal;
  /** Progress, called often; MUST NOT block. */
  readonly onProgress?: (p: { files: number; bytes: number }) => void;
  /** The native kernels to use; `portableKernels` takes the JavaScript path everywhere. @default nativeKernels */
  readonly kernels?: Kernels;
}

export interface RestoreError {
  /** The path (relative to the target) that failed; names that are not UTF-8 are shown with U+FFFD. */
  readonly path: string;
  /** Why. A file or folder swapped under the restore (a link, another file) starts with `VP_UNSAFE_PATH: `. */
  readonly reason: string;
}

export interface RestoreResult {
  readonly snapshot: string;
  readonly files: number;
  readonly dirs: number;
  readonly bytes: number;
  readonly errors: readonly RestoreError[];
  /**
   * Files and folders restored without their set-user-ID / set-group-ID bits: trees do not record owners, so a
   * restored file belongs to whoever runs the restore, and keeping those bits would hand that user's rights to the
   * file's content. `count` counts them all; `paths` names the first {@link SETID_PATHS_SHOWN} (relative to the
   * target). They are not in `errors`: the rest of their mode, their content and times are restored.
   */
  readonly setIdCleared: { readonly count: number; readonly paths: readonly string[] };
  /** Snapshots passed over because they cannot be read (`skipDamaged`), ids; empty otherwise. */
  readonly skippedDamaged: readonly string[];
  readonly durationMs: number;
}

/** Paths of files that lost set-ID bits named in the result, at most (the count covers the rest). */
export const SETID_PATHS_SHOWN = 1000;

/**
 * Restores snapshot `ref` (`latest`, an id, or an id prefix) into `target`.
 *
 * @throws {VaultpathError} `VP_NOT_FOUND` (no such snapshot), `VP_TARGET` (the target is not a folder, cannot be
 *   made or written), `VP_TARGET_SPACE` (less free space than the restore needs, or the target filled up while
 *   writing: the restore stops there), `VP_FORMAT_LIMIT` (trees nested or chained past the format's limits; nothing
 *   written), `VP_UNSAFE_FOLDER` (the default recovery folder is not this user's), `VP_UNSAFE_PATH` (no addon and
 *   no `/proc/self/fd`: no way to restore without following paths), store errors while reading the snapshot's
 *   trees, `VP_ABORTED`. Failures of single files are returned in `errors`.
 * @example
 * ```ts
 * const r = await restore(vault, 'latest', '/tmp/restored', { include: ['home/ann/**'] });
 * if (r.errors.length > 0) process.exitCode = 1;
 * ```
 */
export async function restore(vault: Vault, ref: string, target: string, options: RestoreOptions = {}): Promise<RestoreResult> {
  const clock = options.clock ?? systemClock;
  const started = clock.now();
  const { signal } = options;
  const { id: snapshotId, snapshot, skipped: skippedDamaged } = await vault.findSnapshot(ref, { signal, skipDamaged: options.skipDamaged === true });
  const index = await vault.loadIndex({ signal });
  const include = options.include && options.include.length > 0 ? picomatch([...options.include], { dot: true }) : undefined;
  const kernels = options.kernels ?? nativeKernels;
  const writer = kernels.fileWriter();
  const fs = (writer ? addonFsAt() : null) ?? (procFsAtUsable() ? procFsAt : null);
  if (!fs) {
    throw new VaultpathError('VP_UNSAFE_PATH', 'This system has neither the native addon nor /proc/self/fd: vaultpath cannot restore without following paths another user could swap. Build the addon (npm run install) on Linux.');
  }

  // Plan first: a hostile snapshot fails here, and the bytes to write are known before the target is touched.
  const plan = { bytes: 0 };
  const memo = new TreeMemo();
  await walkTrees(vault, index, snapshot.tree, undefined, {
    enter: () => undefined,
    leave: () => undefined,
    leaf(_parent, node, _name, rel) {
      if (node.type !== 'file' || (include && !include(rel))) return;
      const holes = (node.holes ?? []).reduce((n, [, length]) => n + length, 0);
      plan.bytes += Math.ceil((node.size! - holes) / 4096) * 4096;
    },
    refused: () => undefined,
    unreadable: () => undefined,
  }, signal, memo);
  memo.stopKeeping();

  const targetDir = resolve(target);
  const rootFd = openTarget(fs, targetDir);
  const root = new Dir(undefined, undefined, '', undefined);
  root.fd = rootFd;
  root.opened = true;
  const pending = new Set<Promise<void>>();
  const open = new Set<Dir>([root]);
  let cache: PackCache | undefined;
  let ctx: RestoreContext | undefined;
  try {
    checkSpace(targetDir, rootFd, plan.bytes);
    const rootStat = fs.stat(rootFd, null);
    const opened = await PackCache.open(options.recoveryFolder ?? ensureUserFolder(userFolder('recovery')), {
      capacity: options.recoveryBytes ?? 256 * 1024 * 1024, vault, target: `${rootStat.dev}:${rootStat.ino}`, spareBuffers: FILES_IN_FLIGHT, signal,
    });
    cache = opened.cache;
    ctx = {
      vault, index, cache, include, signal, fs, writer, files: 0, dirs: 0, bytes: 0, errors: [], progress: options.onProgress,
      setId: { count: 0, paths: [] }, fatal: undefined, open, sweep: opened.sweep,
      tempPrefix: `${TEMP_PREFIX}${HOST_TAG}-${process.pid}-${randomBytes(4).toString('hex')}-`, temps: 0,
      limiter: new Limiter(FILES_IN_FLIGHT), smallFiles: new Limiter(SMALL_FILES_IN_FLIGHT), openBlob: kernels.blobOpener(vault.keys), writeBlob: kernels.blobWriter(vault.keys), openDirect: kernels.openDirect, pending,
    };
    if (ctx.sweep) removeStaleTemps(ctx, root);
    const c = ctx;
    await walkTrees<Dir>(vault, index, snapshot.tree, root, {
      enter(parent, node, name, rel) {
        const dir = new Dir(parent, name, rel, node);
        parent.refs++;
        dir.refs++; // the walk's, until its listing is done
        if (!c.include) ensureDir(c, dir);
        return dir;
      },
      leave(dir) {
        if (dir !== root) release(c, dir);
      },
      async leaf(parent, node, name, rel) {
        if (c.include && !c.include(rel)) return;
        // A small file restored by the addon holds at most 1 MiB: many run at once, their blobs opened and their
        // files written a batch per thread-pool job.
        const small = node.type === 'file' && node.size! <= SMALL_FILE && !node.holes && c.openBlob !== null && c.writer !== null;
        // Descriptors stay bounded: past the budget, the walk waits for files in flight (and their folders) to finish.
        while ((c.pending.size >= SMALL_FILES_IN_FLIGHT * 2 || c.open.size > DIR_BUDGET) && c.pending.size > 0) await Promise.race(c.pending);
        parent.refs++;
        const p = (small ? c.smallFiles : c.limiter)
          .run(async () => {
            if (c.fatal || !ensureDir(c, parent)) return;
            if (node.type === 'file') await restoreFile(c, node, parent, name, rel);
            else if (node.type === 'symlink') restoreLink(c, node, parent, name, rel);
          })
          .finally(() => release(c, parent));
        c.pending.add(p);
        void p.finally(() => c.pending.delete(p)).catch(() => undefined);
      },
      refused(shown, why) {
        c.errors.push({ path: shown, reason: `refused: ${why} could lead outside the target` });
      },
      unreadable(_dir, rel, e) {
        // A damaged or missing tree fails the folder it lists (and what is below it), not the whole restore.
        c.errors.push({ path: rel === '' ? '/' : rel, reason: `the folder's listing cannot be read: ${(e as Error).message}` });
      },
      stopped: () => c.fatal !== undefined,
    }, signal, memo);
    await Promise.all(pending);
  } finally {
    await Promise.allSettled(pending);
    // Folders still open (the restore stopped early) are closed as they are: their mode and times are not set.
    for (const dir of open) closeQuietly(dir.fd);
    await cache?.close();
  }
  if (ctx.fatal) throw ctx.fatal;
  return {
    snapshot: snapshotId, files: ctx.files, dirs: ctx.dirs, bytes: ctx.bytes, errors: ctx.errors, setIdCleared: ctx.setId, skippedDamaged,
    durationMs: clock.now() - started,
  };
}

/** The start of every temporary name a restore makes; the rest says whose it is (see {@link removeStaleTemps}). */
const TEMP_PREFIX = '.vaultpath-restore-';

/** @throws {VaultpathError} `VP_TARGET_SPACE` when the target's file system has fewer free bytes than `needed`. */
function checkSpace(dir: string, fd: number, needed: number): void {
  let free: number;
  try {
    const st = statfsSync(`/proc/self/fd/${fd}`);
    free = (process.getuid?.() === 0 ? st.bfree : st.bavail) * st.bsize;
  } catch {
    return; // no statfs here: the first ENOSPC stops the restore instead
  }
  if (needed > free) {
    throw new VaultpathError('VP_TARGET_SPACE', `The restore target ${dir} has ${mib(free)} free; the restore needs ${mib(needed)}. Free space there or restore elsewhere; nothing was written.`);
  }
}

const mib = (n: number): string => `${(n / 1024 / 1024).toFixed(1)} MiB`;

const EUID = process.geteuid?.();
const STALE_TEMP = /^\.vaultpath-restore-([0-9a-f]{8})-(\d+)-/;

/**
 * Removes from folder `dir` the temporary files of restores killed on this host (their pid is in the name and the
 * process is gone): only files and links this user owns, by unlinkat on the folder's descriptor. A restore still
 * running keeps its files (its process is alive).
 */
function removeStaleTemps(ctx: RestoreContext, dir: Dir): void {
  let names: Buffer[];
  try {
    names = ctx.fs.list(dir.fd);
  } catch {
    return;
  }
  for (const name of names) {
    if (name.length < TEMP_PREFIX.length || name.toString('latin1', 0, TEMP_PREFIX.length) !== TEMP_PREFIX) continue;
    const m = STALE_TEMP.exec(name.toString('latin1'));
    if (!m || m[1] !== HOST_TAG || !isGone(Number(m[2]))) continue;
    try {
      // Only what a restore of this user made: its own files and links. A user's file that merely has such a name
      // (the prefix is reserved, but a name cannot be owned) is not this user's to remove.
      const st = ctx.fs.stat(dir.fd, name);
      const type = st.mode & constants.S_IFMT;
      if ((type !== constants.S_IFREG && type !== constants.S_IFLNK) || (EUID !== undefined && st.uid !== EUID)) continue;
      ctx.fs.unlink(dir.fd, name, false);
    } catch {
      // gone already, or not ours to remove: left as it is
    }
  }
}

interface RestoreContext {
  readonly vault: Vault;
  readonly index: VaultIndex;
  readonly cache: PackCache;
  readonly include: ((path: string) => boolean) | undefined;
  readonly signal: AbortSignal | undefined;
  readonly fs: FsAt;
  /** The addon's whole-file writer, or `null` to write small files with Node's calls. */
  readonly writer: ReturnType<typeof nativeWriter>;
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
  readonly openBlob: BlobOpener | null;
  /** The addon's blob writer (opened, checked and written to the file on the thread pool), or `null`. */
  readonly writeBlob: BlobWriter | null;
  readonly openDirect: typeof openDirect;
  /** File restores under way. */
  readonly pending: Set<Promise<void>>;
}

/** Files restored at once: their opens, writes and renames overlap on the thread pool. */
const FILES_IN_FLIGHT = 8;
/** Small files restored at once by the addon (each at most {@link SMALL_FILE} bytes): a few batches' worth. */
const SMALL_FILES_IN_FLIGHT = 32;
/** Chunks of one large file being opened and written by the addon at once. */
const CHUNKS_IN_FLIGHT = 4;
/** Folder descriptors past which the walk waits for files in flight: the deepest path plus room for the rest. */
const DIR_BUDGET = 1024 + 512;

/**
 * A folder of the restore: made (or found) and opened on first need from its parent's descriptor, held open while
 * its listing is walked or files are written into it, then given its mode and times through that descriptor and
 * closed. `refs` counts the walk (while listing it), each file in flight in it, and each child folder still open.
 */
class Dir {
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
const unsafe = (what: string): string => `VP_UNSAFE_PATH: ${what}; it was not followed`;

/**
 * Makes folder `dir` in its parent (mode 0700 until its own is set at the end), or accepts a real folder already
 * there, and opens it; false (reported) when that cannot be done safely. Synchronous: descriptor calls on a local
 * file system cost less than a thread-pool hand-off, and concurrent files in one new folder then cannot race to it.
 */
function ensureDir(ctx: RestoreContext, dir: Dir): boolean {
  if (dir.opened) return dir.fd >= 0;
  if (dir.failed) return false;
  const parent = dir.parent!;
  const fail = (reason: string): false => {
    dir.failed = true;
    ctx.errors.push({ path: dir.rel, reason });
    return false;
  };
  if (!ensureDir(ctx, parent)) {
    dir.failed = true;
    return false;
  }
  let made = false;
  try {
    ctx.fs.mkdir(parent.fd, dir.name!, 0o700);
    made = true;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'EEXIST') return fail(`could not create the folder (${code})`);
  }
  let fd: number;
  try {
    fd = ctx.fs.openDir(parent.fd, dir.name!);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    // O_DIRECTORY|O_NOFOLLOW says ENOTDIR or ELOOP for a link, depending on the call: what is there tells which.
    let there: number | undefined;
    try {
      there = ctx.fs.stat(parent.fd, dir.name!).mode & constants.S_IFMT;
    } catch {
      there = undefined;
    }
    const link = there === constants.S_IFLNK || (there === undefined && code === 'ELOOP');
    if (made) return fail(unsafe(`the folder was replaced by ${link ? 'a symbolic link' : code === 'ENOTDIR' ? 'a file' : `something else (${code})`} right after it was made`));
    if (link) return fail('a symbolic link is in the way; it is not followed');
    if (code === 'ENOTDIR') return fail('a file is in the way of a folder');
    return fail(`could not open the folder (${code})`);
  }
  if (made) {
    // A folder just made is ours; another user's folder moved into its place between mkdirat and openat is not.
    const st = ctx.fs.stat(fd, null);
    const uid = process.geteuid?.();
    if (uid !== undefined && st.uid !== uid) {
      closeQuietly(fd);
      return fail(unsafe(`the folder was replaced by another user's folder (uid ${st.uid}) right after it was made`));
    }
  }
  dir.fd = fd;
  dir.opened = true;
  ctx.open.add(dir);
  if (!made && ctx.sweep) removeStaleTemps(ctx, dir);
  return true;
}

/** Drops one reference to `dir`; the last one sets its mode and times through its descriptor and closes it. */
function release(ctx: RestoreContext, dir: Dir): void {
  for (let d: Dir | undefined = dir; d && d.parent && --d.refs === 0; d = d.parent) {
    if (d.fd >= 0) {
      ctx.dirs++;
      try {
        fchmodSync(d.fd, keptMode(ctx, d.node!, d.rel));
        ctx.fs.setTimes(d.fd, BigInt(d.node!.mtimeNs));
      } catch (e) {
        ctx.errors.push({ path: d.rel, reason: `could not set mode and times (${(e as NodeJS.ErrnoException).code})` });
      }
      closeQuietly(d.fd);
      d.fd = -1;
      ctx.open.delete(d);
    }
    d.opened = true; // nothing more is made or opened in it
  }
}

/** The permission bits to restore for `node`: set-user-ID and set-group-ID cleared (counted), the sticky bit kept. */
function keptMode(ctx: RestoreContext, node: TreeNode, rel: string): number {
  const mode = node.mode & 0o7777;
  if ((mode & 0o6000) === 0) return mode;
  ctx.setId.count++;
  if (ctx.setId.paths.length < SETID_PATHS_SHOWN) ctx.setId.paths.push(rel);
  return mode & ~0o6000;
}

/** Where chunk `idHex` is stored, or a {@link RestoreFileError} when the index does not have it as data. */
function locate(ctx: RestoreContext, idHex: string): [BlobLocation, Buffer] {
  const id = Buffer.from(idHex, 'hex');
  const location = ctx.index.get(id);
  if (!location || location.type !== ObjectType.data) throw new RestoreFileError(`chunk ${idHex} is not in the vault's index`);
  return [location, id];
}

/** The plaintext of data chunk `id`, stored at `location`: read from its pack, opened and checked. */
async function readChunk(ctx: RestoreContext, [location, id]: [BlobLocation, Buffer]): Promise<Buffer> {
  if (ctx.openBlob) return ctx.cache.withPack(location, (fd) => ctx.openBlob!(fd, location, id));
  const sealed = await ctx.cache.read(location);
  try {
    return ctx.vault.openBlobAt(location, id, sealed);
  } finally {
    ctx.cache.recycle(sealed); // opening decrypts into a buffer of its own: the sealed bytes are no longer needed
  }
}

/**
 * Files up to this size are written whole from memory: by the addon's writer on the thread pool, or without it
 * with synchronous calls (the promise API costs more than the writes).
 */
const SMALL_FILE = 1024 * 1024;

/** Whether `code` says the target's file system is full: the restore stops (see {@link stopFull}). */
const isFull = (code: string | undefined): boolean => code === 'ENOSPC' || code === 'EDQUOT';

/** Stops the restore at the first full disk: one `VP_TARGET_SPACE`, thrown once the files in flight settle. */
function stopFull(ctx: RestoreContext, rel: string, code: string): void {
  ctx.fatal ??= new VaultpathError('VP_TARGET_SPACE', `The restore target ran out of space (${code}) while writing ${rel}; the restore stopped there. Free space on the target and restore again.`);
}

/** Records the failure of file `rel`: a full target stops the restore instead. */
function fileFailed(ctx: RestoreContext, rel: string, e: unknown): void {
  const code = (e as NodeJS.ErrnoException).code;
  if (isFull(code)) return stopFull(ctx, rel, code!);
  ctx.errors.push({
    path: rel,
    reason: e instanceof RestoreFileError || e instanceof VaultpathError ? e.message : typeof code === 'string' ? code : String(e),
  });
}

function done(ctx: RestoreContext, bytes: number): void {
  ctx.files++;
  ctx.bytes += bytes;
  ctx.progress?.({ files: ctx.files, bytes: ctx.bytes });
}

/** Fails with a {@link RestoreFileError} when a folder is at `name` in `dir` (a file never replaces a folder). */
function refuseFolder(ctx: RestoreContext, dir: Dir, name: Buffer): void {
  let mode: number;
  try {
    mode = ctx.fs.stat(dir.fd, name).mode;
  } catch {
    return;
  }
  if ((mode & constants.S_IFMT) === constants.S_IFDIR) throw new RestoreFileError('a folder is in the way of a file');
}

/**
 * Fails with a {@link RestoreFileError} (VP_UNSAFE_PATH) unless `temp` in `dir` is still the file open as `fd`: a
 * user who swapped it for a link or another file gets nothing renamed into place.
 */
function checkStillOurs(ctx: RestoreContext, dir: Dir, temp: Buffer, fd: number): void {
  const mine = fstatSync(fd, { bigint: true });
  let there;
  try {
    there = ctx.fs.stat(dir.fd, temp);
  } catch {
    there = undefined;
  }
  if (!there || there.dev !== mine.dev || there.ino !== mine.ino) {
    throw new RestoreFileError(SWAPPED, true);
  }
}

const SWAPPED = unsafe('the temporary file was replaced (by a link or another file) while it was written');
/** The folder is held open, so a temporary file missing at the rename was moved away or removed by someone else. */
const MOVED = unsafe('the temporary file was moved away or removed while it was written');

/** Renames `temp` over `name` in `dir`: a temporary file gone by then (ENOENT) was taken by someone else. */
function renameIntoPlace(ctx: RestoreContext, dir: Dir, temp: Buffer, name: Buffer): void {
  try {
    ctx.fs.rename(dir.fd, temp, name);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new RestoreFileError(MOVED, true);
    throw e;
  }
}

/** Removes temporary file `temp` of `dir` after a failure, unless it was swapped (then what is there is not ours). */
function removeTemp(ctx: RestoreContext, dir: Dir, temp: Buffer, e: unknown): void {
  if (e instanceof RestoreFileError && e.swapped) return;
  try {
    ctx.fs.unlink(dir.fd, temp, false);
  } catch {
    // not created
  }
}

/** Restores a file of at most {@link SMALL_FILE} bytes without holes, in one go once all its chunks are verified. */
async function restoreSmallFile(ctx: RestoreContext, node: TreeNode, dir: Dir, name: Buffer, rel: string): Promise<void> {
  const data: Buffer[] = [];
  try {
    for (const idHex of node.content!) data.push(await readChunk(ctx, locate(ctx, idHex)));
  } catch (e) {
    if ((e as VaultpathError).code === 'VP_ABORTED') throw e;
    ctx.errors.push({ path: rel, reason: e instanceof RestoreFileError || e instanceof VaultpathError ? e.message : String(e) });
    return;
  }
  const length = data.reduce((n, b) => n + b.length, 0);
  if (length !== node.size) {
    ctx.errors.push({ path: rel, reason: `the snapshot's chunks hold ${length} bytes, the file needs ${node.size}` });
    return;
  }
  if (ctx.fatal) return;
  const temp = tempName(ctx);
  const mode = keptMode(ctx, node, rel);
  if (ctx.writer) {
    // One thread-pool job per batch of files: the event loop never waits on the journal, and files overlap.
    const code = await ctx.writer(dir.fd, temp, name, data, mode, BigInt(node.mtimeNs));
    if (code === undefined) done(ctx, length);
    else if (isFull(code)) stopFull(ctx, rel, code);
    else ctx.errors.push({ path: rel, reason: code === 'EISDIR' ? 'a folder is in the way of a file' : code === 'VP_UNSAFE_PATH' ? SWAPPED : code === 'ENOENT' ? MOVED : code });
    return;
  }
  let fd: number | undefined;
  try {
    refuseFolder(ctx, dir, name);
    fd = ctx.fs.create(dir.fd, temp, 0o600);
    let at = 0;
    for (const b of data) for (let o = 0; o < b.length; ) {
      const n = writeSync(fd, b, o, b.length - o, at);
      o += n;
      at += n;
    }
    fchmodSync(fd, mode);
    ctx.fs.setTimes(fd, BigInt(node.mtimeNs));
    checkStillOurs(ctx, dir, temp, fd);
    closeSync(fd);
    fd = undefined;
    renameIntoPlace(ctx, dir, temp, name);
    done(ctx, length);
  } catch (e) {
    if (fd !== undefined) closeQuietly(fd);
    removeTemp(ctx, dir, temp, e);
    fileFailed(ctx, rel, e);
  }
}

async function restoreFile(ctx: RestoreContext, node: TreeNode, dir: Dir, name: Buffer, rel: string): Promise<void> {
  if (node.size! <= SMALL_FILE && !node.holes) return restoreSmallFile(ctx, node, dir, name, rel);
  const temp = tempName(ctx);
  let fd: number | undefined;
  /** The file opened again for direct I/O: the addon writes the chunks' whole pages through it. */
  let direct: Awaited<ReturnType<typeof openDirect>>;
  const inFlight: Promise<void>[] = [];
  try {
    refuseFolder(ctx, dir, name);
    fd = ctx.fs.create(dir.fd, temp, 0o600);
    // Through /proc/self/fd/<fd>: the very file created above, whatever its name points to by now.
    if (ctx.writeBlob) direct = await ctx.openDirect(fd);
    const file = fd;
    const target = { fd: file, direct: direct?.fd ?? -1 };
    const size = node.size!;
    // Data regions are [0, size) minus the holes, in order; the chunks fill them one after another.
    const regions: [number, number][] = [];
    let pos = 0;
    for (const [offset, length] of node.holes ?? []) {
      if (offset > pos) regions.push([pos, offset]);
      pos = offset + length;
    }
    if (pos < size) regions.push([pos, size]);
    let r = 0;
    let at = regions[0]?.[0] ?? 0;
    let written = 0;
    /** Counts `n` bytes written at `at`, moving to the next data region when this one is full. */
    const advance = (n: number, region: [number, number]): void => {
      written += n;
      at += n;
      if (at === region[1]) {
        r++;
        at = regions[r]?.[0] ?? at;
      }
    };
    for (const idHex of node.content!) {
      throwIfAborted(ctx.signal);
      if (ctx.fatal) throw ctx.fatal;
      const chunk = locate(ctx, idHex);
      // With the addon, a chunk that falls inside one data region goes from its pack to the file on the thread
      // pool, a few at once; its plaintext length is the stored length less the envelope (checked when opened).
      if (ctx.writeBlob) {
        const [location, id] = chunk;
        const length = location.length - BLOB_OVERHEAD;
        const region = regions[r];
        if (location.codec === 0 && length > 0 && region && at + length <= region[1]) {
          const position = at;
          const p = ctx.cache.withPack(location, (pack) => ctx.writeBlob!(pack, location, id, target, position));
          p.catch(() => undefined); // awaited below, in order; this only keeps an early failure from counting as unhandled
          inFlight.push(p);
          if (inFlight.length >= CHUNKS_IN_FLIGHT) await inFlight.shift();
          advance(length, region);
          continue;
        }
      }
      let data = await readChunk(ctx, chunk);
      while (data.length > 0) {
        const region = regions[r];
        if (!region) throw new RestoreFileError('the snapshot lists more data than the file size allows');
        const n = Math.min(data.length, region[1] - at);
        await writeFully(file, data.subarray(0, n), at);
        data = data.subarray(n);
        advance(n, region);
      }
    }
    while (inFlight.length > 0) await inFlight.shift();
    throwIfAborted(ctx.signal); // nothing is renamed into place once the restore is aborted
    const expected = regions.reduce((s, [a, b]) => s + (b - a), 0);
    if (written !== expected) throw new RestoreFileError(`the snapshot's chunks hold ${written} bytes, the file needs ${expected}`);
    await ftruncate(file, size); // trailing holes stay holes
    await direct?.close();
    direct = undefined;
    fchmodSync(file, keptMode(ctx, node, rel));
    ctx.fs.setTimes(file, BigInt(node.mtimeNs));
    checkStillOurs(ctx, dir, temp, file);
    fd = undefined;
    await closeFd(file);
    renameIntoPlace(ctx, dir, temp, name);
    done(ctx, size);
  } catch (e) {
    // The addon may still be writing to the file's descriptor: close it only once nothing can, so a later file
    // that gets the same number never receives these bytes.
    await Promise.allSettled(inFlight);
    await direct?.close().catch(() => undefined);
    if (fd !== undefined) closeQuietly(fd);
    removeTemp(ctx, dir, temp, e);
    if ((e as VaultpathError).code === 'VP_ABORTED') throw e;
    if (e === ctx.fatal) return;
    fileFailed(ctx, rel, e);
  }
}

function restoreLink(ctx: RestoreContext, node: TreeNode, dir: Dir, name: Buffer, rel: string): void {
  const temp = tempName(ctx);
  try {
    ctx.fs.symlink(node.linkTarget!, dir.fd, temp);
    renameIntoPlace(ctx, dir, temp, name);
    ctx.files++;
  } catch (e) {
    removeTemp(ctx, dir, temp, e);
    const code = (e as NodeJS.ErrnoException).code;
    if (isFull(code)) return stopFull(ctx, rel, code!);
    ctx.errors.push({ path: rel, reason: e instanceof RestoreFileError ? e.message : `could not create the link (${code})` });
  }
}

async function writeFully(fd: number, data: Uint8Array, position: number): Promise<void> {
  for (let o = 0; o < data.length; ) {
    const { bytesWritten } = await writeAt(fd, data, o, data.length - o, position + o);
    o += bytesWritten;
  }
}

class RestoreFileError extends Error {
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
function tempName(ctx: RestoreContext): Buffer {
  return Buffer.from(`${ctx.tempPrefix}${(ctx.temps++).toString(36)}`);
}
