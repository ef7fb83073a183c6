/**
 * The scan's kept listings (scan/listing-replay.ts): what the walk takes back is exactly what it would have listed,
 * only for the folder that was listed and only while it is unchanged, in walk order, and the record file is private.
 */
import { type BigIntStats, chmodSync, fstatSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FolderLister, type OpenFolder } from '../../src/scan/folder.js';
import { ListingReplay } from '../../src/scan/listing-replay.js';
import { defaultProbe } from '../../src/scan/probe.js';
import { type ScanEntry, scanTotals } from '../../src/scan/scan.js';

const linux = process.platform === 'linux';
let dir: string;
let root: string;
let keep: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vaultpath-replay-'));
  root = join(dir, 'src');
  keep = join(dir, 'scratch');
  mkdirSync(keep, { mode: 0o700 });
  const files: Record<string, string> = {
    'top.txt': 'top',
    'Case.txt': 'one',
    'case.txt': 'two',
    'ünïcödé ✓.txt': 'u',
    '日本.txt': 'j',
    'a/one.txt': '1',
    'a/b/two.txt': '22',
    'a/b/deeper/three.txt': '333',
    'c/four.txt': '4444',
    'd/five.txt': '55555',
  };
  for (const [rel, text] of Object.entries(files)) {
    mkdirSync(join(root, rel, '..'), { recursive: true });
    writeFileSync(join(root, rel), text);
  }
  // A name that is not UTF-8, and a FIFO (skipped by the rules, with a decision of its own).
  writeFileSync(Buffer.concat([Buffer.from(`${root}/c/raw-`), Buffer.from([0xff, 0xfe]), Buffer.from('.bin')]), 'raw');
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Scans `root` keeping its listings, then finishes: what the walk will read back. */
async function scanned(): Promise<ListingReplay> {
  const listings = ListingReplay.open(keep);
  expect(listings).toBeDefined();
  await scanTotals([root], { listings });
  return listings!;
}

/** The folders below the root, depth first in listing order, as the walk opens them (children from the parent's fd). */
async function walkOrder(lister: FolderLister, visit: (folder: OpenFolder, st: BigIntStats) => Promise<ScanEntry[]>, skip = new Set<string>()): Promise<void> {
  const go = async (folder: OpenFolder): Promise<void> => {
    const entries = await visit(folder, fstatSync(folder.fd, { bigint: true }));
    for (const e of entries) {
      if (e.kind !== 'dir' || e.decision.kind === 'skip' || skip.has(e.relativePath)) continue;
      const child = lister.openChild(folder, e);
      if (!('fd' in child)) throw new Error(`could not open ${e.relativePath}`);
      try {
        await go(child);
      } finally {
        lister.close(child);
      }
    }
  };
  const top = lister.openRoot();
  if (!('fd' in top)) throw new Error('could not open the root');
  try {
    await go(top);
  } finally {
    lister.close(top);
  }
}

/** Walks as the backup does, taking kept listings where it can: the folders whose listing was taken. */
async function walkTaking(listings: ListingReplay, lister: FolderLister, skip?: Set<string>): Promise<string[]> {
  const used: string[] = [];
  await walkOrder(
    lister,
    async (folder, st) => {
      const kept = listings.take(0, lister, folder, st);
      if (kept) used.push(folder.relDir);
      return kept ? [...kept] : await lister.listOpen(folder);
    },
    skip,
  );
  return used;
}

describe.runIf(linux)('the scan\'s kept listings', () => {
  it('give back, folder by folder, exactly what a fresh listing gives: names (bytes too), kinds, decisions, attributes, access paths', async () => {
    const listings = await scanned();
    const lister = new FolderLister({ root, probe: defaultProbe() });
    let folders = 0;
    await walkOrder(lister, async (folder, st) => {
      const kept = listings.take(0, lister, folder, st);
      const fresh = await lister.listOpen(folder);
      expect(kept && [...kept], folder.relDir).toEqual(fresh);
      expect(kept!.dirs).toEqual(fresh.filter((e) => e.kind === 'dir'));
      folders++;
      return fresh;
    });
    expect(folders).toBe(6);
    expect(listings.replayed).toBe(6);
    expect(listings.listed).toBe(0);
    listings.close();
  });

  it('are not used for a folder changed since the scan (an entry added, or renamed), nor for another folder put in its place', async () => {
    const listings = await scanned();
    writeFileSync(join(root, 'a', 'b', 'new.txt'), 'new'); // a/b's mtime changes
    renameSync(join(root, 'd'), join(dir, 'd-old')); // the root changes, and d is another folder now
    mkdirSync(join(root, 'd'));
    const lister = new FolderLister({ root, probe: defaultProbe() });
    const used = await walkTaking(listings, lister);
    expect(used).toEqual(['a', 'a/b/deeper', 'c']);
    expect(listings.listed).toBe(3);
    listings.close();
  });

  it('pass over the records of folders the walk does not enter, and still give the later ones', async () => {
    const listings = await scanned();
    const lister = new FolderLister({ root, probe: defaultProbe() });
    const used = await walkTaking(listings, lister, new Set(['a']));
    expect(used).toEqual(['', 'c', 'd']);
    listings.close();
  });

  it('give nothing for a folder the scan did not record, and keep the records after it for later', async () => {
    const listings = await scanned();
    mkdirSync(join(root, 'b-new')); // between a and c in walk order, unknown to the scan
    const lister = new FolderLister({ root, probe: defaultProbe() });
    const used = await walkTaking(listings, lister);
    // The root changed (b-new was added): it is listed again, and so b-new is walked; its absence from the records
    // does not make the walk pass over c's and d's.
    expect(used).toEqual(['a', 'a/b', 'a/b/deeper', 'c', 'd']);
    listings.close();
  });

  it('live in a file no other user can reach: nothing is left in the folder, and a folder others may write in is not used', async () => {
    const listings = await scanned();
    expect(readdirSync(keep)).toEqual([]); // removed as soon as it was made: only the descriptor reaches it
    listings.close();
    chmodSync(keep, 0o777);
    expect(ListingReplay.open(keep)).toBeUndefined();
    chmodSync(keep, 0o700);
    rmSync(keep, { recursive: true });
    expect(ListingReplay.open(keep)).toBeUndefined(); // a missing folder is not created
  });
});
