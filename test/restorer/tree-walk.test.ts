// The one walk of a snapshot's trees (src/repo/tree-walk.ts), shared by restore and verify: its depth bound (thrown,
// or reported and passed by), its reading hook (verify reads each tree once), and its memo, through which a restore
// reads each tree once: the planning walk keeps what it read (within a budget) for the restoring walk.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { backup } from '../../src/engine/backup.js';
import { restore } from '../../src/engine/restore.js';
import { MAX_CHAIN, TreeMemo, type TreeVisitor, readListing, readTree, walkTrees } from '../../src/repo/tree-walk.js';
import { type Tree, encodeTree } from '../../src/repo/tree.js';
import { HandSnapshot, dirNode, fileNode } from '../support/restore-trees.js';
import { type VaultFixture, makeVault } from '../support/vaults.js';

let f: VaultFixture;
beforeEach(async () => {
  f = await makeVault();
});
afterEach(() => f.cleanup());

const tree = (n: number): Tree => ({ nodes: Array.from({ length: n }, (_, i) => ({ name: `f${i}`, type: 'file' as const, mode: 0o644, mtimeNs: '0', size: 0, content: [] })) });

describe('a tree memo', () => {
  it('hands a kept tree out once, only after the first walk, and keeps no more than its budget', () => {
    const memo = new TreeMemo(100);
    const [a, b, c] = [tree(1), tree(2), tree(3)];
    memo.keep('a', a, 60);
    memo.keep('b', b, 50); // past the budget: not kept
    memo.keep('c', c, 40);
    expect(memo.take('a')).toBeUndefined(); // still the first walk
    memo.stopKeeping();
    memo.keep('b', b, 1); // the first walk is over
    expect(memo.take('a')).toBe(a);
    expect(memo.take('a')).toBeUndefined();
    expect(memo.take('b')).toBeUndefined();
    expect(memo.take('c')).toBe(c);
  });
});

describe.runIf(process.platform === 'linux')('restore', () => {
  it('reads each tree of a snapshot once, though it walks them twice (plan, then restore)', async () => {
    const src = f.path('src');
    for (let d = 0; d < 5; d++) {
      await mkdir(join(src, `d${d}`, 'e'), { recursive: true });
      await writeFile(join(src, `d${d}`, 'a'), `a${d}`);
      await writeFile(join(src, `d${d}`, 'e', 'b'), `b${d}`);
    }
    await backup(f.vault, [src], { scratchDir: f.path('scratch') });
    const read = vi.spyOn(f.vault, 'readTree');
    const r = await restore(f.vault, 'latest', f.path('target'), { recoveryFolder: f.path('recovery') });
    expect(r.errors).toEqual([]);
    expect(r.files).toBe(10);
    const ids = read.mock.calls.map((c) => c[1]);
    expect(new Set(ids).size).toBeGreaterThanOrEqual(12); // root, src, 5 × (d, e)
    expect(ids.length).toBe(new Set(ids).size);
  });
});

/** A visitor that writes down what the walk visits, in order: `+dir`, `-dir`, `file`, `!limit`. */
function recorder(extra: Partial<TreeVisitor<string>> = {}): { visitor: TreeVisitor<string>; seen: string[] } {
  const seen: string[] = [];
  const visitor: TreeVisitor<string> = {
    enter: (_parent, _node, _name, rel) => {
      seen.push(`+${rel}`);
      return rel;
    },
    leave: (dir) => void seen.push(`-${dir}`),
    leaf: (_parent, _node, _name, rel) => void seen.push(rel),
    unreadable: (_dir, rel) => void seen.push(`?${rel}`),
    ...extra,
  };
  return { visitor, seen };
}

/** A snapshot `deep/d/d/d` (four levels below the root), then a file `after` beside `deep`. */
async function deepThenFile(): Promise<string> {
  const s = new HandSnapshot(f);
  let below = s.tree({ nodes: [] });
  for (let i = 0; i < 3; i++) below = s.tree({ nodes: [dirNode('d', below)] });
  const root = s.tree({ nodes: [dirNode('deep', below), fileNode('after', 0, [])] });
  await s.seal(root);
  return root;
}

describe('the tree walker', () => {
  it('fails with VP_FORMAT_LIMIT at a folder past its depth bound, before entering it', async () => {
    const root = await deepThenFile();
    const index = await f.vault.loadIndex();
    const { visitor, seen } = recorder();
    await expect(walkTrees(f.vault, index, root, '', visitor, { maxDepth: 3 })).rejects.toMatchObject({
      code: 'VP_FORMAT_LIMIT', message: expect.stringContaining('The folder deep/d/d/d is nested more than 3 levels deep'),
    });
    expect(seen).toEqual(['+deep', '+deep/d', '+deep/d/d']);
    // Four levels are within the format's own bound.
    const all = recorder();
    await walkTrees(f.vault, index, root, '', all.visitor);
    expect(all.seen).toEqual(['+deep', '+deep/d', '+deep/d/d', '+deep/d/d/d', '-deep/d/d/d', '-deep/d/d', '-deep/d', '-deep', 'after', '-']);
  });

  it('with a limit callback, reports the folder past the bound (its tree id) and walks on beside it', async () => {
    const root = await deepThenFile();
    const index = await f.vault.loadIndex();
    const limits: [string, string, string][] = [];
    const { visitor, seen } = recorder({ limit: (_dir, rel, e, id, bound) => void limits.push([rel, e.code, `${bound} ${id.length}`]) });
    await walkTrees(f.vault, index, root, '', visitor, { maxDepth: 3 });
    expect(limits).toEqual([['deep/d/d/d', 'VP_FORMAT_LIMIT', 'depth 64']]);
    expect(seen).toEqual(['+deep', '+deep/d', '+deep/d/d', '-deep/d/d', '-deep/d', '-deep', 'after', '-']);
  });

  it('reads a subtree listed twice twice, unless its reading hook declines one it has read', async () => {
    const s = new HandSnapshot(f);
    const shared = s.tree({ nodes: [fileNode('x', 0, [])] });
    const root = s.tree({ nodes: [dirNode('a', shared), dirNode('b', shared)] });
    await s.seal(root);
    const index = await f.vault.loadIndex();
    const read = vi.spyOn(f.vault, 'readTree');
    const twice = recorder();
    await walkTrees(f.vault, index, root, '', twice.visitor);
    expect(twice.seen).toEqual(['+a', 'a/x', '-a', '+b', 'b/x', '-b', '-']);
    expect(read.mock.calls.map((c) => c[1])).toEqual([root, shared, shared]);
    read.mockClear();
    const once = new Set<string>();
    const hooked = recorder({ reading: (id) => !once.has(id) && once.add(id) !== undefined });
    await walkTrees(f.vault, index, root, '', hooked.visitor);
    expect(hooked.seen).toEqual(['+a', 'a/x', '-a', '+b', '-b', '-']);
    expect(read.mock.calls.map((c) => c[1])).toEqual([root, shared]);
  });

  it('with foldersLast, visits a listing\'s files first, then its folders, the last first', async () => {
    const s = new HandSnapshot(f);
    const leafTree = (name: string) => s.tree({ nodes: [fileNode(name, 0, [])] });
    const root = s.tree({ nodes: [dirNode('a', leafTree('x')), fileNode('m', 0, []), dirNode('b', leafTree('y')), fileNode('z', 0, [])] });
    await s.seal(root);
    const index = await f.vault.loadIndex();
    const listing = recorder();
    await walkTrees(f.vault, index, root, '', listing.visitor);
    expect(listing.seen).toEqual(['+a', 'a/x', '-a', 'm', '+b', 'b/y', '-b', 'z', '-']);
    const last = recorder();
    await walkTrees(f.vault, index, root, '', last.visitor, { foldersLast: true });
    expect(last.seen).toEqual(['m', 'z', '+b', 'b/y', '-b', '+a', 'a/x', '-a', '-']);
  });

  it('reads one folder\'s listing through its next chain, and fails with VP_FORMAT_LIMIT past MAX_CHAIN blobs', async () => {
    const s = new HandSnapshot(f);
    const chainOf = (length: number, name: string): string => {
      let next: string | undefined;
      for (let i = 0; i < length; i++) next = s.treeBytes(encodeTree({ nodes: [fileNode(`${name}${i}`, 0, [])], ...(next ? { next } : {}) }));
      return next!;
    };
    const short = chainOf(3, 's');
    const long = chainOf(MAX_CHAIN + 1, 'l');
    await s.seal(s.tree({ nodes: [dirNode('short', short), dirNode('long', long)] }));
    const index = await f.vault.loadIndex();
    const names: string[] = [];
    for await (const tree of readListing(f.vault, index, short)) names.push(...tree.nodes.map((n) => n.name!));
    expect(names).toEqual(['s2', 's1', 's0']);
    let blobs = 0;
    const reading = (async () => {
      for await (const _ of readListing(f.vault, index, long, { shown: 'long' })) blobs++;
    })();
    await expect(reading).rejects.toMatchObject({ code: 'VP_FORMAT_LIMIT', message: expect.stringContaining(`The listing of long continues through more than ${MAX_CHAIN} trees`) });
    expect(blobs).toBe(MAX_CHAIN);
  }, 60_000);

  it('reads one tree by id through the memo: a kept tree is taken once, then read from the vault again', async () => {
    const s = new HandSnapshot(f);
    const root = s.tree({ nodes: [fileNode('x', 0, [])] });
    await s.seal(root);
    const index = await f.vault.loadIndex();
    const read = vi.spyOn(f.vault, 'readTree');
    const memo = new TreeMemo();
    const first = await readTree(f.vault, index, root, { memo });
    memo.stopKeeping();
    expect(await readTree(f.vault, index, root, { memo })).toBe(first);
    expect(await readTree(f.vault, index, root, { memo })).toEqual(first);
    expect(read).toHaveBeenCalledTimes(2);
    await expect(readTree(f.vault, index, 'ab'.repeat(32))).rejects.toMatchObject({ code: 'VP_NOT_FOUND' });
  });
});
