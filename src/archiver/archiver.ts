/**
 * The archiver: a backup's data path from source folders to the snapshot's root tree, as stages.
 *
 *   walk (walk.ts) → parent match (parent.ts) → file reader (file-reader.ts: regions, holes) → file saver
 *   (file-saver.ts: chunk → save blob) → tree saver (tree-saver.ts) → report (report.ts)
 *
 * The archiver reads sources and decides what a snapshot holds; everything it stores goes through one port of the
 * vault layer, "save this blob" (repo/blob-saver.ts). It never touches packs, the store or the index, and it holds
 * no sealed buffer. The engine (engine/backup.ts) wires the archiver to a vault session and writes the snapshot.
 *
 * @module
 */
import { type BigIntStats, fstatSync } from 'node:fs';
import { lstat } from 'node:fs/promises';
import type { BlobSaver } from '../repo/blob-saver.js';
import { type Snapshot, type TreeNode, compareNodes } from '../repo/tree.js';
import type { Vault, VaultIndex } from '../repo/vault.js';
import type { AttributeProbe } from '../scan/attributes.js';
import { FolderLister } from '../scan/folder.js';
import type { ListingReplay } from '../scan/listing-replay.js';
import { FileReader } from './file-reader.js';
import { FileSaver } from './file-saver.js';
import { parentRootTree, rootNodeNames } from './parent.js';
import type { RunReport } from './report.js';
import { saveTree } from './tree-saver.js';
import { walkFolder } from './walk.js';

export { rootNodeNames };

export interface ArchiveOptions {
  readonly exclude?: readonly string[];
  readonly include?: readonly string[];
  readonly excludeFilesIn?: readonly string[];
  readonly probe: AttributeProbe;
  /** The snapshot whose unchanged files are reused without reading. */
  readonly parent?: Snapshot;
  readonly dryRun: boolean;
  readonly signal?: AbortSignal;
  /** The scan's listings of the same roots, in the same order, with the same options: each folder is listed once. */
  readonly listings?: ListingReplay;
}

/**
 * Backs up each of `roots` (absolute folders), depth first, and saves the root tree, whose folder nodes are the
 * roots (named by {@link rootNodeNames}); returns its id (hex). Every blob is saved through `saver`; the caller
 * MUST wait for `saver.finish()` before writing a snapshot that names the tree.
 */
export async function archive(vault: Vault, index: VaultIndex, saver: BlobSaver, report: RunReport, roots: readonly string[], options: ArchiveOptions): Promise<string> {
  const { signal } = options;
  const stages = { vault, index, saver, report, signal, files: new FileSaver(saver, new FileReader(vault, saver, report, signal), report, options.dryRun) };
  const rootNodes: TreeNode[] = [];
  const names = rootNodeNames(roots);
  for (const [i, root] of roots.entries()) {
    const lister = new FolderLister({ root, probe: options.probe, exclude: options.exclude, include: options.include, excludeFilesIn: options.excludeFilesIn });
    const parentRoot = options.parent ? await parentRootTree(vault, index, options.parent, root, signal) : undefined;
    const top = lister.openRoot();
    let subtree: string;
    let st: BigIntStats;
    if ('fd' in top) {
      try {
        subtree = await walkFolder(stages, lister, top, parentRoot, 1, options.listings ? { listings: options.listings, root: i } : undefined);
        st = fstatSync(top.fd, { bigint: true }); // the folder walked, not whatever is at its path now
      } finally {
        lister.close(top);
      }
    } else {
      // The root cannot be opened now (it could be scanned a moment ago): kept, empty, with a warning.
      await report.skipped(top);
      subtree = await saveTree(saver, []);
      st = await lstat(root, { bigint: true });
    }
    rootNodes.push({ name: names[i]!, type: 'dir', mode: Number(st.mode) & 0o7777, mtimeNs: st.mtimeNs.toString(), subtree });
  }
  rootNodes.sort(compareNodes);
  return saveTree(saver, rootNodes);
}
