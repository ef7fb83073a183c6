// Restore against hostile snapshots, odd metadata, killed runs and troublesome targets (addon path).
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { chmod, lchown, lstat, mkdir, readFile, readdir, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { backup } from '../../src/engine/backup.js';
import { restore } from '../../src/engine/restore.js';
import { MAX_TREE_DEPTH, encodeTree } from '../../src/repo/tree.js';
import { MAX_CHAIN } from '../../src/repo/tree-walk.js';
import { HandSnapshot, dirNode, fileNode } from '../support/restore-trees.js';
import { isRoot, mountTmpfs, unmount } from '../support/trees.js';
import { type VaultFixture, makeVault } from '../support/vaults.js';

let f: VaultFixture;
beforeEach(async () => {
  f = await makeVault();
});
afterEach(() => f.cleanup());

/** 1960-01-01T00:00:00.5Z in ns since the epoch. */
const NS_1960 = -315_619_199_500_000_000n;

/**
 * A snapshot of `src/sub/a`, this host's tag, and the pid of a process that has ended: what a killed restore's
 * leftovers are named with.
 */
async function killedRunSetting(): Promise<{ host: string; deadPid: number }> {
  const src = f.path('src');
  await mkdir(join(src, 'sub'), { recursive: true });
  await writeFile(join(src, 'sub', 'a'), 'a');
  await backup(f.vault, [src], { scratchDir: f.path('scratch') });
  const host = createHash('sha256').update(hostname()).digest('hex').slice(0, 8);
  const deadPid = Number(spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout);
  return { host, deadPid };
}

describe.runIf(process.platform === 'linux')('restore', () => {
  it('restores times before 1970 to the nanosecond, on files and folders', async () => {
    const src = f.path('src');
    await mkdir(join(src, 'old'), { recursive: true });
    await writeFile(join(src, 'old', 'file'), 'from 1960\n');
    // A Date: Node takes a negative number of seconds as "now".
    const t = new Date('1960-01-01T00:00:00.500Z');
    await utimes(join(src, 'old', 'file'), t, t);
    await utimes(join(src, 'old'), t, t);
    expect((await lstat(join(src, 'old', 'file'), { bigint: true })).mtimeNs).toBe(NS_1960);
    await backup(f.vault, [src], { scratchDir: f.path('scratch') });
    const r = await restore(f.vault, 'latest', f.path('target'), { recoveryFolder: f.path('recovery') });
    expect(r.errors).toEqual([]);
    expect((await lstat(f.path('target', 'src', 'old', 'file'), { bigint: true })).mtimeNs).toBe(NS_1960);
    expect((await lstat(f.path('target', 'src', 'old'), { bigint: true })).mtimeNs).toBe(NS_1960);
  });

  it('restores a name holding a backslash, an ordinary byte of a Linux name', async () => {
    const src = f.path('src');
    await mkdir(src, { recursive: true });
    await writeFile(join(src, 'back\\slash'), 'kept\n');
    await backup(f.vault, [src], { scratchDir: f.path('scratch') });
    const r = await restore(f.vault, 'latest', f.path('target'), { recoveryFolder: f.path('recovery') });
    expect(r.errors).toEqual([]);
    expect(await readFile(f.path('target', 'src', 'back\\slash'), 'utf8')).toBe('kept\n');
  });

  it('clears set-user-ID and set-group-ID bits (owners are not restored), keeps the sticky bit, and says where', async () => {
    const src = f.path('src');
    await mkdir(join(src, 'shared'), { recursive: true });
    await writeFile(join(src, 'tool'), '#!/bin/sh\n');
    await writeFile(join(src, 'shared', 'group-tool'), '#!/bin/sh\n');
    await writeFile(join(src, 'shared', 'plain'), 'x');
    await chmod(join(src, 'tool'), 0o4755);
    await chmod(join(src, 'shared', 'group-tool'), 0o2750);
    await chmod(join(src, 'shared'), 0o3775);
    await backup(f.vault, [src], { scratchDir: f.path('scratch') });
    const r = await restore(f.vault, 'latest', f.path('target'), { recoveryFolder: f.path('recovery') });
    expect(r.errors).toEqual([]);
    const mode = async (p: string) => (await lstat(f.path('target', 'src', p))).mode & 0o7777;
    expect(await mode('tool')).toBe(0o755);
    expect(await mode('shared/group-tool')).toBe(0o750);
    expect(await mode('shared')).toBe(0o1775);
    expect(await mode('shared/plain')).toBe(0o644);
    expect(r.setIdCleared.count).toBe(3);
    expect([...r.setIdCleared.paths].sort()).toEqual(['src/shared', 'src/shared/group-tool', 'src/tool']);
  });

  it('creates names that are not UTF-8 with their exact bytes, and shows them readably in errors', async () => {
    const s = new HandSnapshot(f);
    const abc = s.data('abc');
    const rawFile = Buffer.from([0x66, 0xff, 0x80]);
    const rawDir = Buffer.from([0xe9, 0x74, 0xe9]);
    const missing = 'ab'.repeat(32);
    const inner = s.tree({ nodes: [fileNode('broken', 3, [missing]), fileNode('inner', 3, [abc])] });
    const srcTree = s.tree({ nodes: [fileNode(rawFile, 3, [abc]), dirNode(rawDir, inner)] });
    await s.seal(s.tree({ nodes: [dirNode('src', srcTree)] }));
    const r = await restore(f.vault, 'latest', f.path('target'), { recoveryFolder: f.path('recovery') });
    expect(r.files).toBe(2);
    expect(r.errors).toEqual([{ path: 'src/\ufffdt\ufffd/broken', reason: `chunk ${missing} is not in the vault's index` }]);
    const names = await readdir(f.path('target', 'src'), { encoding: 'buffer' });
    expect(names.map((n) => n.toString('hex')).sort()).toEqual([rawFile.toString('hex'), rawDir.toString('hex')].sort());
    const base = Buffer.from(f.path('target', 'src') + '/');
    expect(await readFile(Buffer.concat([base, rawFile]))).toEqual(Buffer.from('abc'));
    expect(await readFile(Buffer.concat([base, rawDir, Buffer.from('/inner')]))).toEqual(Buffer.from('abc'));
  });

  it('fails fast with VP_FORMAT_LIMIT on folders nested 100,000 deep, before writing anything, in bounded memory', async () => {
    const s = new HandSnapshot(f);
    let tree = s.tree({ nodes: [] });
    for (let i = 0; i < 100_000; i++) tree = s.tree({ nodes: [dirNode('d', tree)] });
    await s.seal(tree);
    const target = f.path('target');
    const rss = process.memoryUsage().rss;
    const e = await restore(f.vault, 'latest', target, { recoveryFolder: f.path('recovery') }).catch((x: unknown) => x);
    expect(e).toMatchObject({ code: 'VP_FORMAT_LIMIT' });
    expect((e as Error).message).toMatch(new RegExp(`more than ${MAX_TREE_DEPTH} levels`));
    expect(existsSync(target)).toBe(false);
    expect(process.memoryUsage().rss - rss).toBeLessThan(512 * 1024 * 1024);
  }, 120_000);

  it('restores folders nested exactly as deep as the format allows', async () => {
    const s = new HandSnapshot(f);
    let tree = s.tree({ nodes: [fileNode('leaf', 3, [s.data('abc')])] });
    for (let i = 0; i < MAX_TREE_DEPTH - 1; i++) tree = s.tree({ nodes: [dirNode('d', tree)] });
    await s.seal(s.tree({ nodes: [dirNode('d', tree)] }));
    const descriptors = readdirSync('/proc/self/fd').length;
    const r = await restore(f.vault, 'latest', f.path('target'), { recoveryFolder: f.path('recovery') });
    expect(r.errors).toEqual([]);
    expect(r.files).toBe(1);
    expect(r.dirs).toBe(MAX_TREE_DEPTH);
    expect(readdirSync('/proc/self/fd').length, 'every folder descriptor is closed').toBe(descriptors);
  }, 120_000);

  it('fails with VP_FORMAT_LIMIT on a listing continued through more trees than a folder can hold', async () => {
    const s = new HandSnapshot(f);
    let next: string | undefined;
    for (let i = 0; i <= MAX_CHAIN; i++) next = s.treeBytes(encodeTree({ nodes: [], ...(next ? { next } : {}) }));
    await s.seal(s.tree({ nodes: [dirNode('src', next!)] }));
    const e = await restore(f.vault, 'latest', f.path('target'), { recoveryFolder: f.path('recovery') }).catch((x: unknown) => x);
    expect(e).toMatchObject({ code: 'VP_FORMAT_LIMIT' });
    expect(existsSync(f.path('target'))).toBe(false);
  }, 120_000);

  it('removes what killed restores left (their process is gone), never what a running one is using', async () => {
    const { host, deadPid } = await killedRunSetting();
    const alive = process.ppid; // a live process that is not this one
    const target = f.path('target');
    await mkdir(join(target, 'src', 'sub'), { recursive: true });
    const leftovers = {
      deadRoot: join(target, `.vaultpath-restore-${host}-${deadPid}-0a0b0c0d-0`),
      deadSub: join(target, 'src', 'sub', `.vaultpath-restore-${host}-${deadPid}-0a0b0c0d-1`),
      live: join(target, 'src', `.vaultpath-restore-${host}-${alive}-0a0b0c0d-2`),
      otherHost: join(target, 'src', `.vaultpath-restore-ffffffff-${deadPid}-0a0b0c0d-3`),
    };
    for (const p of Object.values(leftovers)) await writeFile(p, 'partial');
    // Another user's file and link with a dead restore's name: theirs, never removed.
    const others = { file: join(target, 'src', `.vaultpath-restore-${host}-${deadPid}-0a0b0c0d-4`), link: join(target, `.vaultpath-restore-${host}-${deadPid}-0a0b0c0d-5`) };
    if (isRoot()) {
      await writeFile(others.file, 'a user file');
      await symlink('elsewhere', others.link);
      for (const p of Object.values(others)) await lchown(p, 65534, 65534);
    }
    const recovery = f.path('recovery');
    const runs = { dead: join(recovery, `run-${deadPid}-${host}-0a0b0c0d`), live: join(recovery, `run-${alive}-${host}-0a0b0c0d`) };
    for (const p of Object.values(runs)) {
      await mkdir(p, { recursive: true });
      await writeFile(join(p, 'pack'), Buffer.alloc(1000));
    }
    const r = await restore(f.vault, 'latest', target, { recoveryFolder: recovery });
    expect(r.errors).toEqual([]);
    expect(existsSync(leftovers.deadRoot)).toBe(false);
    expect(existsSync(leftovers.deadSub)).toBe(false);
    expect(existsSync(leftovers.live)).toBe(true);
    expect(existsSync(leftovers.otherHost)).toBe(true);
    if (isRoot()) {
      expect(await readFile(others.file, 'utf8')).toBe('a user file');
      expect((await lstat(others.link)).isSymbolicLink()).toBe(true);
    }
    expect(existsSync(runs.dead)).toBe(false);
    expect(existsSync(runs.live)).toBe(true);
    expect((await readdir(recovery)).filter((n) => n.startsWith('run-')).sort()).toEqual([`run-${alive}-${host}-0a0b0c0d`]);
  });

  it('sweeps a target for temporary files only when a killed restore wrote into it, keeping a record until then', async () => {
    const { host, deadPid } = await killedRunSetting();
    const [killedInto, other] = [f.path('killed-into'), f.path('other')];
    for (const t of [killedInto, other]) await mkdir(join(t, 'src', 'sub'), { recursive: true });
    const temp = (t: string): string => join(t, 'src', 'sub', `.vaultpath-restore-${host}-${deadPid}-0a0b0c0d-0`);
    for (const t of [killedInto, other]) await writeFile(temp(t), 'partial');
    const recovery = f.path('recovery');
    const run = join(recovery, `run-${deadPid}-${host}-0a0b0c0d`);
    await mkdir(run, { recursive: true });
    await writeFile(join(run, 'pack'), Buffer.alloc(1000));
    const st = await stat(killedInto, { bigint: true });
    await writeFile(join(run, 'target'), `${st.dev}:${st.ino}`);

    expect((await restore(f.vault, 'latest', other, { recoveryFolder: recovery })).errors).toEqual([]);
    expect(existsSync(temp(other))).toBe(true); // no killed restore wrote there: its folders are not searched
    expect(await readdir(run)).toEqual(['target']); // the killed run's packs are gone, its record stays

    expect((await restore(f.vault, 'latest', killedInto, { recoveryFolder: recovery })).errors).toEqual([]);
    expect(existsSync(temp(killedInto))).toBe(false);
    expect((await readdir(recovery)).filter((n) => n.startsWith('run-'))).toEqual([]);
  });

  it('downloads into this user\'s own recovery folder (0700) by default, and leaves it empty', async () => {
    const src = f.path('src');
    await mkdir(src);
    await writeFile(join(src, 'a'), 'a');
    await backup(f.vault, [src], { scratchDir: f.path('scratch') });
    const saved = process.env['XDG_CACHE_HOME'];
    process.env['XDG_CACHE_HOME'] = f.path('cache');
    try {
      const r = await restore(f.vault, 'latest', f.path('target'));
      expect(r.errors).toEqual([]);
    } finally {
      if (saved === undefined) delete process.env['XDG_CACHE_HOME'];
      else process.env['XDG_CACHE_HOME'] = saved;
    }
    const recovery = f.path('cache', 'vaultpath', 'recovery');
    expect((await stat(recovery)).mode & 0o777).toBe(0o700);
    expect((await readdir(recovery)).filter((n) => n.startsWith('run-'))).toEqual([]);
  });

  it('closes every folder it opened when aborted part-way, and leaves no temporary file', async () => {
    const src = f.path('src');
    for (let d = 0; d < 20; d++) {
      await mkdir(join(src, `d${d}`, 'sub'), { recursive: true });
      for (let i = 0; i < 5; i++) await writeFile(join(src, `d${d}`, 'sub', `f${i}`), `${d}/${i}`);
    }
    await backup(f.vault, [src], { scratchDir: f.path('scratch') });
    const descriptors = readdirSync('/proc/self/fd').length;
    const controller = new AbortController();
    const e = await restore(f.vault, 'latest', f.path('target'), {
      recoveryFolder: f.path('recovery'),
      signal: controller.signal,
      onProgress: (p) => {
        if (p.files >= 10) controller.abort();
      },
    }).catch((x: unknown) => x);
    expect(e).toMatchObject({ code: 'VP_ABORTED' });
    expect(readdirSync('/proc/self/fd').length).toBe(descriptors);
    const temps = spawnSync('find', [f.path('target'), '-name', '.vaultpath-restore-*'], { encoding: 'utf8' }).stdout;
    expect(temps).toBe('');
  });

  describe('refuses a target that is not a writable folder, with VP_TARGET', () => {
    it('a file, a path below a file, /dev/stdout', async () => {
      const src = f.path('src');
      await mkdir(src);
      await writeFile(join(src, 'a'), 'a');
      await backup(f.vault, [src], { scratchDir: f.path('scratch') });
      await writeFile(f.path('file'), 'kept');
      for (const target of [f.path('file'), f.path('file', 'below'), '/dev/stdout']) {
        const e = await restore(f.vault, 'latest', target, { recoveryFolder: f.path('recovery') }).catch((x: unknown) => x);
        expect(e, target).toMatchObject({ code: 'VP_TARGET' });
        expect((e as Error).message).not.toContain('\n');
      }
      expect(await readFile(f.path('file'), 'utf8')).toBe('kept');
    });

    it.runIf(isRoot())('a read-only file system', async () => {
      const src = f.path('src');
      await mkdir(src);
      await writeFile(join(src, 'a'), 'a');
      await backup(f.vault, [src], { scratchDir: f.path('scratch') });
      const mnt = f.path('ro');
      await mkdir(mnt);
      expect(spawnSync('mount', ['-t', 'tmpfs', '-o', 'ro,size=1m', 'none', mnt]).status).toBe(0);
      try {
        const e = await restore(f.vault, 'latest', mnt, { recoveryFolder: f.path('recovery') }).catch((x: unknown) => x);
        expect(e).toMatchObject({ code: 'VP_TARGET', message: expect.stringMatching(/read-only/) });
      } finally {
        unmount(mnt);
      }
    });
  });

  describe.runIf(isRoot())('on a small target file system (tmpfs, 1 MiB)', () => {
    let mnt: string;
    beforeEach(async () => {
      mnt = f.path('small');
      await mkdir(mnt);
      expect(mountTmpfs(mnt)).toBe(true);
    });
    afterEach(() => unmount(mnt));

    it('refuses a restore larger than the free space before writing anything (VP_TARGET_SPACE)', async () => {
      const src = f.path('src');
      await mkdir(src);
      for (let i = 0; i < 4; i++) await writeFile(join(src, `f${i}`), Buffer.alloc(600 * 1024, i + 1));
      await backup(f.vault, [src], { scratchDir: f.path('scratch') });
      const e = await restore(f.vault, 'latest', join(mnt, 'target'), { recoveryFolder: f.path('recovery') }).catch((x: unknown) => x);
      expect(e).toMatchObject({ code: 'VP_TARGET_SPACE', message: expect.stringMatching(/needs 2\.\d MiB/) });
      expect(await readdir(join(mnt, 'target'))).toEqual([]);
    });

    it('stops at the first ENOSPC with one VP_TARGET_SPACE, leaving no temporary file', async () => {
      const src = f.path('src');
      await mkdir(src);
      for (let i = 0; i < 50; i++) await writeFile(join(src, `f${String(i).padStart(2, '0')}`), Buffer.alloc(16 * 1024, i + 1));
      await backup(f.vault, [src], { scratchDir: f.path('scratch') });
      let filled = false;
      const descriptors = readdirSync('/proc/self/fd').length;
      const e = await restore(f.vault, 'latest', join(mnt, 'target'), {
        recoveryFolder: f.path('recovery'),
        onProgress: () => {
          if (filled) return;
          filled = true;
          // Another writer fills the file system once the restore has begun.
          try {
            writeFileSync(join(mnt, 'filler'), Buffer.alloc(1024 * 1024));
          } catch {
            // filled as far as it goes
          }
        },
      }).catch((x: unknown) => x);
      expect(filled).toBe(true);
      expect(e).toMatchObject({ code: 'VP_TARGET_SPACE', message: expect.stringMatching(/ran out of space/) });
      expect(readdirSync('/proc/self/fd').length, 'a restore stopped early closes its folders too').toBe(descriptors);
      const left = await readdir(join(mnt, 'target', 'src'));
      expect(left.filter((n) => n.startsWith('.vaultpath-restore-'))).toEqual([]);
    });
  });
});
