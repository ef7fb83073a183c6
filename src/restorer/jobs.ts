/**
 * The restoring walk: the snapshot's trees (the plan's kept trees taken, not read again) turned into jobs for the
 * target and the file writer. Each folder node becomes a {@link Dir} (made at once, or, with an include filter, only
 * when a file selected below needs it); each file or link selected becomes a job run a few at a time: small files
 * restored by the addon (at most SMALL_FILE, no holes) under their own, wider limit, so their batches fill the thread
 * pool. Names that could lead outside the target are refused by the walk (reported, nothing created); a listing
 * that cannot be read fails that folder alone.
 *
 * Contract: descriptors stay bounded: past {@link SMALL_FILES_IN_FLIGHT} × 2 jobs, or {@link DIR_BUDGET} open
 * folders, the walk waits for jobs in flight (and their folders) to finish. Returns when the walk is done: jobs still
 * in flight are in `c.pending`, which the caller awaits. No job starts once the run is `fatal`.
 *
 * @module
 */
import { type TreeMemo, walkTrees } from '../repo/tree-walk.js';
import { DIR_BUDGET, Dir, type RestoreContext, SMALL_FILES_IN_FLIGHT } from './context.js';
import { SMALL_FILE, restoreFile, skipReads } from './file-writer.js';
import { ensureDir, release, restoreLink } from './folders.js';

/**
 * Walks the trees from `rootTree` into the target folder `root` (open), starting a job per file and link.
 *
 * @throws {VaultpathError} `VP_FORMAT_LIMIT` (not met once the plan passed), `VP_ABORTED`.
 */
export async function restoreTrees(c: RestoreContext, rootTree: string, root: Dir, memo: TreeMemo): Promise<void> {
  let files = 0;
  await walkTrees<Dir>(c.vault, c.index, rootTree, root, {
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
      // The plan numbered the files it selected in this same order: the recovery folder reckons next reads from here.
      if (node.type === 'file') c.cache.position = files++;
      // A small file restored by the addon holds at most 1 MiB: many run at once, their blobs opened and their
      // files written a batch per thread-pool job.
      const small = node.type === 'file' && node.size! <= SMALL_FILE && !node.holes && c.openBlob !== null && c.writer !== null;
      // Descriptors stay bounded: past the budget, the walk waits for files in flight (and their folders) to finish.
      while ((c.pending.size >= SMALL_FILES_IN_FLIGHT * 2 || c.open.size > DIR_BUDGET) && c.pending.size > 0) await Promise.race(c.pending);
      parent.refs++;
      const p = (small ? c.smallFiles : c.limiter)
        .run(async () => {
          if (c.fatal || !ensureDir(c, parent)) {
            if (node.type === 'file') skipReads(c, node.content ?? [], 0); // its packs need not wait for it
            return;
          }
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
  }, { signal: c.signal, memo });
}
