// The vault index cached in a local file: a load with the cache reads only the index objects written since, and
// answers exactly as a load from the vault; a cache that is damaged, truncated, another vault's, behind a link, or
// that lists an object the vault dropped or superseded is never trusted.
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, readdir, stat, symlink, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ObjectType } from '../../src/crypto/object-type.js';
import type { IndexEntry } from '../../src/repo/index-file.js';
import { indexCacheName } from '../../src/repo/index-cache.js';
import { writeIndexObject } from '../../src/repo/index-writer.js';
import { Vault, type VaultIndex } from '../../src/repo/vault.js';
import { CountingStore } from '../support/pass-through-store.js';
import { PASSPHRASE, type VaultFixture, makeVault } from '../support/vaults.js';

let f: VaultFixture;
let vault: Vault;
let store: CountingStore;
let cacheDir: string;
let file: string;

const entries = (n: number, pack = randomBytes(32)): IndexEntry[] =>
  Array.from({ length: n }, (_, i) => ({
    id: randomBytes(32),
    type: i % 7 === 0 ? ObjectType.tree : ObjectType.data,
    codec: 0,
    packId: i % 3 === 0 ? pack : randomBytes(32),
    offset: 1000 * i,
    length: 100 + i,
    plaintextLength: 52 + i,
  }));

/** Every blob of `index` with its location, as comparable strings. */
const listing = (index: VaultIndex): string[] =>
  [...index.entries()].map(([id, at]) => `${id.toString('hex')} ${at.packId.toString('hex')} ${at.type} ${at.codec} ${at.offset} ${at.length} ${at.plaintextLength}`).sort();

async function load(options: { prefixIds?: boolean } = {}): Promise<{ index: VaultIndex; reads: number; cached: number }> {
  store.reset();
  const index = await vault.loadIndex({ cacheDir, ...options });
  return { index, reads: store.count('index/'), cached: vault.lastIndexLoad!.cached };
}

beforeEach(async () => {
  f = await makeVault();
  store = new CountingStore(f.store);
  vault = await Vault.open(store, PASSPHRASE);
  cacheDir = f.path('scratch');
  await mkdir(cacheDir);
  file = join(cacheDir, indexCacheName(vault.config.id));
  for (let i = 0; i < 5; i++) await writeIndexObject(f.store, vault.keys, entries(200));
});
afterEach(() => f.cleanup());

describe('the index cache', () => {
  it('is written by a first load, and a second load reads no index object and answers the same', async () => {
    const plain = listing(await vault.loadIndex());
    const first = await load();
    expect(first).toMatchObject({ reads: 5, cached: 0 });
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    const second = await load();
    expect(second).toMatchObject({ reads: 0, cached: 1000 });
    expect(listing(second.index)).toEqual(plain);
    expect(listing(first.index)).toEqual(plain);
  });

  it('reads only the objects written since, and takes their blobs', async () => {
    await load();
    const added = entries(10);
    await writeIndexObject(f.store, vault.keys, added);
    const next = await load();
    expect(next).toMatchObject({ reads: 1, cached: 1000 });
    expect(next.index.size).toBe(1010);
    for (const e of added) expect(next.index.get(e.id)).toMatchObject({ offset: e.offset, length: e.length });
  });

  it('is rewritten once many blobs were read beside it, and then covers them', async () => {
    await load();
    await writeIndexObject(f.store, vault.keys, entries(70_000));
    expect(await load()).toMatchObject({ reads: 1, cached: 1000 });
    expect(await load()).toMatchObject({ reads: 0, cached: 71_000 });
  });

  const damages: [string, () => Promise<void>][] = [
    ['a byte of its header changed', () => flip(9)],
    ['a byte of its records changed', () => flip(-100)],
    ['a byte of its authentication tag changed', () => flip(-1)],
    ['truncated', async () => truncate(file, (await stat(file)).size - 33)],
    ['emptied', () => writeFile(file, '')],
    [
      "another vault's cache put in its place",
      async () => {
        const other = await makeVault();
        try {
          await writeIndexObject(other.store, other.vault.keys, entries(5));
          await other.vault.loadIndex({ cacheDir: other.path() });
          await writeFile(file, await readFile(other.path(indexCacheName(other.vault.config.id))));
        } finally {
          await other.cleanup();
        }
      },
    ],
  ];
  async function flip(at: number): Promise<void> {
    const bytes = await readFile(file);
    bytes[at < 0 ? bytes.length + at : at]! ^= 0x01;
    await writeFile(file, bytes);
  }
  for (const [what, damage] of damages) {
    it(`is not trusted when ${what}: the index is read from the vault, and the cache written again`, async () => {
      const plain = listing((await load()).index);
      await damage();
      const again = await load();
      expect(again).toMatchObject({ reads: 5, cached: 0 });
      expect(listing(again.index)).toEqual(plain);
      expect(await load()).toMatchObject({ reads: 0, cached: 1000 });
    });
  }

  it('is not trusted when the vault no longer has an object it lists', async () => {
    await load();
    const names: string[] = [];
    for await (const o of f.store.list('index/')) names.push(o.name);
    await f.store.delete(names[2]!);
    const again = await load();
    expect(again).toMatchObject({ reads: 4, cached: 0 });
    expect(again.index.size).toBe(800);
  });

  it('is not trusted when a new object supersedes one it lists, and the superseded entries are gone', async () => {
    const kept = entries(3);
    const old = await writeIndexObject(f.store, vault.keys, [...kept, ...entries(4)]);
    await load();
    await writeIndexObject(f.store, vault.keys, kept, [old]);
    const again = await load();
    expect(again.cached).toBe(0);
    expect(again.index.size).toBe(1003);
    // And the cache written then keeps the superseded object out without reading it.
    const next = await load();
    expect(next).toMatchObject({ reads: 0, cached: 1003 });
    expect(next.index.size).toBe(1003);
  });

  it('is never read or written through a symbolic link at its name', async () => {
    await load();
    const elsewhere = f.path('elsewhere');
    await mkdir(elsewhere);
    const target = join(elsewhere, 'cache');
    await writeFile(target, await readFile(file));
    const before = await readFile(target);
    await import('node:fs/promises').then((fs) => fs.rm(file));
    await symlink(target, file);
    expect(await load()).toMatchObject({ reads: 5, cached: 0 });
    expect(await readFile(target)).toEqual(before);
    expect(await readdir(elsewhere)).toEqual(['cache']);
  });

  it('serves whole ids, or prefixes whose every match is confirmed against the whole id in the file', async () => {
    const plain = listing(await vault.loadIndex());
    await load();
    const compact = await load({ prefixIds: true });
    try {
      expect(compact).toMatchObject({ reads: 0, cached: 1000 });
      expect(compact.index.prefixIds).toBe(true);
      const ids = plain.map((line) => Buffer.from(line.slice(0, 64), 'hex'));
      for (const id of ids) {
        expect(compact.index.has(id)).toBe(true);
        expect(compact.index.get(id)).toBeDefined();
      }
      // Same 12-byte prefix, another id: the prefix matches, the confirmation does not.
      const near = Buffer.from(ids[500]!);
      near[31]! ^= 0xff;
      expect(compact.index.has(near)).toBe(false);
      expect(compact.index.get(near)).toBeUndefined();
      expect(compact.index.has(randomBytes(32))).toBe(false);
      // The unchanged-file check asks by hex and is a prefix lookup (see VaultIndex.hasHex).
      for (const id of ids) expect(compact.index.hasHex(id.toString('hex'))).toBe(true);
      expect(compact.index.hasHex(near.toString('hex'))).toBe(true);
      expect(compact.index.hasHex(randomBytes(32).toString('hex'))).toBe(false);
      expect(() => compact.index.entries()).toThrow(/prefixes/);
    } finally {
      await compact.index.close();
    }
  });

  it('with prefixes, is rewritten from the file and the blobs read beside it, and then answers as the vault does', async () => {
    await load();
    await writeIndexObject(f.store, vault.keys, entries(70_000));
    const grown = await load({ prefixIds: true });
    await grown.index.close();
    expect(grown).toMatchObject({ reads: 1, cached: 1000 });
    const again = await load();
    expect(again).toMatchObject({ reads: 0, cached: 71_000 });
    expect(listing(again.index)).toEqual(listing(await vault.loadIndex()));
  });
});
