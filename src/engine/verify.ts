/**
 * `verify()`: is every snapshot restorable?
 *
 * Structure (always): every snapshot opens; every index object opens; every tree a snapshot references opens, is
 * well formed and lies at most {@link MAX_TREE_DEPTH} folders deep; every blob a tree references is in the index;
 * every pack the index names exists and is long enough for the entries in it.
 * Data (`readData`): every pack in use is read, in windows of {@link PACK_WINDOW} bytes, its bytes hash to its name,
 * and every blob the index places in it opens under its id and hashes back to that id (repo/pack-check.ts).
 *
 * Objects are read in the reverse of the order a backup writes them (packs, then index, then snapshot): snapshots
 * are listed first, then the index is loaded, then packs are listed. Everything a listed snapshot needs was
 * written before the snapshot, so it is seen, and a backup that runs while this verifies is never taken for damage.
 *
 * Trees are walked by the vault layer's one walker (tree-walk.ts: an explicit stack, bounded), each tree once, so
 * neither a deep nor a cyclic chain of trees (through subtrees or `next`) can exhaust the stack or loop; a tree below
 * the depth limit is reported (`VP_FORMAT_LIMIT`), as is a listing past the walker's other bounds.
 *
 * Damage is reported by object name (snapshot, index object, tree, pack, chunk), together with the snapshots and
 * files it affects, found by a second walk over the trees that reference damaged objects.
 *
 * @module
 */
import { type ErrorCode, VaultpathError, throwIfAborted } from '../errors.js';
import { toHex } from '../bytes.js';
import type { BlobLocation, Vault, VaultIndex } from '../repo/vault.js';
import { type Found, PACK_WINDOW, checkPack, codeOf } from '../repo/pack-check.js';
import { Folder, idFromName, objectName } from '../repo/layout.js';
import { MAX_TREE_DEPTH, type TreeNode } from '../repo/tree.js';
import { type TreeVisitor, walkTrees } from '../repo/tree-walk.js';

export { PACK_WINDOW } from '../repo/pack-check.js';

export interface VerifyOptions {
  /** Download every pack and open every blob. @default false */
  readonly readData?: boolean;
  readonly signal?: AbortSignal;
  readonly onProgress?: (p: { phase: 'trees' | 'data'; done: number; total: number }) => void;
}

export interface Damage {
  /**
   * The damaged or missing object: `snapshots/<id>`, `index/<..>/<id>`, `tree <id>`, `data/<..>/<id>` (a pack),
   * `chunk <id>`.
   */
  readonly object: string;
  readonly problem: string;
  /** The error code behind the problem, when there is one (e.g. `VP_AUTH_FAILED`, `VP_FORMAT_LIMIT`). */
  readonly code?: ErrorCode;
  /** Snapshots that cannot be fully restored because of it (ids). */
  readonly snapshots: readonly string[];
  /** Files (as `snapshot:path`) that depend on it; at most 100 listed. */
  readonly files: readonly string[];
}

export interface VerifyResult {
  readonly snapshots: number;
  readonly trees: number;
  readonly blobs: number;
  readonly packs: number;
  /** Packs read and hashed (with readData). */
  readonly packsRead: number;
  readonly damage: readonly Damage[];
}

/**
 * Verifies `vault`.
 * @throws {VaultpathError} store errors other than missing objects, `VP_ABORTED`. Damage is returned, not thrown.
 */
export async function verify(vault: Vault, options: VerifyOptions = {}): Promise<VerifyResult> {
  const { signal } = options;
  const damage: Damage[] = [];
  const damaged: Found = new Map();

  // Snapshots, then the index, then packs: the reverse of the order a backup writes them (see the header).
  const listing = await vault.listSnapshots({ signal, includeDamaged: true });
  const snapshots: { id: string; tree: string }[] = [];
  for (const s of listing) {
    if (s.error === undefined) snapshots.push({ id: s.id, tree: s.snapshot.tree });
    else damage.push({ object: `snapshots/${s.id}`, problem: s.error.message, code: s.error.code, snapshots: [s.id], files: [] });
  }
  const index = await vault.loadIndex({ signal });
  for (const d of index.damaged) {
    damage.push({
      object: d.object,
      problem: `${d.error.message} The blobs it lists are unknown to backups (which store them again when they need them) and to restores. Delete this index object from the vault to clear this report; then run a backup.`,
      code: d.error.code,
      snapshots: [],
      files: [],
    });
  }

  // Packs: present, and long enough for what the index places in them.
  const packSizes = new Map<string, number>();
  for await (const o of vault.store.list(`${Folder.data}/`, { signal })) {
    const id = idFromName(Folder.data, o.name);
    if (id) packSizes.set(toHex(id), o.size);
  }
  const byPack = new Map<string, [Buffer, BlobLocation][]>();
  for (const [id, at] of index.entries()) {
    const pack = toHex(at.packId);
    let list = byPack.get(pack);
    if (!list) byPack.set(pack, (list = []));
    list.push([id, at]);
  }
  for (const [pack, entries] of byPack) {
    const size = packSizes.get(pack);
    for (const [id, at] of entries) {
      if (size === undefined) damaged.set(toHex(id), { problem: `its pack ${objectName(Folder.data, Buffer.from(pack, 'hex'))} is missing`, code: 'VP_NOT_FOUND' });
      else if (at.offset + at.length > size) damaged.set(toHex(id), { problem: `its pack ${pack} is shorter than the index says (truncated)`, code: 'VP_MALFORMED_OBJECT' });
    }
  }

  // Data: every pack in use read, hashed and opened.
  let packsRead = 0;
  if (options.readData) {
    const total = byPack.size;
    for (const [pack, entries] of byPack) {
      throwIfAborted(signal);
      const size = packSizes.get(pack);
      if (size === undefined) continue;
      if (await checkPack(vault, pack, size, entries, damaged, signal)) packsRead++;
      options.onProgress?.({ phase: 'data', done: packsRead, total });
    }
  }

  // Structure: snapshots and their trees, each tree once.
  const treesSeen = new Set<string>();
  const blobsSeen = new Set<string>();
  for (const { tree } of snapshots) {
    await checkTrees(vault, index, tree, treesSeen, signal, damaged, (ids) => {
      for (const id of ids) {
        blobsSeen.add(id);
        if (!index.hasHex(id)) damaged.set(id, { problem: 'it is not in the index (its data was never stored, or the index is damaged)', code: 'VP_NOT_FOUND' });
      }
    });
    options.onProgress?.({ phase: 'trees', done: treesSeen.size, total: treesSeen.size });
  }

  // Who is affected: walk again, collecting snapshots and files that reference damaged objects.
  if (damaged.size > 0) {
    const affected = new Map<string, { snapshots: Set<string>; files: string[] }>();
    for (const key of damaged.keys()) affected.set(key, { snapshots: new Set(), files: [] });
    const packsDamaged = [...damaged.keys()].some((k) => k.startsWith(`${Folder.data}/`));
    for (const { id, tree } of snapshots) {
      await findAffected(vault, index, tree, id, affected, packsDamaged, signal);
    }
    for (const [key, { problem, code }] of damaged) {
      const a = affected.get(key)!;
      const object = key.startsWith('tree ') || key.startsWith(`${Folder.data}/`) ? key : `chunk ${key}`;
      damage.push({ object, problem, ...(code ? { code } : {}), snapshots: [...a.snapshots], files: a.files.slice(0, 100) });
    }
  }
  return { snapshots: snapshots.length, trees: treesSeen.size, blobs: blobsSeen.size, packs: byPack.size, packsRead, damage };
}

/** `VP_FORMAT_LIMIT` for tree `id`, found below the depth limit. */
function tooDeep(id: string): VaultpathError {
  return new VaultpathError(
    'VP_FORMAT_LIMIT',
    `tree ${id} lies more than ${MAX_TREE_DEPTH} folders deep; restores refuse it. The snapshot is damaged or was written by another program.`,
  );
}

/**
 * Verify counts a tree this many levels below a snapshot's root as too deep (the root is at depth 1 in its message,
 * so the tree reported "more than MAX_TREE_DEPTH folders deep" is MAX_TREE_DEPTH levels below the root).
 */
const VERIFY_DEPTH = MAX_TREE_DEPTH - 1;

/**
 * Walks the trees below `treeId` (subtrees and `next` continuations), each once across calls (`seen`): reads every
 * tree, records what fails in `damaged`, hands every file's chunk list to `onContent`.
 */
async function checkTrees(
  vault: Vault,
  index: VaultIndex,
  treeId: string,
  seen: Set<string>,
  signal: AbortSignal | undefined,
  damaged: Found,
  onContent: (ids: readonly string[]) => void,
): Promise<void> {
  const visitor: TreeVisitor<undefined> = {
    enter: () => undefined,
    leave: () => undefined,
    leaf(_dir, node) {
      if (node.type === 'file') onContent(node.content ?? []);
    },
    // A tree already walked is not read again, nor one a listing names twice: a listing of thousands of folders
    // naming one subtree, level after level, cannot make the walk read it thousands of times.
    reading: (id) => once(seen, id),
    unreadable(_dir, _rel, e, id) {
      damaged.set(`tree ${id}`, { problem: (e as Error).message, code: codeOf(e) });
    },
    limit(_dir, _rel, e, id, bound) {
      if (!once(seen, id)) return;
      const error = bound === 'depth' ? tooDeep(id) : e;
      damaged.set(`tree ${id}`, { problem: error.message, code: error.code });
    },
  };
  await walkTrees(vault, index, treeId, undefined, visitor, { signal, maxDepth: VERIFY_DEPTH, foldersLast: true });
}

/** Adds `id` to `seen`; whether it was not there yet. */
function once(seen: Set<string>, id: string): boolean {
  if (seen.has(id)) return false;
  seen.add(id);
  return true;
}

/**
 * Walks snapshot `snapshot`'s trees from `treeId` and records, for each damaged object it references (keys of
 * `affected`), the snapshot and the paths. With `packsDamaged`, a blob in a damaged pack counts as well. Each tree
 * is read once per snapshot and no deeper than the depth limit, so a cycle or a deep chain ends.
 */
async function findAffected(
  vault: Vault,
  index: VaultIndex,
  treeId: string,
  snapshot: string,
  affected: Map<string, { snapshots: Set<string>; files: string[] }>,
  packsDamaged: boolean,
  signal: AbortSignal | undefined,
): Promise<void> {
  const note = (key: string, path: string): boolean => {
    const a = affected.get(key);
    if (!a) return false;
    a.snapshots.add(snapshot);
    if (a.files.length < 100) a.files.push(`${snapshot.slice(0, 8)}:${path || '/'}`);
    return true;
  };
  const packOf = (idHex: string): string | undefined => {
    const at = packsDamaged ? index.get(Buffer.from(idHex, 'hex')) : undefined;
    return at && objectName(Folder.data, at.packId);
  };
  const seen = new Set<string>();
  // Folders stand for their path; a tree shared by folders is attributed to the first.
  const visitor: TreeVisitor<string> = {
    enter: (_parent, _node, _name, rel) => rel,
    leave: () => undefined,
    leaf(_dir, node: TreeNode, _name, rel) {
      if (node.type !== 'file') return;
      const packs = new Set<string>();
      for (const c of node.content ?? []) {
        note(c, rel);
        const cp = packOf(c);
        if (cp && !packs.has(cp)) {
          packs.add(cp);
          note(cp, rel);
        }
      }
    },
    reading(id, _dir, rel) {
      if (!once(seen, id) || note(`tree ${id}`, rel)) return false;
      const pack = packOf(id);
      if (pack) note(pack, rel);
      return true;
    },
    unreadable: () => undefined,
    limit(_dir, rel, _e, id) {
      if (once(seen, id)) note(`tree ${id}`, rel);
    },
  };
  await walkTrees(vault, index, treeId, '', visitor, { signal, maxDepth: VERIFY_DEPTH, foldersLast: true });
}
