/**
 * `backup()`: the data path from folders to a snapshot, wired from the archiver's stages and the vault layer.
 *
 *   scan (totals) → scratch sized and checked → session: index loaded, lock taken, orphan packs adopted when an
 *   earlier run left its lock (repo/session.ts) → archiver: walk → parent match → read → chunk → save blob (dedup,
 *   seal, pack, scratch, store, index: repo/blob-saver.ts) → trees (src/archiver) → every pack acknowledged and
 *   indexed → snapshot
 *
 * The scan keeps each folder's listing (in the scratch folder: scan/listing-replay.ts) and the walk takes it back,
 * so each folder is listed and probed once.
 *
 * Write ordering (FORMAT.md §12): the snapshot is written only after every pack and index object it references has
 * been acknowledged, so an interrupted backup never leaves a snapshot pointing at missing data, and earlier
 * snapshots are never touched. Packs and index objects written before an interruption are found again by the next
 * run (the index, and adoption of packs no index lists) and not uploaded again.
 *
 * Files that fail (unreadable, vanished, replaced, changed while read) are reported per file in the backup's report
 * and counted as warnings; the snapshot is then marked `warnings` instead of `complete`. How sources are opened and
 * read safely is the file reader's (archiver/file-reader.ts); how memory stays bounded, each stage's header says.
 *
 * @module
 */
import { hostname as osHostname } from 'node:os';
import { resolve } from 'node:path';
import { defaultProbe } from '../scan/probe.js';
import { scanTotals } from '../scan/scan.js';
import { ListingReplay } from '../scan/listing-replay.js';
import { ScratchCache, scratchCapacity, scratchFolder } from '../stage/scratch-cache.js';
import { systemClock } from '../throttle/clock.js';
import type { Vault } from '../repo/vault.js';
import type { Snapshot } from '../repo/tree.js';
import { BlobSaver } from '../repo/blob-saver.js';
import { TARGET_PACK_SIZE, checkScratchCapacity } from '../repo/pack-uploader.js';
import { WriteSession } from '../repo/session.js';
import { metadataCacheFor } from '../repo/metadata-cache.js';
import { nativeKernels } from '../native/ports.js';
import { archive } from '../archiver/archiver.js';
import { RunReport, defaultReportPath } from '../archiver/report.js';
import type { BackupOptions, BackupResult } from '../archiver/types.js';

export type { BackupOptions, BackupProgress, BackupResult } from '../archiver/types.js';
export { rootNodeNames } from '../archiver/archiver.js';

const PROGRAM = 'vaultpath';

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
  // The scratch folder, made ready first, keeps the scan's folder listings for the walk (each folder is listed and
  // probed once) and the vault index between runs. A dry run writes nothing there.
  const scratchBase = options.dryRun ? undefined : await scratchFolder(options.scratchDir);
  const listings = scratchBase === undefined ? undefined : ListingReplay.open(scratchBase);
  try {
    return await backupListed(opening, paths, options, scratchBase, listings);
  } finally {
    listings?.close();
  }
}

async function backupListed(
  opening: Promise<Vault>,
  paths: readonly string[],
  options: BackupOptions,
  scratchBase: string | undefined,
  listings: ListingReplay | undefined,
): Promise<BackupResult> {
  const clock = options.clock ?? systemClock;
  const started = clock.now();
  const { signal } = options;
  const dryRun = options.dryRun ?? false;
  const roots = paths.map((p) => resolve(p));
  if (roots.length === 0) throw new TypeError('"paths" expected at least one folder');
  const probe = options.probe ?? defaultProbe();
  const filters = { exclude: options.exclude, include: options.include, excludeFilesIn: options.excludeFilesIn };

  // 1. Totals first: they size the scratch cache and enforce the per-source limit before any data is read.
  const totals = await scanTotals(roots, { ...filters, probe, signal, listings });
  const reportPath = options.reportPath ?? defaultReportPath(started);
  let saver: BlobSaver | undefined;
  const report = new RunReport(reportPath, totals, options.onProgress, () => saver?.bytesStored ?? 0);
  const c = report.c;
  report.progress('scan');
  // A remote vault's index, snapshots and trees are read through the metadata cache in the scratch folder.
  const vault = dryRun ? await opening : metadataCacheFor(await opening, options.scratchDir, 'scratch', options.metadataCache);

  const capacity = options.scratchCapacity ?? scratchCapacity(totals.bytesToRead);
  // A pack holds at most the target size plus one blob; the cache must hold one such pack twice (pack-uploader.ts).
  if (!dryRun) checkScratchCapacity(capacity, options.targetPackSize ?? TARGET_PACK_SIZE, vault.config.chunker.maxSize);

  // The parent is only a hint (which files to skip reading), so a damaged snapshot is passed over rather than
  // stopping every later backup; the ones passed over are named in the result.
  const findingParent =
    options.parent === undefined
      ? vault.latestSnapshot({ signal, paths: roots, skipDamaged: true })
      : options.parent === null
        ? undefined
        : vault.readSnapshot(options.parent, { signal }).then((snapshot) => ({ id: options.parent!, snapshot }));
  const { session, alongside: parent } = await WriteSession.open(vault, { write: !dryRun, started, clock, signal, indexCacheDir: scratchBase }, Promise.resolve(findingParent));
  const scratch = dryRun
    ? undefined
    : await ScratchCache.open(options.scratchDir, { capacity, signal }).catch(async (e: unknown) => {
        await session.release(); // nothing was stored
        throw e;
      });
  try {
    await report.open();
    await session.adopt();
    saver = new BlobSaver(vault, session.index, {
      kernels: options.kernels ?? nativeKernels,
      sealWorkers: options.sealWorkers,
      scratch,
      targetPackSize: options.targetPackSize,
      signal,
      onPackStored: () => report.progress(),
    });

    // 2. Each root, depth first; its tree becomes one folder node of the snapshot's root tree.
    const rootTree = await archive(vault, session.index, saver, report, roots, { ...filters, probe, parent: parent?.snapshot, dryRun, signal, listings });

    // 3. Everything the snapshot references is acknowledged before the snapshot is written.
    report.progress('finish');
    await saver.finish();
    await report.close();
    const status = c.warnings > 0 ? 'warnings' : 'complete';
    const bytesStored = saver.bytesStored;
    let snapshotId: string | undefined;
    if (!dryRun) {
      const snapshot: Snapshot = {
        version: 1,
        time: new Date(started).toISOString(),
        hostname: options.hostname ?? osHostname(),
        paths: roots,
        tree: rootTree,
        parent: parent?.id ?? null,
        status,
        warnings: c.warnings,
        stats: { files: c.files, dirs: c.dirs, bytesRead: c.bytesRead, bytesNew: c.bytesNew, bytesStored, skipped: c.skipped },
        program: PROGRAM,
      };
      snapshotId = await session.commit(snapshot);
    }
    return {
      snapshot: snapshotId,
      parent: parent?.id ?? null,
      parentSkippedDamaged: parent && 'skipped' in parent ? parent.skipped : [],
      status,
      files: c.files,
      dirs: c.dirs,
      bytesRead: c.bytesRead,
      bytesNew: c.bytesNew,
      bytesStored,
      filesUnchanged: c.filesUnchanged,
      filesFullOnly: c.filesFullOnly,
      skipped: c.skipped,
      warnings: c.warnings,
      reportPath,
      durationMs: clock.now() - started,
      scratch: { capacity: scratch?.capacity ?? 0, highWaterMark: scratch?.highWaterMark ?? 0 },
    };
  } catch (e) {
    await saver?.settle();
    await report.close().catch(() => undefined);
    // A run that staged no pack left nothing outside the index; one that did keeps its lock for the next backup.
    await session.abandon(saver?.packsStaged ?? 0);
    throw e;
  } finally {
    await saver?.close();
    await scratch?.close();
  }
}
