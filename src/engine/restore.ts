/**
 * `restore()`: a snapshot (or part of it) back to a target folder, verified. Wiring of the stages in src/restorer:
 *
 *   plan (plan.ts: trees walked once, bounds checked, bytes summed, free space checked, chunk reads counted per pack;
 *   up to 16 MiB of trees kept)
 *   → target opened as one descriptor (target.ts) → trees walked again into jobs (jobs.ts; the kept trees not read
 *   again): folders and links made from their parent's descriptor (folders.ts), files written by the file writer
 *   (file-writer.ts) from packs downloaded into the recovery folder (stage/pack-cache.ts), a few at once, each kept
 *   until the plan's last read of it is done, so it is downloaded once when the packs read in between fit.
 *
 * Safety against a local user who can write inside the target while it runs (vaultpath runs as root): every name is
 * reached from its folder's descriptor, never following a link (openat2 RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS through
 * the addon, else `/proc/self/fd/<dirfd>/<name>` with O_NOFOLLOW, fs-at.ts, chosen once per run from the kernels'
 * `descriptorCalls` port). Nothing is created, written, renamed, chmod-ed, stamped or removed outside the target, at
 * any moment; a swap detected fails that file or folder alone, with a reason that starts with `VP_UNSAFE_PATH`. A
 * node whose name is empty, `.`, `..`, or holds `/`, `\` or NUL is refused (reported, nothing created). Set-user-ID
 * and set-group-ID bits are never restored (the result says which files lost them). A hostile snapshot (trees
 * nested past MAX_TREE_DEPTH, `next` chains that loop or never end) fails with `VP_FORMAT_LIMIT` in the plan, before
 * anything is written. Recovery runs and temporary files a killed restore left are removed by the next restore
 * (pack-cache.ts, folders.ts).
 *
 * Descriptors held: the folders along the walk's current path, and the folders (with their ancestors) that files in
 * flight are written into; a folder's descriptor is closed once its listing and its files are done.
 *
 * A file whose data cannot be read (a missing or damaged pack) fails alone: it is named in the result's errors, its
 * temporary file is removed, and the rest is restored. The first ENOSPC stops the restore with one
 * `VP_TARGET_SPACE`.
 *
 * @module
 */
import { mkdir } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import { VaultpathError } from '../errors.js';
import type { Vault } from '../repo/vault.js';
import { systemClock } from '../throttle/clock.js';
import { ensureUserFolder, userFolder } from '../stage/user-folders.js';
import { TreeMemo } from '../repo/tree-walk.js';
import { metadataCacheFor } from '../repo/metadata-cache.js';
import { chooseFsAt, closeQuietly } from '../restorer/fs-at.js';
import { openTarget } from '../restorer/target.js';
import { checkSpace, includeFilter, planRestore } from '../restorer/plan.js';
import { Dir, FILES_IN_FLIGHT, type RestoreContext, SMALL_FILES_IN_FLIGHT, TEMP_PREFIX } from '../restorer/context.js';
import { removeStaleTemps } from '../restorer/folders.js';
import { restoreTrees } from '../restorer/jobs.js';
import type { RestoreOptions, RestoreResult } from '../restorer/types.js';
import { Limiter } from '../limit.js';
import { nativeKernels } from '../native/ports.js';
import { HOST_TAG } from '../processes.js';
import { PackCache } from '../stage/pack-cache.js';

export { type RestoreError, type RestoreOptions, type RestoreResult, SETID_PATHS_SHOWN } from '../restorer/types.js';

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
  // A remote vault's index, snapshots and trees are read through the metadata cache in the recovery folder.
  vault = metadataCacheFor(vault, options.recoveryFolder, 'recovery', options.metadataCache);
  const { id: snapshotId, snapshot, skipped: skippedDamaged } = await vault.findSnapshot(ref, { signal, skipDamaged: options.skipDamaged === true });
  // The recovery folder is this machine's own: the vault index is cached there between restores (whole ids).
  const recoveryFolder = options.recoveryFolder ?? ensureUserFolder(userFolder('recovery'));
  await mkdir(recoveryFolder, { recursive: true, mode: 0o700 });
  const index = await vault.loadIndex({ signal, cacheDir: recoveryFolder });
  const include = includeFilter(options.include);
  const kernels = options.kernels ?? nativeKernels;
  const writer = kernels.fileWriter();
  const fs = chooseFsAt(kernels.descriptorCalls(), writer !== null);
  if (!fs) {
    throw new VaultpathError('VP_UNSAFE_PATH', 'This system has neither the native addon nor /proc/self/fd: vaultpath cannot restore without following paths another user could swap. Build the addon (npm run install) on Linux.');
  }

  // Plan first: a hostile snapshot fails here, and the bytes to write are known before the target is touched.
  const memo = new TreeMemo();
  const planned = await planRestore(vault, index, snapshot.tree, include, memo, signal);

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
    checkSpace(targetDir, rootFd, planned.bytes);
    const rootStat = fs.stat(rootFd, null);
    const opened = await PackCache.open(recoveryFolder, {
      capacity: options.recoveryBytes ?? 256 * 1024 * 1024, vault, target: `${rootStat.dev}:${rootStat.ino}`, spareBuffers: FILES_IN_FLIGHT, plan: planned.packs, signal,
    });
    cache = opened.cache;
    ctx = {
      vault, index, cache, include, signal, fs, writer, files: 0, dirs: 0, bytes: 0, errors: [], progress: options.onProgress,
      setId: { count: 0, paths: [] }, fatal: undefined, open, sweep: opened.sweep,
      tempPrefix: `${TEMP_PREFIX}${HOST_TAG}-${process.pid}-${randomBytes(4).toString('hex')}-`, temps: 0,
      limiter: new Limiter(FILES_IN_FLIGHT), smallFiles: new Limiter(SMALL_FILES_IN_FLIGHT), openBlob: kernels.blobOpener(vault.keys), writeBlob: kernels.blobWriter(vault.keys), openDirect: kernels.openDirect, pending,
    };
    if (ctx.sweep) removeStaleTemps(ctx, root);
    await restoreTrees(ctx, snapshot.tree, root, memo);
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
    downloaded: { ...cache!.stats },
    durationMs: clock.now() - started,
  };
}
