/**
 * Reports in the per-user reports folder: owner-only, new files never reached through a link, old ones pruned to
 * the newest 20 of each kind; and a report that cannot be written is VP_LOCAL_IO naming it.
 */
import { lstat, mkdir, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SkippedFilesReport, defaultReportDir, scanSources } from '../../src/scan/report.js';
import { KEEP_REPORTS } from '../../src/stage/user-folders.js';
import { tempDir } from '../support/trees.js';

describe('reports', () => {
  let dir: string;
  let saved: string | undefined;
  beforeEach(async () => {
    dir = await tempDir('vaultpath-reports-');
    saved = process.env['XDG_CACHE_HOME'];
    process.env['XDG_CACHE_HOME'] = join(dir, 'cache');
  });
  afterEach(async () => {
    if (saved === undefined) delete process.env['XDG_CACHE_HOME'];
    else process.env['XDG_CACHE_HOME'] = saved;
    await rm(dir, { recursive: true, force: true });
  });

  it('go to this user\'s reports folder, 0600 in a 0700 folder, and only the newest of each kind are kept', async () => {
    const reports = defaultReportDir();
    expect(reports).toBe(join(dir, 'cache', 'vaultpath', 'reports'));
    const src = join(dir, 'src');
    await mkdir(src);
    await symlink('nowhere', join(src, 'link')); // skipped: one line in the report
    const { reportPath } = await scanSources([src]);
    expect(reportPath.startsWith(`${reports}/skipped-`)).toBe(true);
    expect((await lstat(reports)).mode & 0o7777).toBe(0o700);
    expect((await lstat(reportPath)).mode & 0o7777).toBe(0o600);
    expect(await readFile(reportPath, 'utf8')).toMatch(/"reason":"reparse-point"/);
    // Old reports of both kinds, and a file of the user's own that is not a report.
    for (let i = 0; i < 30; i++) {
      const t = `2025-01-01T00-00-${String(i).padStart(2, '0')}-000Z`;
      await writeFile(join(reports, `skipped-${t}-aaaaaa.jsonl`), '');
      await writeFile(join(reports, `backup-${t}-aaaaaa.jsonl`), '');
    }
    await writeFile(join(reports, 'keep-me.txt'), 'mine');
    await scanSources([src]);
    const names = await readdir(reports);
    expect(names.filter((n) => n.startsWith('skipped-'))).toHaveLength(KEEP_REPORTS + 1); // the 20 kept and the new one
    expect(names).toContain(reportPath.slice(reports.length + 1)); // the newest are kept
    expect(names).not.toContain('skipped-2025-01-01T00-00-00-000Z-aaaaaa.jsonl'); // the oldest went
    expect(names.filter((n) => n.startsWith('backup-'))).toHaveLength(30); // another kind: pruned by its own runs
    expect(names).toContain('keep-me.txt');
  });

  it('never write through a link, nor into an existing file, in the reports folder', async () => {
    const reports = defaultReportDir();
    await scanSources([dir]); // makes the folder
    const victim = join(dir, 'victim');
    await writeFile(victim, 'untouched');
    const name = join(reports, 'skipped-2026-01-01T00-00-00-000Z-abcdef.jsonl');
    await symlink(victim, name);
    await expect(SkippedFilesReport.create(name)).rejects.toMatchObject({ code: 'VP_LOCAL_IO' });
    await rm(name);
    await writeFile(name, 'an earlier report');
    await expect(SkippedFilesReport.create(name)).rejects.toMatchObject({ code: 'VP_LOCAL_IO', message: /EEXIST/ });
    expect(await readFile(victim, 'utf8')).toBe('untouched');
  });

  it('fail with VP_LOCAL_IO naming the report when the disk is full', async () => {
    const report = await SkippedFilesReport.create('/dev/full');
    report.add({ root: dir, path: join(dir, 'x'), relativePath: 'x', kind: 'file', decision: { kind: 'skip', reason: 'reparse-point', rule: 'reparse-point' } });
    await expect(report.close()).rejects.toMatchObject({ code: 'VP_LOCAL_IO', message: /\/dev\/full.*ENOSPC/ });
  });
});
