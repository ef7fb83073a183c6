/**
 * The archiver's parent-match stage: the parent snapshot's trees, read a few folders ahead of the walk, and the
 * decision that a file is unchanged since (same size, mtime, ctime and inode, every chunk still indexed) and is
 * taken from the parent without reading it.
 *
 * The parent is only a hint: a parent tree that cannot be read means its files are read again, never a failed
 * backup (an abort still stops the run).
 *
 * @module
 */
import { basename } from 'node:path';
import type { VaultpathError } from '../errors.js';
import type { Vault, VaultIndex } from '../repo/vault.js';
import { type Snapshot, type TreeNode, nodeNameKey } from '../repo/tree.js';
import { readListing } from '../repo/tree-walk.js';
import type { ScanEntry } from '../scan/scan.js';
import type { Counters } from './report.js';

/** Subfolders whose parent-snapshot trees are read ahead of the walk, per folder level. */
const TREE_READ_AHEAD = 8;

/** A folder's tree in the parent snapshot: its id and its nodes (continuations included) by name. */
export interface ParentTree {
  readonly id: string;
  readonly nodes: Map<string, TreeNode>;
}

/** A file node's fields from the scan, all but its size and content. */
export type FileBase = Omit<TreeNode, 'size' | 'content'> & { readonly decision: ScanEntry['decision']['kind'] };

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

/** The parent snapshot's tree of source root `root`, or undefined when it has none or it cannot be read. */
export async function parentRootTree(vault: Vault, index: VaultIndex, parent: Snapshot, root: string, signal: AbortSignal | undefined): Promise<ParentTree | undefined> {
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

/**
 * The parent trees of a folder's subfolders, read up to {@link TREE_READ_AHEAD} folders ahead of the walk, so their
 * reads overlap the walk instead of each folder waiting for its own.
 */
export class ParentReadAhead {
  readonly #dirs: readonly ScanEntry[];
  readonly #parent: Map<string, TreeNode>;
  readonly #read: (idHex: string) => Promise<ParentTree | undefined>;
  readonly #trees: (Promise<ParentTree | undefined> | undefined)[] = [];
  #next = 0;
  #taken = 0;

  /** `entries` are the folder's listing; only subfolders that are backed up are read. */
  constructor(vault: Vault, index: VaultIndex, parent: Map<string, TreeNode>, entries: readonly ScanEntry[], signal: AbortSignal | undefined) {
    this.#parent = parent;
    this.#dirs = entries.filter((e) => e.kind === 'dir' && e.decision.kind !== 'skip');
    this.#read = (idHex) => readParentTree(vault, index, idHex, signal);
  }

  /** The parent tree of the next subfolder of the listing, in order (undefined when the parent has none). */
  take(): Promise<ParentTree | undefined> | undefined {
    const i = this.#taken++;
    for (; this.#next < Math.min(i + TREE_READ_AHEAD, this.#dirs.length); this.#next++) {
      const previous = this.#parent.get(nameKeyOf(this.#dirs[this.#next]!));
      const read = previous?.type === 'dir' && previous.subtree ? this.#read(previous.subtree) : undefined;
      read?.catch(() => undefined); // awaited in turn; an abort must not surface as an unhandled rejection first
      this.#trees.push(read);
    }
    const read = this.#trees[i];
    this.#trees[i] = undefined;
    return read;
  }
}

/**
 * The parent snapshot's node for a file unchanged since (same size, mtime, ctime and inode) whose chunks are all
 * still saved (`saved`), counted as done; undefined when the file must be read.
 */
export function reuseUnchanged(c: Counters, saved: { hasHex(idHex: string): boolean }, base: FileBase, size: number, previous: TreeNode | undefined): TreeNode | undefined {
  if (
    previous?.type !== 'file' ||
    previous.size !== size ||
    previous.mtimeNs !== base.mtimeNs ||
    previous.ctimeNs !== base.ctimeNs ||
    previous.inode !== base.inode ||
    !previous.content!.every((hex) => saved.hasHex(hex))
  ) {
    return undefined;
  }
  c.files++;
  c.filesUnchanged++;
  c.bytesDone += size;
  return { ...base, size, content: previous.content, ...(previous.holes ? { holes: previous.holes } : {}) };
}

/** The last name of an entry's relative path. */
export function nameOf(e: ScanEntry): string {
  return e.relativePath.slice(e.relativePath.lastIndexOf('/') + 1);
}

/** The key of entry `e`'s node in a parent tree's map (nodeNameKey). */
export function nameKeyOf(e: ScanEntry): string {
  // A name that is UTF-8 is its own key (nodeNameKey); the key reads the name fields only.
  return e.nameRaw ? nodeNameKey({ nameRaw: e.nameRaw.toString('base64') } as TreeNode) : nameOf(e);
}

/** Tree `idHex` of the parent snapshot with its continuations, or undefined when it cannot be read. */
async function readParentTree(vault: Vault, index: VaultIndex, idHex: string, signal: AbortSignal | undefined): Promise<ParentTree | undefined> {
  try {
    return { id: idHex, nodes: await treeNodes(vault, index, idHex, signal) };
  } catch (e) {
    if ((e as VaultpathError).code === 'VP_ABORTED') throw e;
    return undefined; // an unreadable parent tree only means the files are read again
  }
}

/** A folder's listing in the parent (every tree blob of its chain, bounded as restore and verify bound it), by name. */
async function treeNodes(vault: Vault, index: VaultIndex, idHex: string, signal: AbortSignal | undefined): Promise<Map<string, TreeNode>> {
  const out = new Map<string, TreeNode>();
  for await (const tree of readListing(vault, index, idHex, { signal })) for (const n of tree.nodes) out.set(nodeNameKey(n), n);
  return out;
}
