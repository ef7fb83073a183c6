/**
 * Hand-made snapshots for restore tests: trees and data sealed with the vault's own keys into real packs, indexed,
 * and a snapshot written, so a restore reads them as it reads a backup's (hostile shapes included: deep nesting,
 * `next` loops, names that are not UTF-8).
 */
import { type PackedType } from '../../src/repo/pack.js';
import { PackWriter } from './pack-writer.js';
import { ObjectType } from '../../src/crypto/object-type.js';
import { type Tree, type TreeNode, encodeTree } from '../../src/repo/tree.js';
import type { VaultFixture } from './vaults.js';

type Blob = { type: PackedType; id: Buffer; bytes: Buffer };

export class HandSnapshot {
  readonly #blobs: Blob[] = [];
  readonly #seen = new Set<string>();

  constructor(private readonly f: VaultFixture) {}

  /** Adds a data chunk; returns its id (hex). */
  data(bytes: Buffer | string): string {
    const b = Buffer.from(bytes);
    return this.#add(ObjectType.data, b);
  }

  /** Adds a tree; returns its id (hex). */
  tree(tree: Tree): string {
    return this.#add(ObjectType.tree, encodeTree(tree));
  }

  /** Adds a tree whose `next` is given by hex id, even one not (yet) added: loops are built this way. */
  treeBytes(bytes: Buffer): string {
    return this.#add(ObjectType.tree, bytes);
  }

  #add(type: PackedType, bytes: Buffer): string {
    const id = this.f.vault.ids.id(bytes);
    const hex = id.toString('hex');
    if (!this.#seen.has(hex)) {
      this.#seen.add(hex);
      this.#blobs.push({ type, id, bytes });
    }
    return hex;
  }

  /** Seals every blob added into packs, indexes them, and writes a snapshot whose root tree is `root`. */
  async seal(root: string): Promise<void> {
    const entries = [];
    for (let i = 0; i < this.#blobs.length; i += 20_000) {
      const parts: Buffer[] = [];
      const w = new PackWriter(this.f.vault.keys, (p) => {
        parts.push(...p);
      });
      const added = [];
      for (const b of this.#blobs.slice(i, i + 20_000)) added.push(await w.add(b.type, b.id, b.bytes));
      const info = await w.finish();
      const hex = info.id.toString('hex');
      await this.f.store.put(`data/${hex.slice(0, 2)}/${hex}`, Buffer.concat(parts));
      for (const e of added) entries.push({ ...e, packId: info.id });
    }
    await this.f.vault.writeIndex(entries);
    await this.f.vault.writeSnapshot({
      version: 1, time: '2026-11-22T00:00:00.000Z', hostname: 'x', paths: ['/src'], tree: root, parent: null,
      status: 'complete', warnings: 0, stats: { files: 0, dirs: 0, bytesRead: 0, bytesNew: 0, bytesStored: 0, skipped: 0 }, program: 'test',
    });
  }
}

/** A file node holding `chunks` (ids from {@link HandSnapshot.data}) of `size` bytes in all. */
export function fileNode(name: string | Buffer, size: number, chunks: string[], over: Partial<TreeNode> = {}): TreeNode {
  return { ...nameOf(name), type: 'file', mode: 0o644, mtimeNs: '1000000000', size, content: chunks, ...over };
}

/** A folder node listing tree `subtree`. */
export function dirNode(name: string | Buffer, subtree: string, over: Partial<TreeNode> = {}): TreeNode {
  return { ...nameOf(name), type: 'dir', mode: 0o755, mtimeNs: '1000000000', subtree, ...over };
}

function nameOf(name: string | Buffer): { name: string } | { nameRaw: string } {
  return typeof name === 'string' ? { name } : { nameRaw: name.toString('base64') };
}
