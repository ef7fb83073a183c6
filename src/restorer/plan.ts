/**
 * The plan of a restore: the snapshot's trees walked once, before the target is touched. A hostile snapshot (trees
 * nested or chained past the format's bounds) fails here with `VP_FORMAT_LIMIT`, so nothing is written; the bytes the
 * files to restore take on disk are summed, and the target's free space checked against them.
 *
 * The reads of the files' chunks are counted per pack, so that the recovery folder keeps a pack until its last
 * reader is done and no more (pack-cache.ts).
 *
 * The walk keeps the trees it reads in a {@link TreeMemo} (up to its budget) for the restoring walk. Names are
 * checked there, not here: a refused name is reported once, by the walk that restores.
 *
 * @module
 */
import { statfsSync } from 'node:fs';
import picomatch from 'picomatch';
import { VaultpathError } from '../errors.js';
import { toHex } from '../bytes.js';
import { ObjectType } from '../crypto/object-type.js';
import type { Vault, VaultIndex } from '../repo/vault.js';
import { type TreeMemo, walkTrees } from '../repo/tree-walk.js';
import { type PackReads, planRead } from '../stage/pack-cache.js';

/** What a restore will write and read. */
export interface RestorePlan {
  /** Bytes the selected files take on disk (whole 4 KiB blocks, holes excluded). */
  readonly bytes: number;
  /** The files selected; the restoring walk meets them in the same order (their ordinals, from 0). */
  readonly files: number;
  /**
   * The chunk reads of the selected files, by pack (hex id): how many, how far into the pack they reach, and which
   * files read it (runs of ordinals). One entry per pack, not per blob (packs hold ~16 blobs), so it stays small
   * beside the index.
   */
  readonly packs: Map<string, PackReads>;
}

/** The include filter of `globs` (relative to the snapshot's root), or `undefined` for everything. */
export function includeFilter(globs: readonly string[] | undefined): ((path: string) => boolean) | undefined {
  return globs && globs.length > 0 ? picomatch([...globs], { dot: true }) : undefined;
}

/**
 * Walks the trees from `rootTree` and returns the bytes the files `include` selects take on disk (whole 4 KiB
 * blocks, holes excluded) and the reads their chunks make per pack, keeping trees in `memo` for the restoring walk.
 * A chunk the index does not have as data is not counted (its file fails when restored).
 *
 * @throws {VaultpathError} `VP_FORMAT_LIMIT`, `VP_ABORTED`.
 */
export async function planRestore(
  vault: Vault,
  index: VaultIndex,
  rootTree: string,
  include: ((path: string) => boolean) | undefined,
  memo: TreeMemo,
  signal: AbortSignal | undefined,
): Promise<RestorePlan> {
  const plan = { bytes: 0, files: 0, packs: new Map<string, PackReads>() };
  await walkTrees(vault, index, rootTree, undefined, {
    enter: () => undefined,
    leave: () => undefined,
    leaf(_parent, node, _name, rel) {
      if (node.type !== 'file' || (include && !include(rel))) return;
      const holes = (node.holes ?? []).reduce((n, [, length]) => n + length, 0);
      plan.bytes += Math.ceil((node.size! - holes) / 4096) * 4096;
      for (const idHex of node.content ?? []) {
        const at = index.get(Buffer.from(idHex, 'hex'));
        if (!at || at.type !== ObjectType.data) continue;
        planRead(plan.packs, toHex(at.packId), at.offset + at.length, plan.files);
      }
      plan.files++;
    },
    refused: () => undefined,
    unreadable: () => undefined,
  }, { signal, memo });
  memo.stopKeeping();
  return plan;
}

/** @throws {VaultpathError} `VP_TARGET_SPACE` when the target's file system has fewer free bytes than `needed`. */
export function checkSpace(dir: string, fd: number, needed: number): void {
  let free: number;
  try {
    const st = statfsSync(`/proc/self/fd/${fd}`);
    free = (process.getuid?.() === 0 ? st.bfree : st.bavail) * st.bsize;
  } catch {
    return; // no statfs here: the first ENOSPC stops the restore instead
  }
  if (needed > free) {
    throw new VaultpathError('VP_TARGET_SPACE', `The restore target ${dir} has ${mib(free)} free; the restore needs ${mib(needed)}. Free space there or restore elsewhere; nothing was written.`);
  }
}

const mib = (n: number): string => `${(n / 1024 / 1024).toFixed(1)} MiB`;
