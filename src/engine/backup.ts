/**
 * `backup()`: the data path from folders to a snapshot.
 *
 *   scan (totals) → scratch sized and checked → index loaded, lock taken (orphan packs adopted when an earlier run
 *   left its lock) → for each folder, depth first:
 *   list → rules → [unchanged since the parent snapshot? reuse] → read (data regions only) → chunk → id →
 *   dedup → seal → pack → scratch → store → index → trees → snapshot
 *
 * Write ordering (FORMAT.md §12): the snapshot is written only after every pack and index object it references has
 * been acknowledged, so an interrupted backup never leaves a snapshot pointing at missing data, and earlier
 * snapshots are never touched. Packs and index objects written before an interruption are found again by the next
 * run (the index, and adoption of packs no index lists) and not uploaded again. A run holds a shared lock (FORMAT.md
 * §11) from before its first pack until its snapshot is written; the vault's packs are listed for adoption only when
 * an earlier run's lock is still there, and abandoned locks are then removed (repo/lock.ts).
 *
 * Files that fail (unreadable, vanished, changed while read) are reported per file in the backup's report and
 * counted as warnings; the snapshot is then marked `warnings` instead of `complete`.
 *
 * A backup reads exactly what it scanned. Folders are entered through descriptors (scan/folder.ts), each checked to
 * be the folder the listing saw; files are opened through their folder's descriptor with O_NOFOLLOW and O_NONBLOCK
 * and checked by fstat (or by the addon's sealer, before it reads a byte) to be the regular file of the device and
 * inode the scan saw. Anything else found in its place (a symbolic link, a FIFO, a device, another file or folder)
 * is reported as `replaced` and left out: no other file's bytes are ever stored under its name, and no open waits
 * on a FIFO. A sparse file's data regions are asked of the descriptor being read. Names that are not UTF-8 are
 * stored as `nameRaw`.
 *
 * Memory stays bounded whatever the file sizes: a file is read in 1 MiB pieces, a chunk is at most 8 MiB, sealed
 * chunks wait for at most about 2 MiB of appends to the scratch cache (packs are assembled there, pack-uploader.ts),
 * and the walk holds one folder listing per level of depth.
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import { type BigIntStats, closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { type FileHandle, lstat, open } from 'node:fs/promises';
import { hostname as osHostname } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { VaultpathError, throwIfAborted } from '../errors.js';
import { ObjectType } from '../crypto/object-type.js';
import { type SealedObject, sealBlob } from '../crypto/envelope.js';
import { chunkStream } from '../chunk/fastcdc.js';
import type { AttributeProbe, ProbedEntry } from '../scan/attributes.js';
import { dataExtents, defaultProbe } from '../scan/probe.js';
import { FolderLister, type OpenFolder, replaced, sameFile } from '../scan/folder.js';
import { reasonOf } from '../scan/walk.js';
import { type ScanEntry, type ScanSummary, scanTotals } from '../scan/scan.js';
import { SkippedFilesReport, defaultReportDir } from '../scan/report.js';
import { ScratchCache, scratchCapacity } from '../stage/scratch-cache.js';
import { type Clock, systemClock } from '../throttle/clock.js';
import type { Vault, VaultIndex } from '../repo/vault.js';
import { MAX_TREE_DEPTH, MAX_TREE_NODES, type Snapshot, type Tree, type TreeNode, compareNodes, encodeTree, nodeNameKey } from '../repo/tree.js';
import { type Lock, isAbandoned } from '../repo/lock.js';
import { PackUploader, TARGET_PACK_SIZE, scratchNeeded } from '../repo/pack-uploader.js';
import { Limiter } from './limit.js';
import { type ChunkSealer, SealPool } from './seal-pool.js';
import { SealBuffers } from './seal-buffers.js';
import { ReadBuffers } from './read-buffers.js';
import { type FileSealer, SEAL_BATCH, SEAL_BATCH_BYTES } from './native-seal.js';
import { type Kernels, nativeKernels } from '../native/ports.js';
import { formatBytes } from '../units.js';

const READ_SIZE = 1024 * 1024;
const PROGRAM = 'vaultpath';

export interface BackupOptions {
  /** Globs to exclude (see `scan`). */
  readonly exclude?: readonly string[];
  /** Globs a file must match to be backed up (folders are always walked). */
  readonly include?: readonly string[];
  readonly excludeFilesIn?: readonly string[];
  /**
   * The snapshot to compare with: unchanged files (same size, mtime, ctime and inode) are not read again.
   * `'latest'` takes the latest snapshot of the same paths; `null` reads everything. @default 'latest'
   */
  readonly parent?: string | null;
  /** Where packs are staged. @default `<tmpdir>/vaultpath/scratch` */
  readonly scratchDir?: string;
  /** Where the backup's report (skipped and failed files) is written. @default a new file in the reports folder */
  readonly reportPath?: string;
  /** Only decide what would be read and uploaded; read and write nothing. @default false */
  readonly dryRun?: boolean;
  /** @default defaultProbe() */
  readonly probe?: AttributeProbe;
  readonly hostname?: string;
  readonly clock?: Clock;
  readonly signal?: AbortSignal;
  /** Progress, called often; MUST NOT block. */
  readonly onProgress?: (p: BackupProgress) => void;
  /** Pack size target. @default 16 MiB */
  readonly targetPackSize?: number;
  /** Scratch cache capacity in bytes. @default 5% of the bytes to read, at least 64 MiB */
  readonly scratchCapacity?: number;
  /**
   * Worker threads that hash and seal large chunks; 0 does everything on the calling thread. Unset, the addon's
   * thread-pool jobs do it where the addon is built, else cores − 1 workers. @default the addon, or cores − 1
   */
  readonly sealWorkers?: number;
  /** The native kernels to use; `portableKernels` takes the JavaScript path everywhere. @default nativeKernels */
  readonly kernels?: Kernels;
}

export interface BackupProgress {
  readonly phase: 'scan' | 'backup' | 'finish';
  readonly files: number;
  readonly filesTotal: number;
  readonly bytesRead: number;
  /** Bytes of files processed (read or reused). */
  readonly bytesDone: number;
  readonly bytesTotal: number;
  readonly bytesNew: number;
  readonly bytesStored: number;
}

export interface BackupResult {
  /** The snapshot written (absent for a dry run). */
  readonly snapshot?: string;
  readonly parent: string | null;
  /** Snapshots passed over while finding the latest as parent, because they cannot be read (damaged), ids. */
  readonly parentSkippedDamaged: readonly string[];
  readonly status: 'complete' | 'warnings';
  readonly files: number;
  readonly dirs: number;
  /** Bytes read from the sources. */
  readonly bytesRead: number;
  /** Bytes of data not already in the vault. */
  readonly bytesNew: number;
  /** Bytes written to the vault (packs). */
  readonly bytesStored: number;
  /** Files reused unchanged from the parent snapshot, without reading. */
  readonly filesUnchanged: number;
  /** Encrypted files uploaded whole again because they changed (full backups only). */
  readonly filesFullOnly: number;
  readonly skipped: number;
  readonly warnings: number;
  readonly reportPath: string;
  readonly durationMs: number;
  /** The scratch cache's capacity and the most it ever held. */
  readonly scratch: { readonly capacity: number; readonly highWaterMark: number };
}

interface Counters {
  files: number;
  dirs: number;
  bytesRead: number;
  bytesDone: number;
  bytesNew: number;
  filesUnchanged: number;
  filesFullOnly: number;
  skipped: number;
  warnings: number;
}

/**
 * Backs up `paths` (folders) into `vault` and writes a snapshot. `vault` may be a promise of a vault still being
 * opened: the scan of the sources, which needs no key, then runs while the key is derived.
 *
 * @throws {VaultpathError} `VP_SOURCE_NOT_FOUND`, `VP_SOURCE_TOO_LARGE`, `VP_SCRATCH_SPACE` (before any data is
 *   read), store errors such as `VP_STORE_FULL` (no snapshot is written), `VP_ABORTED`.
 * @example
 * ```ts
 * const vault = await Vault.open(await LocalStore.open('/backups/vault'), passphrase);
 * const result = await backup(vault, ['/home/ann'], { exclude: ['*.tmp'], signal });
 * console.log(result.snapshot, result.bytesNew);
 * ```
 */
export async function backup(vaultOrOpening: Vault | Promise<Vault>, paths: readonly string[], options: BackupOptions = {}): Promise<BackupResult> {
  // A vault still being opened (its key being derived) is awaited only after the scan, which does not need it.
  const opening = Promise.resolve(vaultOrOpening);
  opening.catch(() => undefined); // awaited below; a failure must not surface as an unhandled rejection first
  const clock = options.clock ?? systemClock;
  const started = clock.now();
  const { signal } = options;
  const kernels = options.kernels ?? nativeKernels;
  const roots = paths.map((p) => resolve(p));
  if (roots.length === 0) throw new TypeError('"paths" expected at least one folder');
  const probe = options.probe ?? defaultProbe();
  const progress = (phase: BackupProgress['phase'], c: Counters, totals: ScanSummary, stored: number): void =>
    options.onProgress?.({
      phase,
      files: c.files,
      filesTotal: totals.files,
      bytesRead: c.bytesRead,
      bytesDone: c.bytesDone,
      bytesTotal: totals.bytesToRead,
      bytesNew: c.bytesNew,
      bytesStored: stored,
    });

  // 1. Totals first: they size the scratch cache and enforce the per-source limit before any data is read.
  const totals = await scanTotals(roots, { exclude: options.exclude, include: options.include, excludeFilesIn: options.excludeFilesIn, probe, signal });
  const c: Counters = { files: 0, dirs: 0, bytesRead: 0, bytesDone: 0, bytesNew: 0, filesUnchanged: 0, filesFullOnly: 0, skipped: 0, warnings: 0 };
  progress('scan', c, totals, 0);
  const vault = await opening;

  const reportPath =
    options.reportPath ?? join(defaultReportDir(), `backup-${new Date(started).toISOString().replace(/[:.]/g, '-')}-${randomBytes(3).toString('hex')}.jsonl`);
  // Opened once nothing before the walk can fail any more (inside the try below, which closes it on failure).
  let report: SkippedFilesReport | undefined;
  const note = async (e: ScanEntry): Promise<void> => {
    c.skipped++;
    await report!.add(e);
  };
  const warn = async (path: string, root: string, relativePath: string, reason: WarnReason, detail: string): Promise<void> => {
    c.warnings++;
    await report!.add({ root, path, relativePath, kind: 'file', decision: { kind: 'skip', reason, rule: reason }, detail });
  };

  const capacity = options.scratchCapacity ?? scratchCapacity(totals.bytesToRead);
  // A pack holds at most the target size plus one blob; the cache must hold one such pack twice (pack-uploader.ts).
  const largestPack = (options.targetPackSize ?? TARGET_PACK_SIZE) + vault.config.chunker.maxSize + 64 * 1024;
  if (!options.dryRun && capacity < scratchNeeded(largestPack)) {
    throw new VaultpathError(
      'VP_SCRATCH_SPACE',
      `A scratch cache of ${formatBytes(capacity)} cannot hold one pack of up to ${formatBytes(largestPack)} while it is assembled from the blobs staged for it; give at least ${formatBytes(scratchNeeded(largestPack))}.`,
    );
  }

  // The index, the parent snapshot and the locks are read, and this run's lock written, at once: none needs another.
  // The lock goes before any pack: one left behind tells the next backup that packs may lie outside the index.
  const locking = options.dryRun ? undefined : vault.writeLock({ time: new Date(started).toISOString(), hostname: osHostname(), pid: process.pid, exclusive: false }, { signal });
  locking?.catch(() => undefined); // awaited below
  const [index, parent, locks] = await Promise.all([
    vault.loadIndex({ signal }),
    // The parent is only a hint (which files to skip reading), so a damaged snapshot is passed over rather than
    // stopping every later backup; the ones passed over are named in the result.
    options.parent === undefined
      ? vault.latestSnapshot({ signal, paths: roots, skipDamaged: true })
      : options.parent === null
        ? undefined
        : vault.readSnapshot(options.parent, { signal }).then((snapshot) => ({ id: options.parent!, snapshot })),
    options.dryRun ? [] : vault.readLocks({ signal }),
  ]).catch(async (e: unknown) => {
    const id = await locking?.catch(() => undefined);
    if (id) await vault.deleteLock(id).catch(() => undefined); // nothing was stored
    throw e;
  });
  const lockId = await locking;
  const earlierLocks = locks.filter((l) => l.id !== lockId);
  const parentId = parent?.id ?? null;
  const parentSnapshot = parent?.snapshot;
  const parentSkippedDamaged = parent && 'skipped' in parent ? parent.skipped : [];

  const scratch = options.dryRun
    ? undefined
    : await ScratchCache.open(options.scratchDir, { capacity, signal }).catch(async (e: unknown) => {
        if (lockId) await vault.deleteLock(lockId).catch(() => undefined); // nothing was stored
        throw e;
      });
  let uploader: PackUploader | undefined;
  let pool: ChunkSealer | undefined;
  const sealBuffers = new SealBuffers(FREE_SEAL_BYTES);
  let snapshotId: string | undefined;
  try {
    report = await SkippedFilesReport.create(reportPath);
    if (earlierLocks.length > 0) await adoptAfterLocks(vault, index, earlierLocks, clock, signal);
    // A damaged index object hid the blobs it listed: the packs that hold them are adopted again (their headers
    // read), so what is still intact is reused and earlier snapshots are whole again once this run's index lands.
    else if (index.damaged.length > 0 && !options.dryRun) await vault.adoptOrphanPacks(index, { signal });
    uploader = scratch
      ? new PackUploader(vault, scratch, {
          signal,
          targetPackSize: options.targetPackSize,
          packWriter: kernels.packWriter(),
          onPackStored: () => progress('backup', c, totals, uploader!.bytesStored),
          recycle: (sealed) => sealed.parts.forEach((p) => sealBuffers.release(p)),
        })
      : undefined;
    // The addon's thread-pool jobs where it is built, else worker threads, started on the first chunk large enough
    // to need them: unchanged and small-file backups never pay for a worker.
    const usePool = !options.dryRun && options.sealWorkers !== 0;
    const sealPool = (): ChunkSealer | undefined =>
      usePool ? (pool ??= (options.sealWorkers === undefined ? kernels.chunkSealer(vault.keys, sealBuffers) : null) ?? new SealPool(vault.keys, options.sealWorkers)) : undefined;
    const ctx: WalkContext = { sealBuffers, files: new Limiter(FILES_IN_FLIGHT), oneChunkFiles: new Limiter(SEAL_BATCH * 4, { maxWeight: ONE_CHUNK_BYTES }), largeFiles: new Limiter(1), pool: sealPool, sealFile: kernels.fileSealer(vault.keys, sealBuffers), buffers: new ReadBuffers(READ_SIZE, FREE_READ_BUFFERS), vault, index, uploader, c, dryRun: options.dryRun ?? false, signal, note, warn, progress: () => progress('backup', c, totals, uploader?.bytesStored ?? 0) };

    // 2. Each root, depth first; its tree becomes one folder node of the snapshot's root tree.
    const rootNodes: TreeNode[] = [];
    const names = rootNodeNames(roots);
    for (const [i, root] of roots.entries()) {
      const lister = new FolderLister({ root, probe, exclude: options.exclude, include: options.include, excludeFilesIn: options.excludeFilesIn });
      const parentRoot = parentSnapshot ? await parentRootTree(vault, index, parentSnapshot, root, signal) : undefined;
      const top = lister.openRoot();
      let subtree: string;
      let st: BigIntStats;
      if ('fd' in top) {
        try {
          subtree = await backupFolder(ctx, lister, top, parentRoot, 1);
          st = fstatSync(top.fd, { bigint: true }); // the folder walked, not whatever is at its path now
        } finally {
          lister.close(top);
        }
      } else {
        // The root cannot be opened now (it could be scanned a moment ago): kept, empty, with a warning.
        await warnSkipped(ctx, top);
        subtree = await storeTree(ctx, []);
        st = await lstat(root, { bigint: true });
      }
      rootNodes.push({ name: names[i]!, type: 'dir', mode: Number(st.mode) & 0o7777, mtimeNs: st.mtimeNs.toString(), subtree });
    }
    rootNodes.sort(compareNodes);
    const rootTree = await storeTree(ctx, rootNodes);

    // 3. Everything the snapshot references is acknowledged before the snapshot is written.
    progress('finish', c, totals, uploader?.bytesStored ?? 0);
    if (uploader) await uploader.finish();
    await report.close();
    const status = c.warnings > 0 ? 'warnings' : 'complete';
    if (!options.dryRun) {
      const snapshot: Snapshot = {
        version: 1,
        time: new Date(started).toISOString(),
        hostname: options.hostname ?? osHostname(),
        paths: roots,
        tree: rootTree,
        parent: parentId ?? null,
        status,
        warnings: c.warnings,
        stats: { files: c.files, dirs: c.dirs, bytesRead: c.bytesRead, bytesNew: c.bytesNew, bytesStored: uploader?.bytesStored ?? 0, skipped: c.skipped },
        program: PROGRAM,
      };
      snapshotId = await vault.writeSnapshot(snapshot, { signal });
      // Everything this run stored is indexed and referenced: its lock has nothing left to tell.
      if (lockId) await vault.deleteLock(lockId).catch(() => undefined);
    }
    return {
      snapshot: snapshotId,
      parent: parentId ?? null,
      parentSkippedDamaged,
      status,
      files: c.files,
      dirs: c.dirs,
      bytesRead: c.bytesRead,
      bytesNew: c.bytesNew,
      bytesStored: uploader?.bytesStored ?? 0,
      filesUnchanged: c.filesUnchanged,
      filesFullOnly: c.filesFullOnly,
      skipped: c.skipped,
      warnings: c.warnings,
      reportPath,
      durationMs: clock.now() - started,
      scratch: { capacity: scratch?.capacity ?? 0, highWaterMark: scratch?.highWaterMark ?? 0 },
    };
  } catch (e) {
    await uploader?.settle();
    await report?.close().catch(() => undefined);
    // A run that staged no pack left nothing outside the index; one that did keeps its lock for the next backup.
    if (lockId && (uploader?.packsStaged ?? 0) === 0) await vault.deleteLock(lockId).catch(() => undefined);
    throw e;
  } finally {
    await pool?.close();
    await scratch?.close();
    sealBuffers.dispose();
  }
}

/**
 * Adopts packs no index lists, which only a run that left its lock behind (killed, failed or still running) can have
 * stored, then removes the locks found abandoned (lock.ts). Without locks the vault's packs are not listed at all.
 */
async function adoptAfterLocks(vault: Vault, index: VaultIndex, locks: readonly { id: string; lock?: Lock }[], clock: Clock, signal: AbortSignal | undefined): Promise<void> {
  await vault.adoptOrphanPacks(index, { signal });
  const now = clock.now();
  const here = osHostname();
  for (const { id, lock } of locks) {
    if (lock && isAbandoned(lock, { now, hostname: here })) await vault.deleteLock(id, { signal }).catch(() => undefined);
  }
}

/** Subfolders whose parent-snapshot trees are read ahead of the walk, per folder level. */
const TREE_READ_AHEAD = 8;
/** Files backed up at once: enough to overlap one file's open/read/close with another's hashing. */
const FILES_IN_FLIGHT = 4;
/** Chunks at least this long are hashed and sealed on a worker thread. */
const OFFLOAD_MIN = 256 * 1024;
/** Files up to this size are read with synchronous calls (see backupSmallFile). */
const SMALL_FILE = 1024 * 1024;
/**
 * Bytes of one-chunk files in flight at once (read, sealed, or waiting to be packed), besides their count (SEAL_BATCH
 * × 4): enough for four full sealing jobs. Counted in files alone, 64 files of 256 KiB held 16–20 MiB of sealed
 * bytes at the peak of a first backup; files of a few KiB are bounded by their count, as before.
 */
const ONE_CHUNK_BYTES = 4 * SEAL_BATCH_BYTES;
/** Files larger than this are backed up one at a time (memory), the others up to FILES_IN_FLIGHT at once. */
const LARGE_FILE = 8 * 1024 * 1024;
/**
 * Read buffers kept for reuse: what one large file holds at once (a chunk being cut, two in flight, one read ahead:
 * up to 3 × 8 MiB + 1 MiB) with the smaller files beside it.
 */
const FREE_READ_BUFFERS = 32;
/**
 * Bytes of sealed-blob buffers kept for reuse. Sealed chunks come back as soon as they are appended to the scratch
 * cache, so a few MiB keep the same pages in use: measured on the benchmark corpus, 8 MiB took 15 MiB off the peak
 * of a first backup against 24 MiB, in the same time (64 MiB, when whole packs were held in memory, kept 30–40 MiB
 * more for no gain).
 */
const FREE_SEAL_BYTES = 8 * 1024 * 1024;

/** Why a file or folder found by the scan is not in the snapshot: a warning of the backup's report. */
type WalkReason = 'unreadable' | 'vanished' | 'replaced' | 'too-deep';
type WarnReason = WalkReason;

interface WalkContext {
  readonly files: Limiter;
  /** Files sealed whole by the addon (one chunk each): enough in flight for several batches at once, weighed by size. */
  readonly oneChunkFiles: Limiter;
  readonly largeFiles: Limiter;
  /** The sealing workers, started on first use; undefined when sealing stays on this thread. */
  readonly pool: () => ChunkSealer | undefined;
  /** Output buffers of sealed large chunks, given back once their pack is written or the chunk is a duplicate. */
  readonly sealBuffers: SealBuffers;
  /** Reads and seals a one-chunk file off this thread (the addon); null where it is not built. */
  readonly sealFile: FileSealer | null;
  /** Read buffers of READ_SIZE bytes, reused. */
  readonly buffers: ReadBuffers;
  readonly vault: Vault;
  readonly index: VaultIndex;
  readonly uploader: PackUploader | undefined;
  readonly c: Counters;
  readonly dryRun: boolean;
  readonly signal: AbortSignal | undefined;
  readonly note: (e: ScanEntry) => Promise<void>;
  readonly warn: (path: string, root: string, relativePath: string, reason: WarnReason, detail: string) => Promise<void>;
  readonly progress: () => void;
}

/** A folder's tree in the parent snapshot: its id and its nodes (continuations included) by name. */
interface ParentTree {
  readonly id: string;
  readonly nodes: Map<string, TreeNode>;
}

/**
 * Backs up folder `relDir` and returns its tree id (hex). A folder whose every entry is unchanged since the parent
 * snapshot (the same names; files reused unchanged with the same mode and decision; subfolders with the same tree,
 * mode and mtime) keeps the parent's tree id: its tree would list the same nodes, so it is neither encoded nor
 * hashed again.
 */
/**
 * Backs up the folder open as `folder`, `depth` folder levels below the snapshot's root tree (a source root is 1),
 * and returns its tree id. Its subfolders deeper than {@link MAX_TREE_DEPTH} are left out with a warning: readers
 * refuse deeper nesting (FORMAT.md §10), so storing them would make the whole snapshot unreadable.
 */
async function backupFolder(ctx: WalkContext, lister: FolderLister, folder: OpenFolder, parentTree: ParentTree | undefined, depth: number): Promise<string> {
  throwIfAborted(ctx.signal);
  const parent = parentTree?.nodes;
  const entries = await lister.listOpen(folder);
  // The parent snapshot's trees of the subfolders are read a few folders ahead, so their reads overlap the walk
  // instead of each folder waiting for its own.
  const dirs = parent ? entries.filter((e) => e.kind === 'dir' && e.decision.kind !== 'skip') : [];
  const parentTrees: (Promise<ParentTree | undefined> | undefined)[] = [];
  let readAhead = 0;
  let dirIndex = 0;
  const parentTreeOf = (i: number): Promise<ParentTree | undefined> | undefined => {
    for (; readAhead < Math.min(i + TREE_READ_AHEAD, dirs.length); readAhead++) {
      const previous = parent?.get(nameKeyOf(dirs[readAhead]!));
      const read = previous?.type === 'dir' && previous.subtree ? readParentTree(ctx, previous.subtree) : undefined;
      read?.catch(() => undefined); // awaited in turn below; an abort must not surface as an unhandled rejection first
      parentTrees.push(read);
    }
    const read = parentTrees[i];
    parentTrees[i] = undefined;
    return read;
  };
  // Files of this folder are backed up several at a time; their nodes come back in name order for the tree.
  const slots: (TreeNode | Promise<TreeNode | undefined>)[] = [];
  // Whether every node so far is the parent tree's node of the same name, unchanged.
  let same = parent !== undefined;
  try {
    for (const e of entries) {
      const key = nameKeyOf(e);
      if (e.decision.kind === 'skip') {
        // Entries that could not be read or vanished are failures (warnings); the others were skipped by the rules.
        // A folder that could not be listed is kept, empty.
        await warnSkipped(ctx, e);
        continue;
      }
      const stats = e.stats!;
      if (e.kind === 'dir') {
        const parentChildren = parent ? await parentTreeOf(dirIndex++) : undefined;
        if (depth + 1 > MAX_TREE_DEPTH) {
          await ctx.warn(e.path, e.root, e.relativePath, 'too-deep', `VP_FORMAT_LIMIT: nested deeper than ${MAX_TREE_DEPTH} folders, the most the format lets readers follow`);
          same = false;
          continue;
        }
        // Entered through this folder's descriptor, and only if it is still the folder the scan saw: one swapped
        // for a link since is not followed, and left out.
        const child = lister.openChild(folder, e);
        let subtree: string;
        if ('fd' in child) {
          try {
            subtree = await backupFolder(ctx, lister, child, parentChildren, depth + 1);
          } finally {
            lister.close(child);
          }
        } else {
          await warnSkipped(ctx, child);
          if (child.decision.kind === 'skip' && child.decision.reason === 'replaced') {
            same = false;
            continue;
          }
          subtree = await storeTree(ctx, []); // it vanished or cannot be listed: kept, empty, as a failed listing is
        }
        ctx.c.dirs++;
        const node: TreeNode = { ...nodeName(e), type: 'dir', mode: stats.mode & 0o7777, mtimeNs: stats.mtimeNs.toString(), subtree };
        if (same) {
          const previous = parent!.get(key);
          same = previous?.type === 'dir' && previous.subtree === subtree && previous.mode === node.mode && previous.mtimeNs === node.mtimeNs;
        }
        slots.push(node);
      } else if (e.kind === 'file') {
        const previous = parent?.get(key);
        const base = fileBase(e);
        // Unchanged files are decided here, at once: no task, no promise, for the bulk of an incremental backup.
        const reused = reuseUnchanged(ctx, base, stats.size, previous);
        if (reused) {
          same &&= previous!.mode === base.mode && previous!.decision === base.decision;
          slots.push(reused);
          continue;
        }
        same = false;
        // A large file holds up to a few chunks of 8 MiB in flight: one at a time, beside the small ones. A file that
        // is one chunk for the addon holds less than the chunker's minimum: many run at once, sealed a batch per job.
        const run = (): Promise<TreeNode | undefined> => backupFile(ctx, e, base, previous);
        const oneChunk = isOneChunkFile(ctx, stats.size, e.decision.kind);
        const task = oneChunk ? ctx.oneChunkFiles.run(run, stats.size) : ctx.files.run(stats.size > LARGE_FILE ? () => ctx.largeFiles.run(run) : run);
        task.catch(() => undefined); // observed below; a failure must not surface as an unhandled rejection first
        slots.push(task);
      }
    }
  } catch (e) {
    // A failing subfolder or entry fails the backup, but only once this folder's running files have settled: none
    // may still add to the uploader after it is settled.
    await Promise.allSettled(slots);
    throw e;
  }
  const settled = await Promise.allSettled(slots);
  const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
  const nodes = settled.map((r) => (r as PromiseFulfilledResult<TreeNode | undefined>).value).filter((n): n is TreeNode => n !== undefined);
  if (same && nodes.length === parent!.size) return parentTree!.id;
  return storeTree(ctx, nodes);
}

/** The last name of an entry's relative path. */
function nameOf(e: ScanEntry): string {
  return e.relativePath.slice(e.relativePath.lastIndexOf('/') + 1);
}

/** A node's name fields for entry `e`: `name`, or `nameRaw` (base64 of the bytes) for a name that is not UTF-8. */
function nodeName(e: ScanEntry): { name: string } | { nameRaw: string } {
  return e.nameRaw ? { nameRaw: e.nameRaw.toString('base64') } : { name: nameOf(e) };
}

/** The key of entry `e`'s node in a parent tree's map (nodeNameKey). */
function nameKeyOf(e: ScanEntry): string {
  // A name that is UTF-8 is its own key (nodeNameKey); the key reads the name fields only.
  return e.nameRaw ? nodeNameKey({ nameRaw: e.nameRaw.toString('base64') } as TreeNode) : nameOf(e);
}

/**
 * Reports an entry the rules or the walk left out: a failure (unreadable, vanished, replaced since the scan) as a
 * warning, anything else as skipped by the rules.
 */
async function warnSkipped(ctx: WalkContext, e: ScanEntry): Promise<void> {
  if (e.decision.kind !== 'skip') return;
  const reason = e.decision.reason;
  if (reason === 'unreadable' || reason === 'vanished' || reason === 'replaced') await ctx.warn(e.path, e.root, e.relativePath, reason, e.detail ?? '');
  else await ctx.note(e);
}

/** A file node's fields from the scan, all but its size and content. */
type FileBase = Omit<TreeNode, 'size' | 'content'> & { readonly decision: ScanEntry['decision']['kind'] };

function fileBase(e: ScanEntry): FileBase {
  const stats = e.stats!;
  const mode = stats.mode & 0o7777;
  const decision = e.decision.kind;
  // Two literals rather than a spread of nodeName(e): this runs for every file of every backup, and a spread here
  // cost more than the rest of an unchanged file's handling.
  if (e.nameRaw) {
    const nameRaw = e.nameRaw.toString('base64');
    return { nameRaw, type: 'file', mode, mtimeNs: stats.mtimeNs.toString(), ctimeNs: stats.ctimeNs.toString(), inode: stats.ino.toString(), decision };
  }
  return { name: nameOf(e), type: 'file', mode, mtimeNs: stats.mtimeNs.toString(), ctimeNs: stats.ctimeNs.toString(), inode: stats.ino.toString(), decision };
}

/**
 * The parent snapshot's node for a file unchanged since (same size, mtime, ctime and inode) whose chunks are all
 * still indexed, counted as done; undefined when the file must be read.
 */
function reuseUnchanged(ctx: WalkContext, base: FileBase, size: number, previous: TreeNode | undefined): TreeNode | undefined {
  if (
    previous?.type !== 'file' ||
    previous.size !== size ||
    previous.mtimeNs !== base.mtimeNs ||
    previous.ctimeNs !== base.ctimeNs ||
    previous.inode !== base.inode ||
    !previous.content!.every((hex) => ctx.index.hasHex(hex) || ctx.uploader?.has(Buffer.from(hex, 'hex')))
  ) {
    return undefined;
  }
  ctx.c.files++;
  ctx.c.filesUnchanged++;
  ctx.c.bytesDone += size;
  ctx.progress();
  return { ...base, size, content: previous.content, ...(previous.holes ? { holes: previous.holes } : {}) };
}

/** True when the addon seals the file whole, as one chunk: the walk and the file's backup must agree on this. */
function isOneChunkFile(ctx: WalkContext, size: number, decision: ScanEntry['decision']['kind']): boolean {
  return ctx.sealFile !== null && !ctx.dryRun && decision !== 'backup-sparse' && size > 0 && size <= SMALL_FILE && size < ctx.vault.config.chunker.minSize;
}

/** Backs up one file that must be read; returns its node, or undefined when it could not be read (a warning). */
async function backupFile(ctx: WalkContext, e: ScanEntry, base: FileBase, previous: TreeNode | undefined): Promise<TreeNode | undefined> {
  const stats = e.stats!;
  const c = ctx.c;
  const decision = base.decision;
  const fullOnly = decision === 'backup-full';
  if (fullOnly && previous?.type === 'file') c.filesFullOnly++;
  if (ctx.dryRun) {
    c.files++;
    c.bytesRead += stats.size;
    c.bytesDone += stats.size;
    return { ...base, size: stats.size, content: [] };
  }

  if (stats.size <= SMALL_FILE && decision !== 'backup-sparse') {
    // A file below the chunker's minimum is one chunk: read, identified and sealed in one job off this thread.
    if (isOneChunkFile(ctx, stats.size, decision)) return backupOneChunkFile(ctx, ctx.sealFile!, e, base, fullOnly);
    return backupSmallFile(ctx, e, base, fullOnly);
  }
  let file: FileHandle;
  try {
    file = await open(e.access ?? e.path, OPEN_FLAGS);
  } catch (err) {
    await openFailed(ctx, e, err);
    return undefined;
  }
  try {
    const other = sameFile(await file.stat({ bigint: true }).catch((err: unknown) => {
      throw new SourceReadError(err);
    }), stats);
    if (other !== undefined) {
      await reportReplaced(ctx, e, other);
      return undefined;
    }
    const size = stats.size;
    // Sparse files: read the data regions only; the holes are recorded, never stored. Asked of the descriptor being
    // read: another file renamed over the path meanwhile cannot lend its holes.
    const extents = decision === 'backup-sparse' ? dataExtents(file.fd) : undefined;
    const regions: [number, number][] = extents ?? [[0, size]];
    const holes: [number, number][] = [];
    if (extents) {
      let pos = 0;
      for (const [start, end] of extents) {
        if (start > pos) holes.push([pos, start - pos]);
        pos = end;
      }
      if (pos < size) holes.push([pos, size - pos]);
    }
    const content: string[] = [];
    let dataBytes = 0;
    // Read buffers go back for reuse once every chunk that has bytes in them is settled (hashed, sealed, stored):
    // chunks settle in stream order, so a buffer is free when the settled chunks reach its end.
    const held: { buf: Buffer; end: number }[] = [];
    const source = readRegions(file, regions, ctx.buffers, ctx.signal, (buf) => {
      c.bytesRead += buf.length;
      dataBytes += buf.length;
      held.push({ buf, end: dataBytes });
    });
    const releaseUpTo = (offset: number): void => {
      while (held.length > 0 && held[0]!.end <= offset) ctx.buffers.release(held.shift()!.buf);
    };
    // Large chunks are hashed (and, for a new file, sealed speculatively: a duplicate's seal is dropped) on the
    // worker, small ones here, where a message would cost more than the work. At most two chunks per file are in
    // flight, in order.
    const inFlight: { length: number; end: number; result: Promise<{ id: Buffer; sealed?: SealedObject; parts?: readonly Buffer[] }> }[] = [];
    // A file the parent snapshot had is probably changed in a few places: its chunks are identified on the worker
    // and only the new ones sealed. A new file's chunks are probably new: identified and sealed in one go.
    const speculate = fullOnly || previous?.type !== 'file';
    const settle = async (): Promise<void> => {
      const { length, end, result } = inFlight.shift()!;
      const { id, sealed, parts } = await result;
      content.push(id.toString('hex'));
      let used = false;
      await storeChunk(ctx, id, length, fullOnly, () => {
        used = true;
        if (sealed) return sealed;
        // Identified only (a changed file, whose chunks are mostly known): seal what turned out new. A chunk known
        // at dispatch stays known (ids are only ever added), so one sealed here was identified on the worker.
        if (!parts) throw new Error(`internal: new chunk ${id.toString('hex')} was not sealed`);
        return ctx.pool()!.seal(ObjectType.data, id, parts);
      });
      if (sealed && !used) for (const p of sealed.parts) ctx.sealBuffers.release(p); // sealed ahead, a duplicate
      releaseUpTo(end);
      ctx.progress();
    };
    for await (const chunk of chunkStream(source, ctx.vault.keys.gearTable, ctx.vault.config.chunker, { signal: ctx.signal })) {
      let result: Promise<{ id: Buffer; sealed?: SealedObject; parts?: readonly Buffer[] }>;
      const pool = chunk.length >= OFFLOAD_MIN ? ctx.pool() : undefined;
      if (pool) {
        const parts = chunk.parts;
        result = speculate ? pool.process(ObjectType.data, parts) : pool.identify(parts).then(({ id }) => ({ id, parts }));
      } else {
        const id = ctx.vault.ids.id(chunk.parts);
        const isNew = fullOnly || (!ctx.index.has(id) && !ctx.uploader!.has(id));
        result = Promise.resolve({ id, sealed: isNew ? sealBlob(ctx.vault.keys, ObjectType.data, id, chunk.parts) : undefined });
      }
      result.catch(() => undefined); // awaited in order by settle()
      inFlight.push({ length: chunk.length, end: chunk.offset + chunk.length, result });
      if (inFlight.length >= 2) await settle();
    }
    while (inFlight.length > 0) await settle();
    releaseUpTo(Number.POSITIVE_INFINITY);
    const after = await file.stat({ bigint: true });
    const holeBytes = holes.reduce((s, [, l]) => s + l, 0);
    c.files++;
    if (changedWhileRead(stats, after, dataBytes + holeBytes)) await ctx.warn(e.path, e.root, e.relativePath, 'unreadable', CHANGED_WHILE_READ);
    return { ...base, size: dataBytes + holeBytes, content, ...(holes.length > 0 ? { holes } : {}) };
  } catch (err) {
    // Only a failure to read the source is the file's problem; anything else (the vault, the scratch cache, an
    // abort) fails the backup and is never reported as an unreadable source file.
    if (!(err instanceof SourceReadError)) throw err;
    const code = (err.cause as NodeJS.ErrnoException).code ?? 'error';
    await ctx.warn(e.path, e.root, e.relativePath, 'unreadable', `${code}: reading failed`);
    return undefined;
  } finally {
    await file.close().catch(() => undefined);
  }
}

/**
 * Backs up a file of at most {@link SMALL_FILE} bytes with synchronous reads: for small files the promise-based
 * file API costs far more than the reads (measured here: 4 to 9 s of overhead per 10,000 files, against 0.2 s for
 * open/read/fstat/close done synchronously, about 20 µs per file on the calling thread).
 */
async function backupSmallFile(ctx: WalkContext, e: ScanEntry, base: FileBase, fullOnly: boolean): Promise<TreeNode | undefined> {
  const stats = e.stats!;
  const c = ctx.c;
  let buf: Buffer;
  let after: BigIntStats;
  let fd: number;
  try {
    fd = openSync(e.access ?? e.path, OPEN_FLAGS);
  } catch (err) {
    await openFailed(ctx, e, err);
    return undefined;
  }
  let other: string | undefined;
  try {
    other = sameFile(fstatSync(fd, { bigint: true }), stats);
  } catch (err) {
    closeSync(fd);
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    await ctx.warn(e.path, e.root, e.relativePath, 'unreadable', `${code}: reading failed`);
    return undefined;
  }
  if (other !== undefined) {
    closeSync(fd);
    await reportReplaced(ctx, e, other);
    return undefined;
  }
  try {
    // A reused read buffer (shared memory, for a chunk large enough for the sealing worker); given back below.
    buf = ctx.buffers.acquire().subarray(0, stats.size);
    let done = 0;
    while (done < stats.size) {
      const n = readSync(fd, buf, done, stats.size - done, done);
      if (n === 0) break;
      done += n;
    }
    buf = buf.subarray(0, done);
    after = fstatSync(fd, { bigint: true });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    await ctx.warn(e.path, e.root, e.relativePath, 'unreadable', `${code}: reading failed`);
    return undefined;
  } finally {
    closeSync(fd);
  }
  c.bytesRead += buf.length;
  const content: string[] = [];
  for await (const chunk of chunkStream([buf], ctx.vault.keys.gearTable, ctx.vault.config.chunker, { signal: ctx.signal })) {
    let id: Buffer;
    let sealed: SealedObject | undefined;
    const pool = chunk.length >= OFFLOAD_MIN ? ctx.pool() : undefined;
    if (pool) ({ id, sealed } = await pool.process(ObjectType.data, chunk.parts));
    else id = ctx.vault.ids.id(chunk.parts);
    content.push(id.toString('hex'));
    let used = false;
    await storeChunk(ctx, id, chunk.length, fullOnly, () => {
      used = true;
      return sealed ?? sealBlob(ctx.vault.keys, ObjectType.data, id, chunk.parts);
    });
    if (sealed && !used) for (const p of sealed.parts) ctx.sealBuffers.release(p); // sealed ahead, a duplicate
  }
  ctx.buffers.release(buf); // every chunk of it is hashed and sealed (sealing copies)
  c.files++;
  ctx.progress();
  if (changedWhileRead(stats, after, buf.length)) await ctx.warn(e.path, e.root, e.relativePath, 'unreadable', CHANGED_WHILE_READ);
  return { ...base, size: buf.length, content };
}

/**
 * Backs up a file that is one chunk (non-empty, below the chunker's minimum size) with the addon: a thread-pool job
 * (shared with the other files of the same turn) reads, identifies and seals it into a buffer of ctx.sealBuffers,
 * so the event loop only decides and packs. A duplicate's sealed bytes go back to the pool at once.
 */
async function backupOneChunkFile(ctx: WalkContext, sealFile: FileSealer, e: ScanEntry, base: FileBase, fullOnly: boolean): Promise<TreeNode | undefined> {
  const stats = e.stats!;
  const r = await sealFile(e.access ?? e.path, stats.size, ObjectType.data, { dev: stats.dev, ino: stats.ino });
  if ('code' in r) {
    if (r.step === 'open') await openFailed(ctx, e, r);
    else await ctx.warn(e.path, e.root, e.relativePath, 'unreadable', `${r.code}: reading failed`);
    return undefined;
  }
  ctx.c.bytesRead += r.bytes;
  // A file that shrank to nothing while read has no chunk.
  const content = r.bytes > 0 ? [r.id.toString('hex')] : [];
  let taken = false; // by storeChunk, which gives the sealed bytes back once written, or unused
  if (r.bytes > 0) {
    await storeChunk(ctx, r.id, r.bytes, fullOnly, () => {
      taken = true;
      return r.sealed;
    });
  }
  if (!taken) for (const p of r.sealed.parts) ctx.sealBuffers.release(p); // a duplicate, or nothing read
  ctx.c.files++;
  ctx.progress();
  if (changedWhileRead(stats, r.after, r.bytes)) await ctx.warn(e.path, e.root, e.relativePath, 'unreadable', CHANGED_WHILE_READ);
  return { ...base, size: r.bytes, content };
}

/**
 * Records a chunk of a file: uploads it when the vault does not have it yet, or always for a file backed up in full
 * (encrypted files: full backups only, their chunks never taken from earlier ones). `seal` is called only then.
 */
async function storeChunk(ctx: WalkContext, id: Buffer, length: number, fullOnly: boolean, seal: () => SealedObject | Promise<SealedObject>): Promise<void> {
  const isNew = (): boolean => fullOnly || (!ctx.index.has(id) && !ctx.uploader!.has(id));
  const sealing = isNew() ? seal() : undefined;
  // Sealing on the worker lets other files run meanwhile: one of them may have added the same chunk (the uploader
  // registers an id as soon as it is added), so ask again once it is sealed.
  const sealed = sealing instanceof Promise ? await sealing : sealing;
  if (sealed && isNew()) {
    ctx.c.bytesNew += length;
    await ctx.uploader!.add(ObjectType.data, id, sealed, length);
  } else if (sealed) {
    for (const p of sealed.parts) ctx.sealBuffers.release(p); // a duplicate after all: its sealed bytes go unused
  }
  ctx.c.bytesDone += length;
}

const CHANGED_WHILE_READ = 'changed while it was read: the snapshot holds what was read, which may be inconsistent';

/** True when a file's size or times after reading differ from the scan's, or the bytes read fall short of its size. */
function changedWhileRead(before: ProbedEntry, after: { size: bigint; mtimeNs: bigint; ctimeNs: bigint }, bytesAccounted: number): boolean {
  return after.size !== BigInt(before.size) || after.mtimeNs !== before.mtimeNs || after.ctimeNs !== before.ctimeNs || bytesAccounted !== before.size;
}

/**
 * How a source file is opened: read-only, never through a symbolic link put in its place (ELOOP), and without
 * blocking, so a FIFO put in its place is opened at once (and then refused, not being a regular file), never waited
 * on. Reads of a regular file ignore O_NONBLOCK.
 */
const OPEN_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK | constants.O_NOCTTY;

/**
 * What an open that refused a source file says was put in its place (the addon's sealer refuses at `open` too), or
 * undefined for an ordinary failure: ELOOP a link (O_NOFOLLOW), EISDIR a folder, ESTALE another file (the sealer's
 * identity check), EINVAL not a regular file (the sealer's type check; no name from a listing holds a NUL).
 */
function replacedByCode(code: string): string | undefined {
  switch (code) {
    case 'ELOOP':
      return 'a symbolic link';
    case 'EISDIR':
      return 'a folder';
    case 'ESTALE':
      return 'another file';
    case 'EINVAL':
    case 'ENXIO': // a socket, or a FIFO's write end without a reader
      return 'something other than a regular file (a FIFO, a device or a socket)';
    default:
      return undefined;
  }
}

/** Reports a source file that could not be opened: replaced since the scan, vanished, or unreadable. */
async function openFailed(ctx: WalkContext, e: ScanEntry, err: unknown): Promise<void> {
  const code = (err as NodeJS.ErrnoException).code ?? 'error';
  const other = replacedByCode(code);
  if (other !== undefined) return reportReplaced(ctx, e, other);
  await ctx.warn(e.path, e.root, e.relativePath, reasonOf(code), `${code}: could not open the file`);
}

/** Reports a source file found replaced by `other` (in words) since the scan: left out, not read. */
async function reportReplaced(ctx: WalkContext, e: ScanEntry, other: string): Promise<void> {
  const r = replaced(e.root, e.path, e.relativePath, 'file', other);
  await ctx.warn(r.path, r.root, r.relativePath, 'replaced', r.detail!);
}

/** A read of a source file failed: the file's problem, reported per file, never the backup's. */
class SourceReadError extends Error {
  constructor(cause: unknown) {
    super(`reading the source failed: ${String((cause as Error).message ?? cause)}`, { cause });
  }
}

/**
 * Reads the regions in 1 MiB pieces into buffers of `buffers`, one piece ahead, so the disk works while the last
 * piece is chunked. `onRead` sees each piece before it is yielded; giving the buffers back is the caller's job.
 */
async function* readRegions(
  file: FileHandle,
  regions: readonly [number, number][],
  buffers: ReadBuffers,
  signal: AbortSignal | undefined,
  onRead: (buf: Buffer) => void,
): AsyncGenerator<Buffer> {
  const pieces = function* (): Generator<[number, number]> {
    for (const [start, end] of regions) for (let pos = start; pos < end; pos += READ_SIZE) yield [pos, Math.min(READ_SIZE, end - pos)];
  };
  const read = async ([pos, n]: [number, number]): Promise<Buffer> => {
    // Shared memory: a chunk's slices reach the sealing worker by reference, not by copy.
    const buf = buffers.acquire().subarray(0, n);
    let done = 0;
    while (done < n) {
      const { bytesRead } = await file.read(buf, done, n - done, pos + done).catch((e: unknown) => {
        throw new SourceReadError(e);
      });
      if (bytesRead === 0) break; // the file shrank while being read; the caller notices and reports it
      done += bytesRead;
    }
    return done === n ? buf : buf.subarray(0, done);
  };
  const it = pieces();
  let next = it.next();
  let pending = next.done ? undefined : read(next.value);
  while (pending) {
    throwIfAborted(signal);
    const buf = await pending;
    next = it.next();
    pending = next.done || buf.length === 0 ? undefined : read(next.value);
    if (buf.length === 0) return;
    onRead(buf);
    yield buf;
  }
}

/** Stores a folder's nodes as one tree, or a chain of trees through `next`; returns the first tree's id (hex). */
async function storeTree(ctx: WalkContext, nodes: readonly TreeNode[]): Promise<string> {
  let next: string | undefined;
  const pieces = Math.max(1, Math.ceil(nodes.length / MAX_TREE_NODES));
  for (let p = pieces - 1; p >= 0; p--) {
    const tree: Tree = { nodes: nodes.slice(p * MAX_TREE_NODES, (p + 1) * MAX_TREE_NODES), ...(next ? { next } : {}) };
    const bytes = encodeTree(tree);
    const id = ctx.vault.ids.id(bytes);
    if (!ctx.dryRun && !ctx.index.has(id) && !ctx.uploader!.has(id)) {
      await ctx.uploader!.add(ObjectType.tree, id, sealBlob(ctx.vault.keys, ObjectType.tree, id, bytes), bytes.length);
    }
    next = id.toString('hex');
  }
  return next!;
}

/** Tree `idHex` of the parent snapshot with its continuations, or undefined when it cannot be read. */
async function readParentTree(ctx: WalkContext, idHex: string): Promise<ParentTree | undefined> {
  try {
    return { id: idHex, nodes: await treeNodes(ctx.vault, ctx.index, idHex, ctx.signal) };
  } catch (e) {
    if ((e as VaultpathError).code === 'VP_ABORTED') throw e;
    return undefined; // an unreadable parent tree only means the files are read again
  }
}

async function treeNodes(vault: Vault, index: VaultIndex, idHex: string, signal: AbortSignal | undefined): Promise<Map<string, TreeNode>> {
  const out = new Map<string, TreeNode>();
  for (let id: string | undefined = idHex; id; ) {
    const tree: Tree = await vault.readTree(index, id, { signal });
    for (const n of tree.nodes) out.set(nodeNameKey(n), n);
    id = tree.next;
  }
  return out;
}

/**
 * The names of the root tree's folder nodes for `roots`, in order: each root's last path component, made unique
 * with `-2`, `-3`, … when two roots share one.
 */
export function rootNodeNames(roots: readonly string[]): string[] {
  const used = new Set<string>();
  return roots.map((root) => {
    const base = basename(root) || 'root';
    let name = base;
    for (let k = 2; used.has(name); k++) name = `${base}-${k}`;
    used.add(name);
    return name;
  });
}

async function parentRootTree(vault: Vault, index: VaultIndex, parent: Snapshot, root: string, signal: AbortSignal | undefined): Promise<ParentTree | undefined> {
  const i = parent.paths.indexOf(root);
  if (i < 0) return undefined;
  try {
    const node = (await treeNodes(vault, index, parent.tree, signal)).get(rootNodeNames(parent.paths)[i]!);
    return node?.type === 'dir' && node.subtree ? { id: node.subtree, nodes: await treeNodes(vault, index, node.subtree, signal) } : undefined;
  } catch (e) {
    if ((e as VaultpathError).code === 'VP_ABORTED') throw e;
    return undefined;
  }
}
