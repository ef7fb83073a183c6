// A restore reads each tree once: the planning walk keeps what it read (within a budget) for the restoring walk.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { backup } from '../../src/engine/backup.js';
import { restore } from '../../src/engine/restore.js';
import { TreeMemo } from '../../src/repo/tree-walk.js';
import type { Tree } from '../../src/repo/tree.js';
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
