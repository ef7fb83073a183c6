/**
 * The archiver's tree saver: a folder's nodes, in name order, encoded as one tree, or as a chain of trees linked by
 * `next` when they are more than one tree may hold ({@link MAX_TREE_NODES}), each saved as a tree blob.
 *
 * Trees are saved through the same port as data (BlobSaver.saveBlob): a tree the vault has is not stored again, so
 * an unchanged folder costs no upload even when its tree is encoded anew. A dry run computes the ids only.
 *
 * @module
 */
import { ObjectType } from '../crypto/object-type.js';
import type { BlobSaver } from '../repo/blob-saver.js';
import { MAX_TREE_NODES, type Tree, type TreeNode, encodeTree } from '../repo/tree.js';

/** Saves a folder's nodes as one tree, or a chain of trees through `next`; returns the first tree's id (hex). */
export async function saveTree(saver: BlobSaver, nodes: readonly TreeNode[]): Promise<string> {
  let next: string | undefined;
  const pieces = Math.max(1, Math.ceil(nodes.length / MAX_TREE_NODES));
  // The last piece first: each piece names the next one's id.
  for (let p = pieces - 1; p >= 0; p--) {
    const tree: Tree = { nodes: nodes.slice(p * MAX_TREE_NODES, (p + 1) * MAX_TREE_NODES), ...(next ? { next } : {}) };
    const bytes = encodeTree(tree);
    const { id } = await saver.saveBlob(ObjectType.tree, { parts: [bytes], length: bytes.length });
    next = id.toString('hex');
  }
  return next!;
}
