/**
 * The archiver's walk: a source folder, depth first, through descriptors, to its tree id.
 *
 * Each folder is listed through its descriptor (scan/folder.ts); a subfolder is entered through its parent's
 * descriptor and only if it is still the folder the listing saw (one swapped for a link since is not followed, and
 * left out). Files unchanged since the parent snapshot are taken from it at once (parent.ts); the others go to the
 * file saver, several at a time, and their nodes come back in name order for the tree (tree-saver.ts). The walk
 * holds one folder listing per level of depth.
 *
 * Given the scan's kept listings ({@link Replay}, scan/listing-replay.ts), a folder unchanged since the scan listed it
 * is not listed or probed again: its entries are taken back (the folder is still opened through its parent's
 * descriptor and checked, as every folder is). A file of such a listing that is to be read is probed again first, so
 * that its read is checked against the file as it is then; one unchanged since the parent snapshot when the scan saw
 * it is taken from the parent without a probe. A subfolder's node then has the mode and mtime of the folder open now.
 *
 * A folder whose every entry is unchanged since the parent snapshot (the same names; files reused unchanged with the
 * same mode and decision; subfolders with the same tree, mode and mtime) keeps the parent's tree id: its tree would
 * list the same nodes, so it is neither encoded nor hashed again. Subfolders deeper than {@link MAX_TREE_DEPTH} are
 * left out with a warning: readers refuse deeper nesting (FORMAT.md §10), so storing them would make the whole
 * snapshot unreadable.
 *
 * @module
 */
import { type BigIntStats, fstatSync } from 'node:fs';
import { throwIfAborted } from '../errors.js';
import type { Vault, VaultIndex } from '../repo/vault.js';
import type { BlobSaver } from '../repo/blob-saver.js';
import { MAX_TREE_DEPTH, type TreeNode } from '../repo/tree.js';
import { type FolderLister, type OpenFolder, replaced } from '../scan/folder.js';
import type { ListingReplay } from '../scan/listing-replay.js';
import type { ScanEntry } from '../scan/scan.js';
import { type FileBase, ParentReadAhead, type ParentTree, nameKeyOf, nameOf, reuseUnchanged } from './parent.js';
import type { FileSaver } from './file-saver.js';
import { saveTree } from './tree-saver.js';
import type { RunReport } from './report.js';

/** Files of a kept listing probed again at once, before they are read. */
const STALE_BATCH = 256;

/** The scan's kept listings (scan/listing-replay.ts) and which of its roots this walk is. */
export interface Replay {
  readonly listings: ListingReplay;
  readonly root: number;
}

/** What the walk works with: the stages it hands entries to. */
export interface WalkStages {
  readonly vault: Vault;
  readonly index: VaultIndex;
  readonly saver: BlobSaver;
  readonly files: FileSaver;
  readonly report: RunReport;
  readonly signal: AbortSignal | undefined;
}

/**
 * Backs up the folder open as `folder`, `depth` folder levels below the snapshot's root tree (a source root is 1),
 * and returns its tree id (hex).
 */
export async function walkFolder(
  s: WalkStages,
  lister: FolderLister,
  folder: OpenFolder,
  parentTree: ParentTree | undefined,
  depth: number,
  replay?: Replay,
  folderStats?: BigIntStats,
): Promise<string> {
  throwIfAborted(s.signal);
  const parent = parentTree?.nodes;
  const kept = replay ? replay.listings.take(replay.root, lister, folder, folderStats ?? fstatSync(folder.fd, { bigint: true })) : undefined;
  const listed = kept ? undefined : await lister.listOpen(folder);
  const entries: Iterable<ScanEntry> = kept ?? listed!;
  const readAhead = parent ? new ParentReadAhead(s.vault, s.index, parent, kept ? kept.dirs : listed!, s.signal) : undefined;
  // Files of this folder are backed up several at a time; their nodes come back in name order for the tree.
  const slots: (TreeNode | Promise<TreeNode | undefined> | undefined)[] = [];
  // Whether every node so far is the parent tree's node of the same name, unchanged.
  let same = parent !== undefined;
  const c = s.report.c;
  // Files of a kept listing that are to be read, waiting to be probed again (a batch at a time) before they are.
  const stale: { readonly slot: number; readonly e: ScanEntry; readonly previous: TreeNode | undefined }[] = [];
  const probeStale = async (): Promise<void> => {
    if (stale.length === 0) return;
    const fresh = await lister.refresh(folder, stale.map((x) => x.e));
    for (const [i, x] of stale.entries()) slots[x.slot] = (await saveFresh(s, fresh[i]!, x.previous)).node;
    stale.length = 0;
  };
  try {
    for (const e of entries) {
      const key = nameKeyOf(e);
      if (e.decision.kind === 'skip') {
        // Entries that could not be read or vanished are failures (warnings); the others were skipped by the rules.
        // A folder that could not be listed is kept, empty.
        await s.report.skipped(e);
        continue;
      }
      const stats = e.stats!;
      if (e.kind === 'dir') {
        const parentChildren = readAhead ? await readAhead.take() : undefined;
        if (depth + 1 > MAX_TREE_DEPTH) {
          await s.report.warn(e.path, e.root, e.relativePath, 'too-deep', `VP_FORMAT_LIMIT: nested deeper than ${MAX_TREE_DEPTH} folders, the most the format lets readers follow`);
          same = false;
          continue;
        }
        await probeStale(); // this folder's files start before the subfolder's
        const child = lister.openChild(folder, e);
        let subtree: string;
        // With a kept listing, the subfolder's node is what is open now, not what the scan saw.
        let now: BigIntStats | undefined;
        if ('fd' in child) {
          try {
            now = replay ? fstatSync(child.fd, { bigint: true }) : undefined;
            subtree = await walkFolder(s, lister, child, parentChildren, depth + 1, replay, now);
          } finally {
            lister.close(child);
          }
        } else {
          await s.report.skipped(child);
          if (child.decision.kind === 'skip' && child.decision.reason === 'replaced') {
            same = false;
            continue;
          }
          subtree = await saveTree(s.saver, []); // it vanished or cannot be listed: kept, empty, as a failed listing is
        }
        c.dirs++;
        const node: TreeNode = { ...nodeName(e), type: 'dir', mode: Number(now?.mode ?? stats.mode) & 0o7777, mtimeNs: (now?.mtimeNs ?? stats.mtimeNs).toString(), subtree };
        if (same) {
          const previous = parent!.get(key);
          same = previous?.type === 'dir' && previous.subtree === subtree && previous.mode === node.mode && previous.mtimeNs === node.mtimeNs;
        }
        slots.push(node);
      } else if (e.kind === 'file') {
        const previous = parent?.get(key);
        const base = fileBase(e);
        // Unchanged files are decided here, at once: no task, no promise, for the bulk of an incremental backup.
        const reused = reuseUnchanged(c, s.saver, base, stats.size, previous);
        if (reused) {
          s.report.progress();
          same &&= previous!.mode === base.mode && previous!.decision === base.decision;
          slots.push(reused);
          continue;
        }
        same = false;
        if (kept) {
          // Listed by the scan a while ago: what is read is checked against the file as it is now.
          stale.push({ slot: slots.length, e, previous });
          slots.push(undefined);
          if (stale.length >= STALE_BATCH) await probeStale();
          continue;
        }
        slots.push(startSave(s, e, base, previous));
      }
    }
    await probeStale();
  } catch (e) {
    // A failing subfolder or entry fails the backup, but only once this folder's running files have settled: none
    // may still save a blob after the saver is settled.
    await Promise.allSettled(slots);
    throw e;
  }
  const settled = await Promise.allSettled(slots);
  const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
  const nodes = settled.map((r) => (r as PromiseFulfilledResult<TreeNode | undefined>).value).filter((n): n is TreeNode => n !== undefined);
  if (same && nodes.length === parent!.size) return parentTree!.id;
  return saveTree(s.saver, nodes);
}

/** Starts backing up file `e`; its node, or undefined when it could not be read (reported). */
function startSave(s: WalkStages, e: ScanEntry, base: FileBase, previous: TreeNode | undefined): Promise<TreeNode | undefined> {
  const task = s.files.save(e, base, previous);
  task.catch(() => undefined); // observed by the folder's walk; a failure must not surface as an unhandled rejection first
  return task;
}

/**
 * File `e` of a kept listing, probed again (`e` is now what is there): reused from the parent if it is unchanged
 * after all, else started; what is no longer a regular file to back up is reported and left out, as a fresh listing
 * would have it.
 */
async function saveFresh(s: WalkStages, e: ScanEntry, previous: TreeNode | undefined): Promise<{ node: TreeNode | Promise<TreeNode | undefined> | undefined }> {
  // (Wrapped: an async function returning the save's promise would wait for the save.)
  if (e.decision.kind === 'skip') {
    await s.report.skipped(e);
    return { node: undefined };
  }
  if (e.kind !== 'file') {
    await s.report.skipped(replaced(e.root, e.path, e.relativePath, 'file', e.kind === 'dir' ? 'a folder' : 'something other than a regular file'));
    return { node: undefined };
  }
  const base = fileBase(e);
  const reused = reuseUnchanged(s.report.c, s.saver, base, e.stats!.size, previous);
  if (reused) {
    s.report.progress();
    return { node: reused };
  }
  return { node: startSave(s, e, base, previous) };
}

/** A node's name fields for entry `e`: `name`, or `nameRaw` (base64 of the bytes) for a name that is not UTF-8. */
function nodeName(e: ScanEntry): { name: string } | { nameRaw: string } {
  return e.nameRaw ? { nameRaw: e.nameRaw.toString('base64') } : { name: nameOf(e) };
}

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
