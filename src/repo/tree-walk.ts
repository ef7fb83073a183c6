/**
 * The one walk of a snapshot's trees (FORMAT.md §10), for every reader: restore (plan, then restore), verify
 * (structure, then who is affected), and one tree at a time for a backup's parent match ({@link readTree}). A hostile
 * vault cannot make it endless or unbounded.
 *
 * Iterative (an explicit stack, never JS recursion), depth first, in listing order (or, with `foldersLast`, each
 * listing's files and links first and its folders after, the last first: verify's order, so its report reads as it
 * always did). Bounds, each passed the moment
 * it is met, before anything below is visited:
 * - folders nest at most `maxDepth` ({@link MAX_TREE_DEPTH}) levels below the root tree (a subtree that names itself
 *   or an ancestor is such a nesting);
 * - a listing's `next` chain holds at most {@link MAX_CHAIN} tree blobs, and a chain that comes back on itself is
 *   caught within twice its length (Brent's cycle detection: constant memory);
 * - the tree blobs held on the stack (one per open level) total at most {@link MAX_HELD_BYTES} sealed bytes.
 * A passed bound fails the walk with `VP_FORMAT_LIMIT`, or, for a visitor with {@link TreeVisitor.limit}, is
 * reported there and that folder's listing is left (verify reports damage and goes on). A listing that cannot be
 * read (missing, damaged) is reported to the visitor and skipped: the rest goes on.
 *
 * Every tree is read through {@link readTree}: authenticated and decoded by the vault, or taken once from a
 * {@link TreeMemo} that an earlier walk of the same snapshot filled.
 *
 * @module
 */
import { VaultpathError, throwIfAborted } from '../errors.js';
import type { Vault, VaultIndex } from './vault.js';
import { MAX_TREE_DEPTH, type Tree, type TreeNode, checkNodeName, nodeDisplayName, nodeNameBytes } from './tree.js';

/** Tree blobs one folder's listing may chain through `next`: 10,000 × 10,000 nodes, far past any real folder. */
export const MAX_CHAIN = 10_000;
/** Sealed bytes of the tree blobs held at once along the current path. */
export const MAX_HELD_BYTES = 256 * 1024 * 1024;

/**
 * What a walk calls, in listing order. Callbacks MUST NOT throw unless the walk is to stop (the error is the walk's);
 * `leaf` may return a promise, awaited before the next node (it can hold the walk back).
 */
export interface TreeVisitor<D> {
  /** A folder node of `parent`: returns what stands for it while its listing is walked. */
  enter(parent: D, node: TreeNode, name: Buffer, rel: string): D;
  /** Its listing is walked whole (or could not be read, or was left). */
  leave(dir: D): void;
  /** A file or link node of `parent`. Awaited: it may hold the walk back. */
  leaf(parent: D, node: TreeNode, name: Buffer, rel: string): void | Promise<void>;
  /**
   * Before tree blob `id` (the start of `dir`'s listing or a continuation of it) is read: `false` leaves it unread
   * and ends that listing (verify reads each tree once across snapshots this way). @default always read
   */
  reading?(id: string, dir: D, rel: string): boolean;
  /**
   * A node whose name could lead outside its folder: `shown` is its relative path with the name quoted. Without
   * this callback names are not checked (verify reads what a tree references, whatever its names).
   */
  refused?(shown: string, why: string): void;
  /** A listing (or a continuation of it, tree blob `id`) that cannot be read. */
  unreadable(dir: D, rel: string, error: unknown, id: string): void;
  /**
   * A bound passed at tree `id` (`rel` is where: for `depth`, the folder nested too deep, not entered; otherwise the
   * listing, left there). Without this callback the walk fails with `error`.
   */
  limit?(dir: D, rel: string, error: VaultpathError, id: string, bound: 'depth' | 'chain' | 'held'): void;
  /** Whether to stop early (checked before each node). */
  stopped?(): boolean;
}

export interface TreeWalkOptions {
  readonly signal?: AbortSignal;
  /** Trees kept by (or for) another walk of the same snapshot; see {@link TreeMemo}. */
  readonly memo?: TreeMemo;
  /** Folder levels allowed below the root tree. @default MAX_TREE_DEPTH */
  readonly maxDepth?: number;
  /**
   * Visit each listing's files and links (through all its continuations) before its folders, and those last first.
   * The folders wait in their parent's frame: as much memory as their nodes, which the listing held. @default false
   */
  readonly foldersLast?: boolean;
}

interface Frame<D> {
  readonly dir: D;
  readonly rel: string;
  readonly depth: number;
  tree: Tree | undefined;
  held: number;
  i: number;
  next: string | undefined;
  readonly chain: Chain;
  /** With `foldersLast`: the folder nodes of this listing not walked yet, with their names and paths. */
  folders: [TreeNode, Buffer, string][] | undefined;
}

function limit(message: string): VaultpathError {
  return new VaultpathError('VP_FORMAT_LIMIT', `${message}; the snapshot is damaged or was made to harm. Nothing below it is restored.`);
}

/** One listing's `next` chain as it is read: bounded by {@link MAX_CHAIN}, and a loop caught by Brent's method. */
class Chain {
  #blobs = 0;
  /** Brent's checkpoint, and the count at which the next one is taken. */
  #saved: string | undefined;
  #power = 1;

  /** Counts tree blob `id` of the listing of `shown`; the `VP_FORMAT_LIMIT` it passes, if any. */
  step(id: string, shown: string): VaultpathError | undefined {
    if (this.#blobs > 0 && id === this.#saved) return limit(`The listing of ${shown} continues in a loop (tree ${id} comes back)`);
    if (++this.#blobs > MAX_CHAIN) return limit(`The listing of ${shown} continues through more than ${MAX_CHAIN} trees`);
    if (this.#blobs === this.#power) {
      this.#saved = id;
      this.#power *= 2;
    }
    return undefined;
  }
}

/**
 * Trees one walk read, kept for a second walk over the same snapshot (the restore plans, then restores), up to
 * {@link MEMO_BYTES} sealed bytes: the second walk takes each kept tree once, in the order the first read them, and
 * reads the rest again. Memory stays bounded whatever the snapshot's size.
 */
export class TreeMemo {
  readonly #trees = new Map<string, Tree>();
  #bytes = 0;
  #keeping = true;

  constructor(readonly budget = MEMO_BYTES) {}

  /** Keeps `tree` (`bytes` sealed) while keeping and within the budget. */
  keep(id: string, tree: Tree, bytes: number): void {
    if (!this.#keeping || this.#bytes + bytes > this.budget || this.#trees.has(id)) return;
    this.#trees.set(id, tree);
    this.#bytes += bytes;
  }

  /** Ends the first walk: from now on trees are only taken. */
  stopKeeping(): void {
    this.#keeping = false;
  }

  /** The kept tree `id`, handed out once (and no longer held), or `undefined`. */
  take(id: string): Tree | undefined {
    if (this.#keeping) return undefined;
    const tree = this.#trees.get(id);
    if (tree) this.#trees.delete(id);
    return tree;
  }
}

/** Sealed bytes of trees a {@link TreeMemo} keeps at most: about 100,000 nodes, a few tens of MiB decoded. */
export const MEMO_BYTES = 16 * 1024 * 1024;

/**
 * Tree `id`, authenticated and decoded by the vault (`vault.readTree`), or taken from `memo` when an earlier walk
 * kept it (and kept for a later walk while `memo` is keeping). The entry point for reading one tree at a time (a
 * backup matching a folder against its parent snapshot's tree): the same path, and the same checks, as a walk.
 *
 * @throws {VaultpathError} what `vault.readTree` throws (`VP_NOT_FOUND`, `VP_AUTH_FAILED`, `VP_MALFORMED_OBJECT`,
 *   store errors, `VP_ABORTED`).
 */
export async function readTree(vault: Vault, index: VaultIndex, id: string, options: { signal?: AbortSignal; memo?: TreeMemo } = {}): Promise<Tree> {
  const { signal, memo } = options;
  const kept = memo?.take(id);
  if (kept) return kept;
  const tree = await vault.readTree(index, id, { signal });
  memo?.keep(id, tree, sealedSize(index, id));
  return tree;
}

/**
 * The tree blobs of one folder's listing, from `id` through its `next` chain, each read by {@link readTree}: the
 * way to read a whole listing without a walk (a backup matching a folder against its parent snapshot's). `shown`
 * names the folder in errors.
 *
 * @throws {VaultpathError} `VP_FORMAT_LIMIT` (a chain past {@link MAX_CHAIN} blobs, or one that loops), and what
 *   {@link readTree} throws.
 */
export async function* readListing(
  vault: Vault,
  index: VaultIndex,
  id: string,
  options: { signal?: AbortSignal; memo?: TreeMemo; shown?: string } = {},
): AsyncGenerator<Tree, void, undefined> {
  const chain = new Chain();
  for (let next: string | undefined = id; next !== undefined; ) {
    const endless = chain.step(next, options.shown ?? '/');
    if (endless) throw endless;
    const tree: Tree = await readTree(vault, index, next, options);
    yield tree;
    next = tree.next;
  }
}

/** The sealed length of blob `id` as the index records it (0 when it is not there: reading it will say why). */
const sealedSize = (index: VaultIndex, id: string): number => index.get(Buffer.from(id, 'hex'))?.length ?? 0;

/**
 * Walks the trees from `rootTree` (the snapshot's root), calling `visitor` for every node; with `options.memo`,
 * trees are kept for (or taken from) another walk of the same snapshot.
 *
 * @throws {VaultpathError} `VP_FORMAT_LIMIT` (a bound passed, unless the visitor takes `limit`), `VP_ABORTED`, or
 *   what a callback throws.
 */
export async function walkTrees<D>(vault: Vault, index: VaultIndex, rootTree: string, root: D, visitor: TreeVisitor<D>, options: TreeWalkOptions = {}): Promise<void> {
  const { signal, memo, maxDepth = MAX_TREE_DEPTH, foldersLast = false } = options;
  const frame = (dir: D, rel: string, depth: number, tree: string): Frame<D> => ({
    dir, rel, depth, tree: undefined, held: 0, i: 0, next: tree, chain: new Chain(), folders: foldersLast ? [] : undefined,
  });
  const stack: Frame<D>[] = [frame(root, '', 0, rootTree)];
  let held = 0;
  /** Fails the walk, or reports the bound and leaves `f`'s listing. */
  const passed = (f: Frame<D>, error: VaultpathError, id: string, bound: 'chain' | 'held'): void => {
    if (!visitor.limit) throw error;
    visitor.limit(f.dir, f.rel, error, id, bound);
    f.next = undefined;
  };
  /** Walks into folder `node` of `f` (named `name`, at `rel`), or meets the depth bound there. */
  const descend = (f: Frame<D>, node: TreeNode, name: Buffer, rel: string): void => {
    if (f.depth + 1 > maxDepth) {
      const error = limit(`The folder ${rel} is nested more than ${maxDepth} levels deep`);
      if (!visitor.limit) throw error;
      visitor.limit(f.dir, rel, error, node.subtree!, 'depth');
      return;
    }
    stack.push(frame(visitor.enter(f.dir, node, name, rel), rel, f.depth + 1, node.subtree!));
  };
  while (stack.length > 0) {
    throwIfAborted(signal);
    if (visitor.stopped?.()) return;
    const f = stack[stack.length - 1]!;
    if (!f.tree || f.i >= f.tree.nodes.length) {
      held -= f.held;
      f.tree = undefined;
      f.held = 0;
      const id = f.next;
      if (id === undefined) {
        const folder = f.folders?.pop();
        if (folder) {
          descend(f, ...folder);
          continue;
        }
        stack.pop();
        visitor.leave(f.dir);
        continue;
      }
      if (visitor.reading && !visitor.reading(id, f.dir, f.rel)) {
        f.next = undefined;
        continue;
      }
      const shown = f.rel === '' ? '/' : f.rel;
      const endless = f.chain.step(id, shown);
      if (endless) {
        passed(f, endless, id, 'chain');
        continue;
      }
      const size = sealedSize(index, id);
      if (held + size > MAX_HELD_BYTES) {
        passed(f, limit(`The listings along ${shown} hold more than ${MAX_HELD_BYTES} bytes at once`), id, 'held');
        continue;
      }
      try {
        f.tree = await readTree(vault, index, id, { signal, memo });
      } catch (e) {
        if ((e as VaultpathError).code === 'VP_ABORTED') throw e;
        visitor.unreadable(f.dir, f.rel, e, id);
        f.next = undefined; // the rest of this listing is out of reach; the folders above go on
        continue;
      }
      f.held = size;
      held += size;
      f.i = 0;
      f.next = f.tree.next;
      continue;
    }
    const node = f.tree.nodes[f.i++]!;
    const shownName = nodeDisplayName(node);
    const rel = f.rel === '' ? shownName : `${f.rel}/${shownName}`;
    const name = nodeNameBytes(node);
    if (visitor.refused) {
      const unsafe = checkNodeName(name);
      if (unsafe) {
        visitor.refused(`${f.rel === '' ? '' : `${f.rel}/`}${JSON.stringify(shownName)}`, unsafe);
        continue;
      }
    }
    if (node.type === 'dir') {
      if (f.folders) f.folders.push([node, name, rel]);
      else descend(f, node, name, rel);
    } else {
      await visitor.leaf(f.dir, node, name, rel);
    }
  }
}
