/**
 * `verify()`: is every snapshot restorable?
 *
 * Structure (always): every snapshot opens; every tree it references opens and is well formed; every blob a tree
 * references is in the index; every pack the index names exists and is long enough for the entries in it.
 * Data (`readData`): every pack in use is downloaded, its bytes hash to its name, and every blob the index places in
 * it opens under its id and hashes back to that id.
 *
 * Damage is reported by object name (snapshot, tree, pack, chunk), together with the snapshots and files it
 * affects, found by a second walk over the trees that reference damaged objects.
 *
 * @module
 */
import { createHash } from 'node:crypto';
import { VaultpathError, throwIfAborted } from '../errors.js';
import { toHex } from '../bytes.js';
import type { BlobLocation, Vault, VaultIndex } from '../repo/vault.js';
import { Folder, idFromName, objectName } from '../repo/layout.js';
import { type Tree, nodeDisplayName } from '../repo/tree.js';

export interface VerifyOptions {
  /** Download every pack and open every blob. @default false */
  readonly readData?: boolean;
  readonly signal?: AbortSignal;
  readonly onProgress?: (p: { phase: 'trees' | 'data'; done: number; total: number }) => void;
}

export interface Damage {
  /** The damaged or missing object: `snapshots/<id>`, `tree <id>`, `data/<..>/<id>`, `chunk <id>`. */
  readonly object: string;
  readonly problem: string;
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
  const index = await vault.loadIndex({ signal });
  const damaged = new Map<string, string>(); // blob id (hex) or object name → problem
  const snapshotProblems: { object: string; problem: string }[] = [];

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
      if (size === undefined) damaged.set(toHex(id), `its pack ${objectName(Folder.data, Buffer.from(pack, 'hex'))} is missing`);
      else if (at.offset + at.length > size) damaged.set(toHex(id), `its pack ${pack} is shorter than the index says (truncated)`);
    }
  }

  // Data: every pack in use read, hashed and opened.
  let packsRead = 0;
  if (options.readData) {
    const total = byPack.size;
    for (const [pack, entries] of byPack) {
      throwIfAborted(signal);
      if (!packSizes.has(pack)) continue;
      const name = objectName(Folder.data, Buffer.from(pack, 'hex'));
      let bytes: Buffer;
      try {
        bytes = await vault.store.get(name, { signal });
      } catch (e) {
        if ((e as VaultpathError).code === 'VP_ABORTED') throw e;
        for (const [id] of entries) damaged.set(toHex(id), `its pack ${name} cannot be read (${(e as VaultpathError).code ?? 'error'})`);
        continue;
      }
      packsRead++;
      const hashOk = createHash('sha256').update(bytes).digest('hex') === pack;
      for (const [id, at] of entries) {
        try {
          vault.openBlobAt(at, id, bytes.subarray(at.offset, at.offset + at.length));
        } catch (e) {
          if ((e as VaultpathError).code === 'VP_ABORTED') throw e;
          damaged.set(toHex(id), `${hashOk ? '' : `pack ${name} does not hash to its name, and `}${(e as Error).message}`);
        }
      }
      options.onProgress?.({ phase: 'data', done: packsRead, total });
    }
  }

  // Structure: snapshots and their trees, each tree once.
  const snapshots = await vault.listSnapshots({
    signal,
    onError: (id, e) => snapshotProblems.push({ object: `snapshots/${id}`, problem: (e as Error).message }),
  });
  const treesSeen = new Set<string>();
  const blobsSeen = new Set<string>();
  for (const { snapshot } of snapshots) {
    await walkTrees(vault, index, snapshot.tree, treesSeen, signal, damaged, (ids) => {
      for (const id of ids) {
        blobsSeen.add(id);
        if (!index.has(Buffer.from(id, 'hex'))) damaged.set(id, 'it is not in the index (its data was never stored, or the index is damaged)');
      }
    });
    options.onProgress?.({ phase: 'trees', done: treesSeen.size, total: treesSeen.size });
  }

  // Who is affected: walk again, collecting snapshots and files that reference damaged objects.
  const damage: Damage[] = [...snapshotProblems.map((p) => ({ ...p, snapshots: [p.object.slice('snapshots/'.length)], files: [] }))];
  if (damaged.size > 0) {
    const affected = new Map<string, { snapshots: Set<string>; files: string[] }>();
    for (const key of damaged.keys()) affected.set(key, { snapshots: new Set(), files: [] });
    for (const { id, snapshot } of snapshots) {
      await findAffected(vault, index, snapshot.tree, '', id, affected, signal);
    }
    for (const [key, problem] of damaged) {
      const a = affected.get(key)!;
      const object = key.startsWith('tree ') ? key : /^[0-9a-f]{64}$/.test(key) ? `chunk ${key}` : key;
      damage.push({ object, problem, snapshots: [...a.snapshots], files: a.files.slice(0, 100) });
    }
  }
  return { snapshots: snapshots.length, trees: treesSeen.size, blobs: blobsSeen.size, packs: byPack.size, packsRead, damage };
}

async function walkTrees(
  vault: Vault,
  index: VaultIndex,
  treeId: string,
  seen: Set<string>,
  signal: AbortSignal | undefined,
  damaged: Map<string, string>,
  onContent: (ids: readonly string[]) => void,
): Promise<void> {
  for (let id: string | undefined = treeId; id; ) {
    if (seen.has(id)) return;
    seen.add(id);
    throwIfAborted(signal);
    let tree: Tree;
    try {
      tree = await vault.readTree(index, id, { signal });
    } catch (e) {
      if ((e as VaultpathError).code === 'VP_ABORTED') throw e;
      damaged.set(`tree ${id}`, (e as Error).message);
      return;
    }
    for (const n of tree.nodes) {
      if (n.type === 'file') onContent(n.content ?? []);
      else if (n.type === 'dir' && n.subtree) await walkTrees(vault, index, n.subtree, seen, signal, damaged, onContent);
    }
    id = tree.next;
  }
}

async function findAffected(
  vault: Vault,
  index: VaultIndex,
  treeId: string,
  path: string,
  snapshot: string,
  affected: Map<string, { snapshots: Set<string>; files: string[] }>,
  signal: AbortSignal | undefined,
): Promise<void> {
  for (let id: string | undefined = treeId; id; ) {
    const broken = affected.get(`tree ${id}`);
    if (broken) {
      broken.snapshots.add(snapshot);
      broken.files.push(`${snapshot.slice(0, 8)}:${path || '/'}`);
      return;
    }
    let tree: Tree;
    try {
      tree = await vault.readTree(index, id, { signal });
    } catch {
      return;
    }
    for (const n of tree.nodes) {
      const p = path === '' ? nodeDisplayName(n) : `${path}/${nodeDisplayName(n)}`;
      if (n.type === 'dir' && n.subtree) await findAffected(vault, index, n.subtree, p, snapshot, affected, signal);
      else if (n.type === 'file') {
        for (const c of n.content ?? []) {
          const a = affected.get(c);
          if (a) {
            a.snapshots.add(snapshot);
            if (a.files.length < 100) a.files.push(`${snapshot.slice(0, 8)}:${p}`);
          }
        }
      }
    }
    id = tree.next;
  }
}
