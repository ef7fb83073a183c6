import { lstat, rm, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ScanEntry, type ScanOptions, ScanSummary, scan, scanTotals } from '../../src/scan/scan.js';
import { FolderLister } from '../../src/scan/folder.js';
import { LstatProbe, StatxProbe, TableProbe, defaultProbe, statxAvailable } from '../../src/scan/probe.js';
import type { AttributeProbe } from '../../src/scan/attributes.js';
import { walk } from '../../src/scan/walk.js';
import {
  chattrCompressed, chmod, encryptedFolder, isRoot, link, mkdir, mountTmpfs, runAsNobody, symlink, tempDir, truncate, unmount,
  writeTree,
} from '../support/trees.js';

async function collect(roots: string[], options: ScanOptions = {}): Promise<Map<string, ScanEntry>> {
  const out = new Map<string, ScanEntry>();
  for await (const e of scan(roots, options)) out.set(e.relativePath, e);
  return out;
}
const decision = (e: ScanEntry | undefined): string | undefined =>
  e === undefined ? undefined : e.decision.kind === 'skip' ? `skip:${e.decision.reason}` : e.decision.kind;

/**
 * The backup engine's folder-by-folder listing (FolderLister, depth first) must find what the streamed scan finds,
 * with the same decisions, and scanTotals (which the backup sizes its scratch cache from) the same totals.
 */
async function expectListingMatchesScan(root: string, options: ScanOptions = {}): Promise<void> {
  const listed = new Map<string, string | undefined>();
  const folders = new Set<string>();
  const lister = new FolderLister({ root, probe: options.probe ?? defaultProbe(), exclude: options.exclude, include: options.include, excludeFilesIn: options.excludeFilesIn });
  const pending = [''];
  while (pending.length > 0) {
    for (const e of await lister.list(pending.pop()!)) {
      listed.set(e.relativePath, decision(e));
      if (e.kind === 'dir') folders.add(e.relativePath);
      if (e.kind === 'dir' && e.decision.kind !== 'skip') pending.push(e.relativePath);
    }
  }
  const scanned = new Map([...(await collect([root], options))].map(([k, e]) => [k, decision(e)]));
  const streamed = new ScanSummary();
  for await (const e of scan([root], options)) streamed.add(e);
  const totals = await scanTotals([root], options);
  if (options.include) {
    // With include globs the backup walks every folder (a matching file may lie below any), and the streamed scan
    // lists only what matches: the files and their bytes agree, the folders do not.
    for (const [path, d] of scanned) expect([path, listed.get(path)]).toEqual([path, d]);
    expect([...listed.keys()].filter((path) => !folders.has(path) && !scanned.has(path))).toEqual([]);
    expect([totals.files, totals.bytesToRead]).toEqual([streamed.files, streamed.bytesToRead]);
    return;
  }
  expect(new Map([...listed].sort())).toEqual(new Map([...scanned].sort()));
  expect(totals.toJSON()).toEqual(streamed.toJSON());
}

describe('scanning a real tree', () => {
  let root: string;
  let mounted = false;
  let compressedOk = false;

  beforeAll(async () => {
    root = await tempDir();
    await writeTree(root, {
      'docs/report.docx': 5000,
      'docs/.hidden': 'dot files are included',
      'music/song.mp3': 300,
      'music/deep/other.MP3': 300,
      'plain.txt': 'hello',
      'empty': '',
    });
    await link(join(root, 'plain.txt'), join(root, 'plain-hardlink.txt'));
    await symlink(join(root, 'docs'), join(root, 'docs-link'));
    await symlink('plain.txt', join(root, 'file-link'));
    await truncate(join(root, 'sparse.img'), 50 * 1024 * 1024).catch(async () => {
      await writeTree(root, { 'sparse.img': '' });
      await truncate(join(root, 'sparse.img'), 50 * 1024 * 1024);
    });
    await writeTree(root, { 'squeezed.txt': 20_000 });
    compressedOk = chattrCompressed(join(root, 'squeezed.txt'));
    await mkdir(join(root, 'mnt'));
    mounted = isRoot() && mountTmpfs(join(root, 'mnt'));
    if (mounted) await writeTree(join(root, 'mnt'), { 'on-another-fs.txt': 'x' });
  });

  afterAll(async () => {
    if (mounted) unmount(join(root, 'mnt'));
    await rm(root, { recursive: true, force: true });
  });

  it('finds every entry, dot files included, and backs up plain files incrementally', async () => {
    const entries = await collect([root]);
    expect(decision(entries.get('docs/report.docx'))).toBe('backup');
    expect(decision(entries.get('docs/.hidden'))).toBe('backup');
    expect(decision(entries.get('empty'))).toBe('backup');
    expect(decision(entries.get('docs'))).toBe('backup');
    expect(entries.get('docs/report.docx')!.stats!.size).toBe(5000);
  });

  it('skips both names of a hard link', async () => {
    const entries = await collect([root]);
    expect(decision(entries.get('plain.txt'))).toBe('skip:hard-link');
    expect(decision(entries.get('plain-hardlink.txt'))).toBe('skip:hard-link');
  });

  it('skips symbolic links as reparse points and never follows them', async () => {
    const entries = await collect([root]);
    expect(decision(entries.get('docs-link'))).toBe('skip:reparse-point');
    expect(decision(entries.get('file-link'))).toBe('skip:reparse-point');
    expect([...entries.keys()].some((k) => k.startsWith('docs-link/'))).toBe(false);
  });

  it('backs up a sparse file as sparse (allocated blocks fewer than its size)', async () => {
    const e = (await collect([root])).get('sparse.img')!;
    expect(e.stats!.attributes.sparse).toBe(true);
    expect(decision(e)).toBe('backup-sparse');
  });

  it('reads the compressed inode flag for real (chattr +c) where the probe and file system can tell', async (context) => {
    if (!compressedOk) context.skip(); // this file system refuses chattr +c (ext4, btrfs and f2fs accept it)
    const e = (await collect([root])).get('squeezed.txt')!;
    // With statx the flag is read; through lstat it is unknown, never a guessed false.
    expect(e.stats!.attributes.compressed).toBe(statxAvailable() ? true : undefined);
    expect(e.decision.rule).toBe(statxAvailable() ? 'compressed' : 'default');
    expect(decision(e)).toBe('backup');
    const plain = (await collect([root])).get('docs/report.docx')!;
    expect(plain.stats!.attributes.compressed).toBe(statxAvailable() ? false : undefined);
  });

  it('says unknown, not false, for compressed and encrypted when the probe cannot tell', async () => {
    const e = (await collect([root], { probe: new LstatProbe() })).get('docs/report.docx')!;
    expect(e.stats!.attributes.compressed).toBeUndefined();
    expect(e.stats!.attributes.encrypted).toBeUndefined();
    expect(e.stats!.attributes.hardLink).toBe(false);
  });

  it('skips a mount point of another file system as a reparse point and does not descend into it', async (context) => {
    if (!mounted) context.skip(); // needs root to mount a tmpfs; the other probes of this file still run
    const entries = await collect([root]);
    expect(decision(entries.get('mnt'))).toBe('skip:reparse-point');
    expect(entries.has('mnt/on-another-fs.txt')).toBe(false);
  });

  it('excludes by file type at any depth, ignoring case, and never probes what it excludes', async () => {
    const probed: string[] = [];
    const base = defaultProbe();
    const spy: AttributeProbe = {
      name: 'spy',
      deviceOf: (p) => base.deviceOf(p),
      probe: (paths, ctx) => {
        probed.push(...paths);
        return base.probe(paths, ctx);
      },
    };
    const entries = await collect([root], { exclude: ['*.mp3'], probe: spy });
    expect(entries.has('music/song.mp3')).toBe(false);
    expect(entries.has('music/deep/other.MP3')).toBe(false);
    expect(entries.has('music/deep')).toBe(true);
    expect(probed.some((p) => /\.mp3$/i.test(p))).toBe(false);
  });

  it('excludes a folder with its subfolders', async () => {
    const entries = await collect([root], { exclude: ['music/'] });
    expect([...entries.keys()].filter((k) => k.startsWith('music'))).toEqual([]);
  });

  it("excludes a folder's own files but keeps its subfolders when asked", async () => {
    const entries = await collect([root], { excludeFilesIn: ['music'] });
    expect(entries.has('music/song.mp3')).toBe(false);
    expect(entries.has('music/deep')).toBe(true);
    expect(entries.has('music/deep/other.MP3')).toBe(true);
  });

  it('is listed folder by folder (as the backup walks it) with the same entries, decisions and totals', async () => {
    await expectListingMatchesScan(root);
    await expectListingMatchesScan(root, { exclude: ['*.mp3', 'docs-link'] });
    await expectListingMatchesScan(root, { excludeFilesIn: ['music'] });
    await expectListingMatchesScan(root, { include: ['**/*.txt'] });
  });

  it('reads the same facts through statx as through lstat', async (context) => {
    if (!statxAvailable()) context.skip(); // the native probe did not build on this machine
    const a = await collect([root], { probe: new StatxProbe() });
    const b = await collect([root], { probe: new LstatProbe() });
    for (const [k, e] of a) {
      const s = e.stats!;
      const t = b.get(k)!.stats!;
      expect({ k, size: s.size, nlink: s.nlink, dev: s.dev, ino: s.ino, mtime: s.mtimeNs, ctime: s.ctimeNs, mode: s.mode }).toEqual({
        k, size: t.size, nlink: t.nlink, dev: t.dev, ino: t.ino, mtime: t.mtimeNs, ctime: t.ctimeNs, mode: t.mode,
      });
    }
  });

  it('probes a batch that goes back and forth between folders, with the same names in each, as lstat sees it', async (context) => {
    if (!statxAvailable()) context.skip();
    const dir = await tempDir();
    await writeTree(dir, { 'a/same': 'one', 'b/same': 'second', 'a/only-a': '', 'b/sub/same': 'third file' });
    const paths = ['a/same', 'b/same', 'a/same', 'a/only-a', 'b/sub/same', 'b/same', 'missing/same', 'a/missing'].map((p) => join(dir, p));
    paths.push('/', dir); // the root folder itself, and a path whose folder is the root's parent
    const probed = new StatxProbe().probe(paths, { rootDev: 0 });
    const expected = await Promise.all(
      paths.map((p) => lstat(p, { bigint: true }).then((s) => ({ ok: true, ino: s.ino, size: Number(s.size) }), (e: NodeJS.ErrnoException) => ({ ok: false, code: e.code }))),
    );
    expect(probed.map((r) => (r.ok ? { ok: true, ino: r.entry.ino, size: r.entry.size } : { ok: false, code: r.code }))).toEqual(expected);
    await rm(dir, { recursive: true, force: true });
  });
});

describe('files encrypted by the file system (fscrypt, lsattr E)', () => {
  let folder: Awaited<ReturnType<typeof encryptedFolder>>;
  beforeAll(async () => {
    folder = await encryptedFolder();
    if (folder) {
      await writeTree(folder.dir, { 'ledger.db': 40_000 });
      await writeTree(folder.dir, { 'vm.img': '' });
      await truncate(join(folder.dir, 'vm.img'), 10 * 1024 * 1024);
    }
  });
  afterAll(() => folder?.cleanup());

  it('back up with full backups only, and skip those that are also sparse', async (context) => {
    // Needs root, a loop device and e2fsprogs to make a real fscrypt folder; and the statx probe to read the flag.
    if (!folder || !statxAvailable()) context.skip();
    const entries = await collect([folder!.dir]);
    expect(entries.get('ledger.db')!.stats!.attributes.encrypted).toBe(true);
    expect(decision(entries.get('ledger.db'))).toBe('backup-full');
    expect(decision(entries.get('vm.img'))).toBe('skip:encrypted-sparse');
  });
});

describe('case collisions', () => {
  let root: string;
  beforeAll(async () => {
    root = await tempDir();
    await writeTree(root, { 'Report.txt': 'a', 'report.txt': 'b', 'REPORT.TXT': 'c', 'sub/Straße': 'x', 'sub/STRASSE': 'y', 'Dir/x': '1', 'dir/y': '2' });
  });
  afterAll(() => rm(root, { recursive: true, force: true }));

  it('keep the first name in sorted order and skip the others with case-collision', async () => {
    const entries = await collect([root]);
    expect(decision(entries.get('REPORT.TXT'))).toBe('backup');
    expect(decision(entries.get('Report.txt'))).toBe('skip:case-collision');
    expect(decision(entries.get('report.txt'))).toBe('skip:case-collision');
    expect(entries.get('report.txt')!.detail).toMatch(/same name as "REPORT.TXT"/);
  });

  it('do not descend into a colliding folder, and do not fold ß into SS', async () => {
    const entries = await collect([root]);
    expect(decision(entries.get('dir'))).toBe('skip:case-collision');
    expect(entries.has('dir/y')).toBe(false);
    expect(decision(entries.get('Dir/x'))).toBe('backup');
    expect(decision(entries.get('sub/Straße'))).toBe('backup');
    expect(decision(entries.get('sub/STRASSE'))).toBe('backup');
  });

  it('are decided alike by the folder-by-folder listing', async () => {
    await expectListingMatchesScan(root);
  });

  it('fail the source under the fail policy', async () => {
    await expect(collect([root], { caseCollision: 'fail' })).rejects.toMatchObject({ code: 'VP_CASE_COLLISION' });
  });
});

describe('entries that cannot be read', () => {
  let root: string;
  beforeAll(async () => {
    root = await tempDir();
    await writeTree(root, { 'ok/a.txt': 'a', 'ok/private.txt': 'p', 'locked/secret.txt': 's', 'going/gone.txt': 'g', 'going/stays.txt': 's' });
    await chmod(join(root, 'locked'), 0o000);
    await chmod(join(root, 'ok/private.txt'), 0o000);
  });
  afterAll(async () => {
    await chmod(join(root, 'locked'), 0o755);
    await rm(root, { recursive: true, force: true });
  });

  it('reports an unreadable folder and an unreadable file (EACCES) and goes on with the rest', async () => {
    const script = `
      import { scanSources } from ${JSON.stringify(new URL('../../dist/scan/report.js', import.meta.url).pathname)};
      import { readFileSync, unlinkSync } from 'node:fs';
      import { tmpdir } from 'node:os';
      const { summary, reportPath } = await scanSources([${JSON.stringify(root)}], { reportPath: tmpdir() + '/vaultpath-test-report-' + process.pid + '.jsonl' });
      const report = readFileSync(reportPath, 'utf8');
      unlinkSync(reportPath);
      console.log(JSON.stringify({ summary, report }));`;
    // As root, permission bits do not apply: run the scan as an unprivileged user.
    const out = isRoot()
      ? (runAsNobody(script) as { summary: { files: number; skippedByReason: Record<string, { entries: number }> }; report: string })
      : await (async () => {
          const { scanSources } = await import('../../src/scan/report.js');
          const { readFileSync } = await import('node:fs');
          const r = await scanSources([root], { reportPath: join(root, 'r-self.jsonl') });
          return { summary: JSON.parse(JSON.stringify(r.summary)), report: readFileSync(r.reportPath, 'utf8') };
        })();
    expect(out.summary.skippedByReason['unreadable']!.entries).toBe(2);
    expect(out.summary.files).toBeGreaterThanOrEqual(3); // ok/a.txt and going/* were still scanned
    const lines = out.report.trim().split('\n').map((l) => JSON.parse(l) as { path: string; reason: string; detail: string });
    expect(lines).toContainEqual(expect.objectContaining({ path: join(root, 'locked'), reason: 'unreadable', detail: expect.stringMatching(/EACCES/) }));
    expect(lines).toContainEqual(expect.objectContaining({ path: join(root, 'ok/private.txt'), reason: 'unreadable', detail: expect.stringMatching(/EACCES/) }));
  });

  it('reports a file that vanished between listing and probing, and goes on', async () => {
    const base = defaultProbe();
    const vanishing: AttributeProbe = {
      name: 'vanishing',
      deviceOf: (p) => base.deviceOf(p),
      probe: async (paths, ctx) => {
        // The file really disappears after the walk listed it, just before its attributes are read.
        if (paths.some((p) => p.endsWith('gone.txt'))) await unlink(join(root, 'going/gone.txt')).catch(() => undefined);
        return base.probe(paths, ctx);
      },
    };
    const entries = await collect([root], { probe: vanishing });
    expect(decision(entries.get('going/gone.txt'))).toBe('skip:vanished');
    expect(decision(entries.get('going/stays.txt'))).toBe('backup');
  });
});

describe('volume-level limits and controls', () => {
  let root: string;
  beforeAll(async () => {
    root = await tempDir();
    const files: Record<string, number> = {};
    for (let d = 0; d < 40; d++) for (let f = 0; f < 50; f++) files[`d${d}/f${f}`] = 100;
    await writeTree(root, files);
  });
  afterAll(() => rm(root, { recursive: true, force: true }));

  it('refuses a data source larger than the limit, giving the size and the limit', async () => {
    await expect(collect([root], { maxSourceBytes: 50_000 })).rejects.toMatchObject({
      code: 'VP_SOURCE_TOO_LARGE',
      message: expect.stringMatching(/at least 50,\d{3} bytes \(50\.\d KB\) .* limit of 50,000 bytes \(50\.0 KB\)/),
    });
  });

  it('totals folder by folder under the same limits', async () => {
    await expect(scanTotals([root], { maxSourceBytes: 50_000 })).rejects.toMatchObject({ code: 'VP_SOURCE_TOO_LARGE' });
    await expect(scanTotals([join(root, 'nope')])).rejects.toMatchObject({ code: 'VP_SOURCE_NOT_FOUND' });
    const totals = await scanTotals([root]);
    expect([totals.files, totals.dirs, totals.bytesToRead]).toEqual([2000, 40, 200_000]);
    const controller = new AbortController();
    controller.abort();
    await expect(scanTotals([root], { signal: controller.signal })).rejects.toMatchObject({ code: 'VP_ABORTED' });
  });

  it('defaults the limit to 54,400 GB', async () => {
    const { DEFAULT_MAX_SOURCE_BYTES } = await import('../../src/scan/scan.js');
    expect(DEFAULT_MAX_SOURCE_BYTES).toBe(54_400_000_000_000);
  });

  it('refuses a root that does not exist or is not a folder', async () => {
    await expect(collect([join(root, 'nope')])).rejects.toMatchObject({ code: 'VP_SOURCE_NOT_FOUND' });
    await expect(collect([join(root, 'd0/f0')])).rejects.toMatchObject({ code: 'VP_SOURCE_NOT_FOUND' });
  });

  it('stops when aborted', async () => {
    const controller = new AbortController();
    let n = 0;
    const run = async (): Promise<void> => {
      for await (const _ of scan([root], { signal: controller.signal })) if (++n === 100) controller.abort();
    };
    await expect(run()).rejects.toMatchObject({ code: 'VP_ABORTED' });
    expect(n).toBeLessThan(2040);
  });

  it('holds back the walk while entries wait: folders are not all read ahead of a slow consumer', async () => {
    let foldersRead = 0;
    const it = walk(root, { maxBuffered: 200, batchSize: 50, isMountPoint: () => (foldersRead++, false) });
    await it.next();
    await new Promise((r) => setTimeout(r, 300));
    // 40 folders of 50 entries; with at most ~200 waiting, only a handful may have been read.
    expect(foldersRead).toBeLessThan(12);
    let total = 50;
    for await (const batch of it) total += batch.length;
    expect(total).toBe(40 * 50 + 40);
  });

  it('totals files and bytes by decision, with the bytes a backup would read', async () => {
    const summary = new ScanSummary();
    for await (const e of scan([root])) summary.add(e);
    expect(summary.files).toBe(2000);
    expect(summary.dirs).toBe(40);
    expect(summary.bytesToRead).toBe(200_000);
    expect(summary.decisions.backup).toEqual({ entries: 2000, bytes: 200_000 });
  });

  it('takes attributes from a supplied table (an agent that reads them itself)', async () => {
    const probe = new TableProbe(new Map([[join(root, 'd0/f0'), { encrypted: true }], [join(root, 'd0/f1'), { encrypted: true, compressed: true }]]));
    const entries = await collect([root], { probe });
    expect(decision(entries.get('d0/f0'))).toBe('backup-full');
    expect(decision(entries.get('d0/f1'))).toBe('skip:encrypted-compressed');
    expect(decision(entries.get('d0/f2'))).toBe('backup');
  });
});

describe('the default probe', () => {
  it('is statx on Linux wherever the addon builds, and CI must build it', () => {
    if (process.platform === 'linux' && process.env['CI']) expect(statxAvailable()).toBe(true);
    expect(defaultProbe().name).toBe(statxAvailable() ? 'statx' : 'lstat');
  });
});
