/**
 * A backup lists and probes each folder once: the walk takes back the listings its scan kept
 * (scan/listing-replay.ts), and still backs up what is there when it reaches a folder, through descriptors.
 */
import { mkdirSync, readdirSync, renameSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { backup } from '../../src/engine/backup.js';
import type { BackupProgress } from '../../src/engine/backup.js';
import { restore } from '../../src/engine/restore.js';
import { indexCacheName } from '../../src/repo/index-cache.js';
import type { AttributeProbe } from '../../src/scan/attributes.js';
import { defaultProbe } from '../../src/scan/probe.js';
import { type VaultFixture, makeVault } from '../support/vaults.js';

const linux = process.platform === 'linux';
let f: VaultFixture;
beforeEach(async () => {
  f = await makeVault();
  mkdirSync(f.path('scratch'), { mode: 0o700 });
});
afterEach(() => f.cleanup());

/** The default probe, counting the paths it is asked about. */
function countingProbe(): AttributeProbe & { probed: number } {
  const inner = defaultProbe();
  const counting = {
    name: inner.name,
    probed: 0,
    probe: (paths: readonly string[], context: Parameters<AttributeProbe['probe']>[1]) => {
      counting.probed += paths.length;
      return inner.probe(paths, context);
    },
    deviceOf: (path: string) => inner.deviceOf(path),
  };
  return counting;
}

/** `folders` folders of `files` files each, below `src`: folders × (files + 1) entries below the root. */
function makeTree(src: string, folders: number, files: number): void {
  for (let d = 0; d < folders; d++) {
    mkdirSync(join(src, `d${d}`), { recursive: true });
    for (let i = 0; i < files; i++) writeFileSync(join(src, `d${d}`, `f${i}.txt`), `file ${d}/${i}\n`.repeat(1 + (i % 5)));
  }
}

/** Backup options whose `onProgress` runs `change` once, when the scan is done and before the walk starts. */
function afterScan(change: () => void): { onProgress: (p: BackupProgress) => void } {
  let done = false;
  return {
    onProgress: (p) => {
      if (p.phase !== 'scan' || done) return;
      done = true;
      change();
    },
  };
}

describe.runIf(linux)('a backup\'s walk', () => {
  it('probes each entry once in an unchanged backup: the scan\'s listing is taken back, not made again', async () => {
    const src = f.path('src');
    makeTree(src, 6, 40);
    await backup(f.vault, [src], { scratchDir: f.path('scratch') });
    const probe = countingProbe();
    const second = await backup(f.vault, [src], { scratchDir: f.path('scratch'), probe });
    expect(second.filesUnchanged).toBe(240);
    expect(second.status).toBe('complete');
    expect(probe.probed).toBe(6 * 41); // every file and folder below the root, once (twice before: scan and walk)
    // The kept listings were in an unlinked file: only the index cache is left.
    expect(readdirSync(f.path('scratch'))).toEqual([indexCacheName(f.vault.config.id)]);
  });

  it('probes again, before reading, only the files it reads: a first backup probes each file twice at most', async () => {
    const src = f.path('src');
    makeTree(src, 3, 10);
    const probe = countingProbe();
    const first = await backup(f.vault, [src], { scratchDir: f.path('scratch'), probe });
    expect(first.files).toBe(30);
    expect(probe.probed).toBe(3 * 11 + 30); // all entries by the scan, then the 30 files read
  });

  it('reads a file to back up as it is when read: one changed again after the scan is read whole, with no warning', async () => {
    const src = f.path('src');
    makeTree(src, 3, 10);
    await backup(f.vault, [src], { scratchDir: f.path('scratch') });
    writeFileSync(join(src, 'd0', 'f1.txt'), 'changed since the first backup\n');
    const second = await backup(f.vault, [src], {
      scratchDir: f.path('scratch'),
      // Changed in place (its folder's mtime stays): the scan's size for it is no longer the file's.
      ...afterScan(() => writeFileSync(join(src, 'd0', 'f1.txt'), 'changed again after the scan, and longer than it was\n')),
    });
    expect(second.status).toBe('complete');
    expect(second.warnings).toBe(0);
    await restore(f.vault, 'latest', f.path('target'), { recoveryFolder: f.path('recovery') });
    expect(await readFile(join(f.path('target'), 'src', 'd0', 'f1.txt'), 'utf8')).toBe('changed again after the scan, and longer than it was\n');
  });

  it('lists again a folder in which entries were added or removed after the scan', async () => {
    const src = f.path('src');
    makeTree(src, 3, 10);
    await backup(f.vault, [src], { scratchDir: f.path('scratch') });
    const second = await backup(f.vault, [src], {
      scratchDir: f.path('scratch'),
      ...afterScan(() => {
        writeFileSync(join(src, 'd1', 'added.txt'), 'added after the scan\n');
        unlinkSync(join(src, 'd2', 'f3.txt'));
      }),
    });
    expect(second.status).toBe('complete');
    expect(second.warnings).toBe(0);
    await restore(f.vault, 'latest', f.path('target'), { recoveryFolder: f.path('recovery') });
    const out = join(f.path('target'), 'src');
    expect(await readFile(join(out, 'd1', 'added.txt'), 'utf8')).toBe('added after the scan\n');
    expect(readdirSync(join(out, 'd2')).sort()).toEqual([0, 1, 2, 4, 5, 6, 7, 8, 9].map((i) => `f${i}.txt`));
  });

  it('takes a file unchanged at the scan from the parent as the scan saw it; the next backup reads what changed since', async () => {
    const src = f.path('src');
    makeTree(src, 2, 5);
    await backup(f.vault, [src], { scratchDir: f.path('scratch') });
    const before = await readFile(join(src, 'd0', 'f1.txt'), 'utf8');
    const second = await backup(f.vault, [src], {
      scratchDir: f.path('scratch'),
      ...afterScan(() => writeFileSync(join(src, 'd0', 'f1.txt'), 'changed after the scan\n')),
    });
    expect(second.filesUnchanged).toBe(10);
    expect(second.warnings).toBe(0);
    const third = await backup(f.vault, [src], { scratchDir: f.path('scratch') });
    expect(third.filesUnchanged).toBe(9);
    await restore(f.vault, second.snapshot!, f.path('second'), { recoveryFolder: f.path('recovery') });
    await restore(f.vault, third.snapshot!, f.path('third'), { recoveryFolder: f.path('recovery') });
    expect(await readFile(join(f.path('second'), 'src', 'd0', 'f1.txt'), 'utf8')).toBe(before);
    expect(await readFile(join(f.path('third'), 'src', 'd0', 'f1.txt'), 'utf8')).toBe('changed after the scan\n');
  });

  it('does not follow a folder swapped for a link after the scan, and stores nothing of what the link names', async () => {
    const src = f.path('src');
    makeTree(src, 2, 5);
    const secret = f.path('secret');
    mkdirSync(secret);
    writeFileSync(join(secret, 'f0.txt'), 'SECRET of another user\n');
    await backup(f.vault, [src], { scratchDir: f.path('scratch') });
    const second = await backup(f.vault, [src], {
      scratchDir: f.path('scratch'),
      ...afterScan(() => {
        renameSync(join(src, 'd1'), f.path('d1-moved'));
        symlinkSync(secret, join(src, 'd1'));
      }),
    });
    expect(second.bytesRead).toBe(0);
    expect(second.bytesNew).toBe(0);
    await restore(f.vault, 'latest', f.path('target'), { recoveryFolder: f.path('recovery') });
    expect(readdirSync(join(f.path('target'), 'src')).sort()).toEqual(['d0']);
  });
});
