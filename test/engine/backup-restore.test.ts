import { readdirSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { appendFile, chmod, mkdir, readdir, rm, stat, symlink, truncate, unlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { backup } from '../../src/engine/backup.js';
import { restore } from '../../src/engine/restore.js';
import { nativeWriter } from '../../src/native/write-files.js';
import { TableProbe } from '../../src/scan/probe.js';
import { seededBytes } from '../support/seeded.js';
import { type VaultFixture, describeTree, makeVault } from '../support/vaults.js';
import { indexCacheName } from '../../src/repo/index-cache.js';

const KiB = 1024;
const MiB = 1024 * KiB;

let f: VaultFixture;
beforeEach(async () => {
  f = await makeVault();
});
afterEach(() => f.cleanup());

/** A source tree with the shapes that matter: sizes around chunk bounds, empty things, odd names, deep folders. */
/** The chunk ids of file `name` in the source folder of `snapshot`. */
async function chunksOf(snapshot: string, name: string): Promise<readonly string[]> {
  const index = await f.vault.loadIndex();
  const root = await f.vault.readTree(index, (await f.vault.readSnapshot(snapshot)).tree);
  const src = await f.vault.readTree(index, root.nodes.find((n) => n.name === 'src')!.subtree!);
  return src.nodes.find((n) => n.name === name)!.content!;
}

async function makeSource(root: string): Promise<void> {
  const files: Record<string, Buffer> = {
    'big.bin': seededBytes(5 * MiB + 123, 1),
    'copy-of-big.bin': seededBytes(5 * MiB + 123, 1),
    'small.txt': Buffer.from('hello\n'),
    'empty': Buffer.alloc(0),
    'zeros.bin': Buffer.alloc(3 * MiB),
    'names/with space.txt': Buffer.from('a'),
    'names/ünïcödé ✓.txt': Buffer.from('b'),
    'names/new\nline': Buffer.from('c'),
    'names/.hidden': Buffer.from('d'),
    'deep/a/b/c/d/e/f/leaf.txt': Buffer.from('deep'),
  };
  for (const [rel, data] of Object.entries(files)) {
    await mkdir(join(root, rel, '..'), { recursive: true });
    await writeFile(join(root, rel), data);
  }
  await mkdir(join(root, 'empty-folder'));
  await chmod(join(root, 'small.txt'), 0o640);
  await chmod(join(root, 'names'), 0o750);
  await utimes(join(root, 'small.txt'), 1_600_000_000.123456, 1_600_000_000.123456);
}

describe('backup and restore', () => {
  it.runIf(process.platform === 'linux')('writes small files through the native writer here (the fallback has its own tests)', () => {
    expect(nativeWriter(), 'the native addon did not build or load: see the output of scripts/build-native.mjs').not.toBeNull();
  });

  it('restore everything byte for byte, with modes, mtimes, empty files and folders, and any names', async () => {
    const src = f.path('src');
    await makeSource(src);
    const before = await describeTree(src);
    const result = await backup(f.vault, [src], { scratchDir: f.path('scratch') });
    expect(result.status).toBe('complete');
    expect(result.files).toBe(10);
    const restored = await restore(f.vault, 'latest', f.path('target'), { recoveryFolder: f.path('recovery') });
    expect(restored.errors).toEqual([]);
    expect(await describeTree(join(f.path('target'), 'src'))).toEqual(before);
    expect(await readdir(f.path('recovery'))).toEqual([indexCacheName(f.vault.config.id)]); // packs downloaded there were cleaned up; the index cached
    expect(await readdir(f.path('scratch'))).toEqual([indexCacheName(f.vault.config.id)]); // staging cleaned up; the index cached
  });

  it('store identical content once, and zero runs as one chunk', async () => {
    const src = f.path('src');
    await makeSource(src);
    const result = await backup(f.vault, [src], { scratchDir: f.path('scratch') });
    // 5 MiB of data twice and 3 MiB of zeros: new bytes are one copy of the data plus one zero chunk.
    expect(result.bytesRead).toBeGreaterThan(13 * MiB);
    expect(result.bytesNew).toBeLessThan(5 * MiB + 3 * MiB + 100 * KiB);
    expect(result.bytesNew).toBeGreaterThan(5 * MiB);
  });

  it('skip unchanged files without reading them, upload only new chunks, and keep both snapshots restorable', async () => {
    const src = f.path('src');
    await makeSource(src);
    const first = await backup(f.vault, [src], { scratchDir: f.path('scratch') });
    const stateOne = await describeTree(src);
    // Change: bytes overwritten in the big file, one appended, one new, one deleted.
    const big = seededBytes(5 * MiB + 123, 1);
    big.write('CHANGED', 2 * MiB);
    await writeFile(join(src, 'big.bin'), big);
    await appendFile(join(src, 'small.txt'), 'more\n');
    await writeFile(join(src, 'names/new-file'), randomBytes(1000));
    await unlink(join(src, 'names/.hidden'));
    const stateTwo = await describeTree(src);

    const second = await backup(f.vault, [src], { scratchDir: f.path('scratch') });
    expect(second.parent).toBe(first.snapshot);
    expect(second.filesUnchanged).toBe(7); // copy-of-big, empty, zeros, three names files, deep leaf
    expect(second.bytesRead).toBe(5 * MiB + 123 + 11 + 1000);
    // New: the big file's chunks around the change (where its keyed boundaries fall varies with the vault's key),
    // and the two small files; none of its other chunks.
    const [before, after] = [await chunksOf(first.snapshot!, 'big.bin'), await chunksOf(second.snapshot!, 'big.bin')];
    const index = await f.vault.loadIndex();
    const changed = after.filter((id) => !before.includes(id)).reduce((n, id) => n + index.get(Buffer.from(id, 'hex'))!.plaintextLength, 0);
    expect(changed).toBeGreaterThan(0);
    expect(changed).toBeLessThan(big.length);
    expect(second.bytesNew).toBe(changed + 11 + 1000);

    await restore(f.vault, first.snapshot!, f.path('t1'), { recoveryFolder: f.path('recovery') });
    await restore(f.vault, second.snapshot!, f.path('t2'), { recoveryFolder: f.path('recovery') });
    expect(await describeTree(join(f.path('t1'), 'src'))).toEqual(stateOne);
    expect(await describeTree(join(f.path('t2'), 'src'))).toEqual(stateTwo);
  });

  it('keep the trees of unchanged folders, and give a folder a new tree for a vanished entry or a changed mode', async () => {
    const src = f.path('src');
    await makeSource(src);
    const leafDir = join(src, 'deep/a/b/c/d/e/f');
    await writeFile(join(leafDir, 'second.txt'), 'second');
    await utimes(leafDir, 1_600_000_000, 1_600_000_000);
    await mkdir(join(src, 'modes/inner'), { recursive: true });
    await writeFile(join(src, 'modes/inner/x.txt'), 'x');
    const first = await backup(f.vault, [src], { scratchDir: f.path('scratch') });
    const unchanged = await backup(f.vault, [src], { scratchDir: f.path('scratch') });
    expect(unchanged.filesUnchanged).toBe(unchanged.files);
    expect((await f.vault.readSnapshot(unchanged.snapshot!)).tree).toBe((await f.vault.readSnapshot(first.snapshot!)).tree);

    // A file removed with its folder's mtime put back: every remaining entry is unchanged, but one is gone.
    await unlink(join(leafDir, 'second.txt'));
    await utimes(leafDir, 1_600_000_000, 1_600_000_000);
    // A folder whose mode alone changed (its mtime stays), in a folder where nothing else changed.
    await chmod(join(src, 'modes/inner'), 0o700);
    const state = await describeTree(src);
    const changed = await backup(f.vault, [src], { scratchDir: f.path('scratch') });
    expect(changed.filesUnchanged).toBe(changed.files);
    await restore(f.vault, changed.snapshot!, f.path('t'), { recoveryFolder: f.path('recovery') });
    expect(await describeTree(join(f.path('t'), 'src'))).toEqual(state);
  });

  it('record sparse holes instead of storing them, and restore them as holes', async () => {
    const src = f.path('src');
    await mkdir(src);
    const path = join(src, 'disk.img');
    await writeFile(path, '');
    await truncate(path, 64 * MiB);
    const fh = await import('node:fs/promises').then((m) => m.open(path, 'r+'));
    await fh.write(seededBytes(MiB, 7), 0, MiB, 20 * MiB);
    await fh.close();
    const result = await backup(f.vault, [src], { scratchDir: f.path('scratch') });
    expect(result.bytesRead).toBeLessThanOrEqual(MiB + 64 * KiB); // the data region only
    await restore(f.vault, 'latest', f.path('target'), { recoveryFolder: f.path('recovery') });
    const out = join(f.path('target'), 'src', 'disk.img');
    expect((await stat(out)).size).toBe(64 * MiB);
    expect((await stat(out)).blocks * 512).toBeLessThan(4 * MiB);
    expect(await describeTree(join(f.path('target'), 'src'))).toEqual(await describeTree(src));
  });

  it('upload a changed encrypted file whole again (full backups only), reusing none of its earlier chunks', async () => {
    const src = f.path('src');
    await mkdir(src);
    const path = join(src, 'ledger.db');
    const data = seededBytes(6 * MiB, 3);
    await writeFile(path, data);
    const probe = new TableProbe(new Map([[path, { encrypted: true }]]));
    await backup(f.vault, [src], { scratchDir: f.path('scratch'), probe });
    data.write('one small change', 100);
    await writeFile(path, data);
    const second = await backup(f.vault, [src], { scratchDir: f.path('scratch'), probe });
    expect(second.filesFullOnly, JSON.stringify(second)).toBe(1);
    expect(second.bytesNew, JSON.stringify(second)).toBe(6 * MiB);
    // The same change to a plain file reuses the unchanged chunks.
    data.write('another change', 200);
    await writeFile(path, data);
    const plain = await backup(f.vault, [src], { scratchDir: f.path('scratch') });
    expect(plain.bytesNew, JSON.stringify(plain)).toBeLessThan(3 * MiB);
  });

  it('restore a subset chosen by globs, creating only the folders it fills', async () => {
    const src = f.path('src');
    await makeSource(src);
    await backup(f.vault, [src], { scratchDir: f.path('scratch') });
    const r = await restore(f.vault, 'latest', f.path('target'), { include: ['src/names/*.txt'], recoveryFolder: f.path('recovery') });
    expect(r.files).toBe(2);
    expect(Object.keys(await describeTree(f.path('target'))).sort()).toEqual(['src', 'src/names', 'src/names/with space.txt', 'src/names/ünïcödé ✓.txt']);
  });
});

describe('the scratch cache during a backup', () => {
  it('never holds more than its capacity, even when the store is slower than the reader', async () => {
    // Small chunks and packs, so a 1.2 MiB cache sees dozens of packs come and go.
    const small = await makeVault({ chunker: { minSize: 16 * KiB, avgSize: 64 * KiB, maxSize: 256 * KiB } });
    try {
      const src = small.path('src');
      await mkdir(src);
      for (let i = 0; i < 12; i++) await writeFile(join(src, `f${i}`), seededBytes(MiB, 100 + i));
      const result = await backup(small.vault, [src], { scratchDir: small.path('scratch'), scratchCapacity: 1200 * KiB, targetPackSize: 256 * KiB });
      expect(result.status).toBe('complete');
      expect(result.bytesStored).toBeGreaterThan(12 * MiB);
      expect(result.scratch.highWaterMark).toBeGreaterThan(256 * KiB);
      expect(result.scratch.highWaterMark).toBeLessThanOrEqual(1200 * KiB);
    } finally {
      await small.cleanup();
    }
  });

  it('refuses a capacity too small for one pack, before reading anything', async () => {
    const src = f.path('src');
    await makeSource(src);
    await expect(backup(f.vault, [src], { scratchDir: f.path('scratch'), scratchCapacity: 1024 * KiB })).rejects.toMatchObject({
      code: 'VP_SCRATCH_SPACE',
      message: expect.stringMatching(/cannot hold one pack/),
    });
  });

  it('fails before reading anything when its volume has less free space than the capacity, giving both sizes', async () => {
    const src = f.path('src');
    await makeSource(src);
    const openFiles = (): number => (process.platform === 'linux' ? readdirSync('/proc/self/fd').length : 0);
    const before = openFiles();
    const e = await backup(f.vault, [src], { scratchDir: f.path('scratch'), scratchCapacity: 2 ** 50 }).then(() => undefined, (err: unknown) => err);
    expect(e).toMatchObject({ code: 'VP_SCRATCH_SPACE', message: expect.stringMatching(/has .* free, but this backup needs 1\.13 PB/) });
    expect((await f.vault.listSnapshots()).length).toBe(0);
    expect(openFiles(), 'a failed backup leaves no file open (its report, say)').toBe(before);
  });
});

describe('source files that fail', () => {
  it('are reported per file, and the snapshot completes with warnings', async () => {
    const src = f.path('src');
    await makeSource(src);
    const base = (await import('../../src/scan/probe.js')).defaultProbe();
    // The file vanishes after the backup's walk listed and probed it, before it is opened (the first probe of it
    // is the totals scan, the second the backup's own walk).
    let seen = 0;
    const vanishing = {
      name: 'vanishing',
      deviceOf: (p: string) => base.deviceOf(p),
      probe: async (paths: readonly string[], ctx: { rootDev: number }) => {
        const r = await base.probe(paths, ctx);
        if (paths.some((p) => p.endsWith('small.txt')) && ++seen === 2) await rm(join(src, 'small.txt'));
        return r;
      },
    };
    const result = await backup(f.vault, [src], { scratchDir: f.path('scratch'), probe: vanishing, reportPath: f.path('report.jsonl') });
    expect(result.status).toBe('warnings');
    expect(result.warnings).toBe(1);
    const report = (await import('node:fs/promises')).readFile(f.path('report.jsonl'), 'utf8');
    expect(await report).toMatch(/small\.txt.*"reason":"vanished"/);
    const snaps = await f.vault.listSnapshots();
    expect(snaps[0]!.snapshot.status).toBe('warnings');
    const restored = await restore(f.vault, 'latest', f.path('target'), { recoveryFolder: f.path('recovery') });
    expect(restored.errors).toEqual([]);
    expect(restored.files).toBe(9);
  });
});

describe('restore safety', () => {
  it('replaces a symbolic link in the way of a file without following it', async () => {
    const src = f.path('src');
    await makeSource(src);
    await backup(f.vault, [src], { scratchDir: f.path('scratch') });
    const victim = f.path('victim.txt');
    await writeFile(victim, 'untouched');
    await mkdir(join(f.path('target'), 'src'), { recursive: true });
    await symlink(victim, join(f.path('target'), 'src', 'small.txt'));
    const r = await restore(f.vault, 'latest', f.path('target'), { recoveryFolder: f.path('recovery') });
    expect(r.errors).toEqual([]);
    await expect((await import('node:fs/promises')).readFile(victim, 'utf8')).resolves.toBe('untouched');
    await expect((await import('node:fs/promises')).readFile(join(f.path('target'), 'src', 'small.txt'), 'utf8')).resolves.toBe('hello\n');
  });

  it('reports a folder in the way of a file, and restores the rest', async () => {
    const src = f.path('src');
    await makeSource(src);
    await backup(f.vault, [src], { scratchDir: f.path('scratch') });
    await mkdir(join(f.path('target'), 'src', 'small.txt'), { recursive: true });
    await mkdir(join(f.path('target'), 'src', 'big.bin'), { recursive: true });
    const r = await restore(f.vault, 'latest', f.path('target'), { recoveryFolder: f.path('recovery') });
    expect(r.errors).toEqual(expect.arrayContaining([
      { path: 'src/small.txt', reason: 'a folder is in the way of a file' },
      { path: 'src/big.bin', reason: 'a folder is in the way of a file' },
    ]));
    expect(r.errors).toHaveLength(2);
    await expect((await import('node:fs/promises')).readFile(join(f.path('target'), 'src', 'names', '.hidden'), 'utf8')).resolves.toBe('d');
  });

  it('refuses to descend through a symbolic link in the way of a folder', async () => {
    const src = f.path('src');
    await makeSource(src);
    await backup(f.vault, [src], { scratchDir: f.path('scratch') });
    const outside = f.path('outside');
    await mkdir(outside);
    await mkdir(join(f.path('target'), 'src'), { recursive: true });
    await symlink(outside, join(f.path('target'), 'src', 'names'));
    const r = await restore(f.vault, 'latest', f.path('target'), { recoveryFolder: f.path('recovery') });
    expect(r.errors).toContainEqual({ path: 'src/names', reason: 'a symbolic link is in the way; it is not followed' });
    expect(await describeTree(outside)).toEqual({});
  });
});
