import { link, mkdtemp, mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seededBytes } from './support/seeded.js';
import { runCli } from './support/cli.js';

const vaultpath = (...args: string[]) => runCli(args);

describe('the vaultpath command', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vaultpath-cli-'));
    const big = seededBytes(3 * 1024 * 1024, 9);
    await mkdir(join(dir, 'sub'));
    await writeFile(join(dir, 'a.bin'), big);
    await writeFile(join(dir, 'sub', 'copy-of-a.bin'), big); // deduplicates against a.bin
    await writeFile(join(dir, 'empty'), '');
    await writeFile(join(dir, 'note.txt'), 'hello');
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('prints usage with --help and exits 0', async () => {
    const r = await vaultpath('--help');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/Usage:/);
  });

  it('exits 2 with a hint on an unknown command or option', async () => {
    for (const args of [['frobnicate'], ['--frobnicate']]) {
      const r = await vaultpath(...args);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/vaultpath --help/);
    }
  });

  it('generates a passphrase as JSON', async () => {
    const r = await vaultpath('passphrase', 'generate', '--json');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as { passphrase: string; bits: number };
    expect(out.passphrase).toMatch(/^[a-z2-9]{4}(-[a-z2-9]{4}){6}$/);
    expect(out.bits).toBeGreaterThanOrEqual(128);
  });

  it('runs the demo: backs a folder up into a new vault, restores it, verifies it, and finds every file identical', async () => {
    const r = await vaultpath('demo', '--source', dir, '--json');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as {
      first: { files: number; bytesRead: number; bytesNew: number };
      second: { filesUnchanged: number };
      restore: { errors: unknown[] };
      verify: { damage: unknown[] };
      compare: { identical: number; different: string[] };
    };
    expect(out.first.files).toBe(4);
    expect(out.first.bytesRead).toBe(2 * 3 * 1024 * 1024 + 5);
    expect(out.first.bytesNew).toBe(3 * 1024 * 1024 + 5); // the copy deduplicates
    expect(out.second.filesUnchanged).toBe(4);
    expect(out.restore.errors).toEqual([]);
    expect(out.verify.damage).toEqual([]);
    expect(out.compare).toEqual({ identical: 4, different: [] });
  });

  it('scans with --json: one object with files, bytes, per-decision counts and the skipped entries', async () => {
    await link(join(dir, 'note.txt'), join(dir, 'note-link.txt'));
    await symlink('a.bin', join(dir, 'a-link'));
    try {
      const r = await vaultpath('scan', dir, '--exclude', 'sub', '--report', join(dir, '..', `report-${process.pid}.jsonl`), '--json');
      expect(r.code).toBe(0);
      const out = JSON.parse(r.stdout) as {
        files: number; bytes: number; decisions: Record<string, { entries: number }>; skipped: { path: string; reason: string }[];
      };
      expect(out.files).toBe(4); // a.bin, empty, note.txt, note-link.txt (sub/ excluded)
      expect(out.bytes).toBe(3 * 1024 * 1024);
      expect(out.decisions['backup']!.entries).toBe(2);
      expect(out.skipped).toEqual(
        expect.arrayContaining([
          { path: join(dir, 'note.txt'), reason: 'hard-link' },
          { path: join(dir, 'note-link.txt'), reason: 'hard-link' },
          { path: join(dir, 'a-link'), reason: 'reparse-point' },
        ]),
      );
      const human = await vaultpath('scan', dir, '--report', join(dir, '..', `report-h-${process.pid}.jsonl`));
      expect(human.stdout).toMatch(/skipped\s+3/);
      expect(human.stdout).toMatch(/hard-link\s+2/);
      expect(human.stdout).toMatch(/Skipped entries are listed in .*report-h-/);
    } finally {
      await rm(join(dir, 'note-link.txt'));
      await rm(join(dir, 'a-link'));
      await rm(join(dir, '..', `report-${process.pid}.jsonl`), { force: true });
      await rm(join(dir, '..', `report-h-${process.pid}.jsonl`), { force: true });
    }
  });

  it('fails a scan of a missing folder with its error code, and a scan of nothing with usage', async () => {
    const missing = await vaultpath('scan', join(dir, 'missing'));
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/VP_SOURCE_NOT_FOUND/);
    expect((await vaultpath('scan')).code).toBe(2);
    expect((await vaultpath('scan', dir, '--max-source-size', 'lots')).code).toBe(2);
  });

  it('refuses a source over --max-source-size before reading any data', async () => {
    const r = await vaultpath('scan', dir, '--max-source-size', '1MB', '--report', join(dir, '..', `report-m-${process.pid}.jsonl`));
    await rm(join(dir, '..', `report-m-${process.pid}.jsonl`), { force: true });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/limit of 1,000,000 bytes \(1\.00 MB\).*\[VP_SOURCE_TOO_LARGE\]/);
  });
});
