/**
 * A walk of a snapshot's trees (FORMAT.md §10) that a hostile vault cannot make endless or unbounded.
 *
 * Iterative (an explicit stack, never JS recursion), depth first, in listing order. Bounds, each failing the walk
 * with `VP_FORMAT_LIMIT` the moment it is passed, before anything below is visited:
 * - folders nest at most {@link MAX_TREE_DEPTH} levels below the root tree (a subtree that names itself or an
 *   ancestor is such a nesting);
 * - a listing's `next` chain holds at most {@link MAX_CHAIN} tree blobs, and a chain that comes back on itself is
 *   caught within twice its length (Brent's cycle detection: constant memory);
 * - the tree blobs held on the stack (one per open level) total at most {@link MAX_HELD_BYTES} sealed bytes.
 * A listing that cannot be read (missing, damaged) is reported to the visitor and skipped: the rest goes on.
 *
 * @module
 */
import { VaultpathError, throwIfAborted } from '../errors.js';
import type { Vault, VaultIndex } from '../repo/vault.js';
import { MAX_TREE_DEPTH, type Tree, type TreeNode, checkNodeName, nodeDisplayName, nodeNameBytes } from '../repo/tree.js';

/** Tree blobs one folder's listing may chain through `next`: 10,000 × 10,000 nodes, far past any real folder. */
export const MAX_CHAIN = 10_000;
/** Sealed bytes of the tree blobs held at once along the current path. */
export const MAX_HELD_BYTES = 256 * 1024 * 1024;

export interface TreeVisitor<D> {
  /** A folder node of `parent`: returns what stands for it while its listing is walked. */
  enter(parent: D, node: TreeNode, name: Buffer, rel: string): D;
  /** Its listing is walked whole (or could not be read). */
  leave(dir: D): void;
  /** A file or link node of `parent`. Awaited: it may hold the walk back. */
  leaf(parent: D, node: TreeNode, name: Buffer, rel: string): void | Promise<void>;
  /** A node whose name could lead outside its folder: `shown` is its relative path with the name quoted. */
  refused(shown: string, why: string): void;
  /** A listing (or a continuation of it) that cannot be read. */
  unreadable(dir: D, rel: string, error: unknown): void;
  /** Whether to stop early (checked before each node). */
  stopped?(): boolean;
}

interface Frame<D> {
  readonly dir: D;
  readonly rel: string;
  readonly depth: number;
  tree: Tree | undefined;
  held: number;
  i: number;
  next: string | undefined;
  /** The chain so far: blobs read, and Brent's checkpoint and power. */
  blobs: number;
  saved: string | undefined;
  power: number;
}

function limit(message: string): VaultpathError {
  return new VaultpathError('VP_FORMAT_LIMIT', `${message}; the snapshot is damaged or was made to harm. Nothing below it is restored.`);
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
 * Walks the trees from `rootTree` (the snapshot's root), calling `visitor` for every node; with `memo`, trees are
 * kept for (or taken from) another walk of the same snapshot.
 */
export async function walkTrees<D>(
  vault: Vault,
  index: VaultIndex,
  rootTree: string,
  root: D,
  visitor: TreeVisitor<D>,
  signal: AbortSignal | undefined,
  memo?: TreeMemo,
): Promise<void> {
  const frame = (dir: D, rel: string, depth: number, tree: string): Frame<D> => ({ dir, rel, depth, tree: undefined, held: 0, i: 0, next: tree, blobs: 0, saved: undefined, power: 1 });
  const stack: Frame<D>[] = [frame(root, '', 0, rootTree)];
  let held = 0;
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
        stack.pop();
        visitor.leave(f.dir);
        continue;
      }
      const shown = f.rel === '' ? '/' : f.rel;
      if (f.blobs > 0 && id === f.saved) throw limit(`The listing of ${shown} continues in a loop (tree ${id} comes back)`);
      if (++f.blobs > MAX_CHAIN) throw limit(`The listing of ${shown} continues through more than ${MAX_CHAIN} trees`);
      if (f.blobs === f.power) {
        f.saved = id;
        f.power *= 2;
      }
      const size = index.get(Buffer.from(id, 'hex'))?.length ?? 0;
      if (held + size > MAX_HELD_BYTES) throw limit(`The listings along ${shown} hold more than ${MAX_HELD_BYTES} bytes at once`);
      try {
        const kept = memo?.take(id);
        f.tree = kept ?? (await vault.readTree(index, id, { signal }));
        if (!kept) memo?.keep(id, f.tree, size);
      } catch (e) {
        if ((e as VaultpathError).code === 'VP_ABORTED') throw e;
        visitor.unreadable(f.dir, f.rel, e);
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
    const unsafe = checkNodeName(name);
    if (unsafe) {
      visitor.refused(`${f.rel === '' ? '' : `${f.rel}/`}${JSON.stringify(shownName)}`, unsafe);
      continue;
    }
    if (node.type === 'dir') {
      if (f.depth + 1 > MAX_TREE_DEPTH) throw limit(`The folder ${rel} is nested more than ${MAX_TREE_DEPTH} levels deep`);
      stack.push(frame(visitor.enter(f.dir, node, name, rel), rel, f.depth + 1, node.subtree!));
    } else {
      await visitor.leaf(f.dir, node, name, rel);
    }
  }
}
