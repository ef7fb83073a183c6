/**
 * The restore plans its reads by pack: a pack that a later file reads again stays in the recovery folder until its
 * last reader is done, so each pack is downloaded once per restore even when the recovery folder holds only a couple
 * of packs and many other packs pass through it in between. Downloads are counted at the store (whole-object `get`s
 * of `data/` names) under a real vault on the real file system.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { backup } from '../../src/engine/backup.js';
import { restore } from '../../src/engine/restore.js';
import { Vault } from '../../src/repo/vault.js';
import { type Kernels, nativeKernels, portableKernels } from '../../src/native/ports.js';
import type { GetOptions } from '../../src/transfer/store.js';
import { PassThroughStore } from '../support/pass-through-store.js';
import { PASSPHRASE, type VaultFixture, makeVault } from '../support/vaults.js';

/** Counts whole-object reads of packs, by name. */
class CountingStore extends PassThroughStore {
  readonly downloads = new Map<string, number>();
  override get(name: string, options?: GetOptions): Promise<Buffer> {
    if (name.startsWith('data/') && options?.offset === undefined && options?.length === undefined) {
      this.downloads.set(name, (this.downloads.get(name) ?? 0) + 1);
    }
    return super.get(name, options);
  }
}

let f: VaultFixture;
beforeEach(async () => {
  f = await makeVault();
});
afterEach(() => f.cleanup());

/**
 * A source where `a` and `z` (same content) share a pack, with `between` files in packs of their own named between
 * them, so the restoring walk reads a's pack, then every other pack, then a's pack again.
 */
async function backUpRevisiting(size: number, between: number): Promise<{ a: Buffer; snapshot: string }> {
  const src = f.path('src');
  await mkdir(src);
  const a = randomBytes(size);
  await writeFile(f.path('src', 'a.bin'), a);
  for (let i = 0; i < between; i++) await writeFile(f.path('src', `m${String(i).padStart(3, '0')}.bin`), randomBytes(size));
  await writeFile(f.path('src', 'z.bin'), a);
  // Packs smaller than one file's chunk: every file's data is a pack (or a few) of its own.
  const r = await backup(f.vault, [src], { scratchDir: f.path('scratch'), reportPath: f.path('report.jsonl'), targetPackSize: 64 * 1024 });
  return { a, snapshot: r.snapshot! };
}

const kernelsUnderTest: [string, Kernels][] = [['native', nativeKernels], ['portable', portableKernels]];

describe.each(kernelsUnderTest)('restore with a recovery folder of a few packs (%s kernels)', (_name, kernels) => {
  it('downloads each pack once when a file at the end reads the pack of the first file (small files)', async () => {
    const { a, snapshot } = await backUpRevisiting(150 * 1024, 120);
    const store = new CountingStore(f.store);
    const vault = await Vault.open(store, PASSPHRASE);
    const r = await restore(vault, snapshot, f.path('target'), { recoveryFolder: f.path('recovery'), recoveryBytes: 400 * 1024, kernels });
    expect(r.errors).toEqual([]);
    expect(r.files).toBe(122);
    expect((await readFile(f.path('target', 'src', 'z.bin'))).equals(a)).toBe(true);
    const twice = [...store.downloads].filter(([, n]) => n > 1);
    expect(twice).toEqual([]);
    expect(store.downloads.size).toBeGreaterThanOrEqual(121);
    expect(r.downloaded.packs).toBe(store.downloads.size);
  });

  it('downloads each pack once when large files revisit a pack', async () => {
    const { a, snapshot } = await backUpRevisiting(1536 * 1024, 12);
    const store = new CountingStore(f.store);
    const vault = await Vault.open(store, PASSPHRASE);
    const r = await restore(vault, snapshot, f.path('target'), { recoveryFolder: f.path('recovery'), recoveryBytes: 4 * 1024 * 1024, kernels });
    expect(r.errors).toEqual([]);
    expect((await readFile(f.path('target', 'src', 'z.bin'))).equals(a)).toBe(true);
    expect([...store.downloads].filter(([, n]) => n > 1)).toEqual([]);
  });
});

describe('restore with a recovery folder too small for the packs read again', () => {
  it('drops the pack whose next reader comes last, so one pack is downloaded twice, not two', async () => {
    // Three files in packs A, B and C, read again later: A twice early, then B, then C. The recovery folder holds
    // three packs, so while the files in between (a pack each) are read, one of A, B and C must go: C, read last,
    // costs one download again; the least recently used (A, then B) would cost two.
    const src = f.path('src');
    await mkdir(src);
    const size = 150 * 1024;
    const [a, b, c] = [randomBytes(size), randomBytes(size), randomBytes(size)];
    let n = 0;
    const put = (data: Buffer): Promise<void> => writeFile(f.path('src', `f${String(n++).padStart(3, '0')}.bin`), data);
    const between = async (): Promise<void> => {
      for (let i = 0; i < 40; i++) await put(randomBytes(size));
    };
    await put(a);
    await put(b);
    await put(c);
    await between();
    await put(a);
    await between();
    await put(a);
    await between();
    await put(b);
    await put(c);
    const { snapshot } = await backup(f.vault, [src], { scratchDir: f.path('scratch'), reportPath: f.path('report.jsonl'), targetPackSize: 64 * 1024 });
    const store = new CountingStore(f.store);
    const vault = await Vault.open(store, PASSPHRASE);
    const r = await restore(vault, snapshot!, f.path('target'), { recoveryFolder: f.path('recovery'), recoveryBytes: 560 * 1024 });
    expect(r.errors).toEqual([]);
    expect(r.files).toBe(n);
    expect([...store.downloads.values()].filter((k) => k > 1)).toEqual([2]);
    expect(r.downloaded.refetched).toBe(1);
  });
});

describe('restore downloads within the recovery folder', () => {
  it('never has more packs downloading than the recovery folder holds, however many files are in flight', async () => {
    const src = f.path('src');
    await mkdir(src);
    for (let i = 0; i < 40; i++) await writeFile(f.path('src', `f${String(i).padStart(2, '0')}.bin`), randomBytes(150 * 1024));
    const { snapshot } = await backup(f.vault, [src], { scratchDir: f.path('scratch'), reportPath: f.path('report.jsonl'), targetPackSize: 64 * 1024 });
    // Each pack download is held open a little, so that downloads a restore starts together overlap here.
    let now = 0;
    let most = 0;
    class SlowStore extends CountingStore {
      override async get(name: string, options?: GetOptions): Promise<Buffer> {
        if (!name.startsWith('data/') || options?.offset !== undefined) return super.get(name, options);
        most = Math.max(most, ++now);
        try {
          await new Promise((r) => setTimeout(r, 20));
          return await super.get(name, options);
        } finally {
          now--;
        }
      }
    }
    const store = new SlowStore(f.store);
    const vault = await Vault.open(store, PASSPHRASE);
    // Room for two of the packs (about 150 KiB each), not three.
    const r = await restore(vault, snapshot!, f.path('target'), { recoveryFolder: f.path('recovery'), recoveryBytes: 400 * 1024 });
    expect(r.errors).toEqual([]);
    expect(r.files).toBe(40);
    expect(store.downloads.size).toBe(40);
    expect(most).toBeGreaterThanOrEqual(1);
    expect(most).toBeLessThanOrEqual(2);
  });
});
