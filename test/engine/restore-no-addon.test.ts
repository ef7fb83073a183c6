// The restore with no addon at all (as where it did not build: kernels whose ports, descriptor calls included, all
// answer "none"): every call goes through /proc/self/fd/<dirfd>/<name> with Node's own calls, times through
// futimes. Times before 1970, set-ID bits, names that are not UTF-8, and the target's own path (links on the way,
// places where no folder can be made, a racing user).
import { lstat, mkdir, readFile, readdir, utimes, chmod, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { backup } from '../../src/engine/backup.js';
import { restore } from '../../src/engine/restore.js';
import { HandSnapshot, dirNode, fileNode } from '../support/restore-trees.js';
import { type AskedKernels, portableAsked } from '../support/kernels.js';
import { describeTargetPath } from '../support/restore-target.js';
import { type VaultFixture, makeVault } from '../support/vaults.js';

let f: VaultFixture;
let k: AskedKernels;
beforeEach(async () => {
  f = await makeVault();
  k = portableAsked({ descriptorCalls: 'none' });
});
afterEach(() => f.cleanup());

describe.runIf(process.platform === 'linux')('restore without the addon', () => {
  it('restores times before 1970 on files and folders, and clears set-ID bits', async () => {
    const src = f.path('src');
    await mkdir(join(src, 'old'), { recursive: true });
    await writeFile(join(src, 'old', 'file'), 'from 1960\n');
    await writeFile(join(src, 'tool'), '#!/bin/sh\n');
    await chmod(join(src, 'tool'), 0o6755);
    const t = new Date('1960-01-01T00:00:00.500Z');
    await utimes(join(src, 'old', 'file'), t, t);
    await utimes(join(src, 'old'), t, t);
    await backup(f.vault, [src], { scratchDir: f.path('scratch'), kernels: k.kernels });
    const r = await restore(f.vault, 'latest', f.path('target'), { recoveryFolder: f.path('recovery'), kernels: k.kernels });
    expect([...k.asked]).toEqual(expect.arrayContaining(['descriptorCalls', 'fileWriter']));
    expect(r.errors).toEqual([]);
    expect((await lstat(f.path('target', 'src', 'old', 'file'), { bigint: true })).mtimeNs).toBe(-315_619_199_500_000_000n);
    expect((await lstat(f.path('target', 'src', 'old'), { bigint: true })).mtimeNs).toBe(-315_619_199_500_000_000n);
    expect((await lstat(f.path('target', 'src', 'tool'))).mode & 0o7777).toBe(0o755);
    expect(r.setIdCleared).toEqual({ count: 1, paths: ['src/tool'] });
  });

  it('creates names that are not UTF-8 with their exact bytes', async () => {
    const s = new HandSnapshot(f);
    const abc = s.data('abc');
    const rawFile = Buffer.from([0x66, 0xff, 0x80]);
    const rawDir = Buffer.from([0xe9]);
    const inner = s.tree({ nodes: [fileNode('inner', 3, [abc])] });
    await s.seal(s.tree({ nodes: [dirNode('src', s.tree({ nodes: [fileNode(rawFile, 3, [abc]), dirNode(rawDir, inner)] }))] }));
    const r = await restore(f.vault, 'latest', f.path('target'), { recoveryFolder: f.path('recovery'), kernels: k.kernels });
    expect(k.asked.has('descriptorCalls')).toBe(true);
    expect(r.errors).toEqual([]);
    const names = await readdir(f.path('target', 'src'), { encoding: 'buffer' });
    expect(names.map((n) => n.toString('hex')).sort()).toEqual([rawFile.toString('hex'), rawDir.toString('hex')].sort());
    const base = Buffer.from(f.path('target', 'src') + '/');
    expect(await readFile(Buffer.concat([base, rawFile]))).toEqual(Buffer.from('abc'));
    expect(await readFile(Buffer.concat([base, rawDir, Buffer.from('/inner')]))).toEqual(Buffer.from('abc'));
  });

  it('sets times through futimes, to the microsecond, when the kernels have no descriptor calls', async () => {
    const s = new HandSnapshot(f);
    const ns = 1_700_000_000_123_456_789n;
    await s.seal(s.tree({ nodes: [fileNode('t', 3, [s.data('abc')], { mtimeNs: String(ns) })] }));
    const r = await restore(f.vault, 'latest', f.path('target'), { recoveryFolder: f.path('recovery'), kernels: k.kernels });
    expect(r.errors).toEqual([]);
    const restored = (await lstat(f.path('target', 't'), { bigint: true })).mtimeNs;
    // The addon's futimens would set it to the nanosecond; Node's futimes takes seconds as a double.
    expect(restored).not.toBe(ns);
    expect(restored > ns - 1000n && restored < ns + 1000n).toBe(true);
  });

  describeTargetPath(() => f, () => k.kernels);
});
