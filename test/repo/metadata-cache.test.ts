/**
 * The metadata cache (src/repo/metadata-cache.ts) under a vault on the real file system, its reads counted by a
 * pass-through store: what the cache holds is never trusted (a damaged, truncated or swapped entry is deleted and
 * the object read from the vault again), it stays within its bounds, least recently used first, it forgets what
 * the vault no longer lists, and it never follows a link.
 */
import { copyFileSync, existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, symlinkSync, truncateSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Vault } from '../../src/repo/vault.js';
import { MetadataCache, isRemoteVault } from '../../src/repo/metadata-cache.js';
import { ObjectType } from '../../src/crypto/object-type.js';
import { backup } from '../../src/engine/backup.js';
import { LocalStore } from '../../src/transfer/local-store.js';
import { CountingStore } from '../support/pass-through-store.js';
import { PASSPHRASE, type VaultFixture, makeVault } from '../support/vaults.js';
import { writeTree } from '../support/trees.js';
import { seededBytes } from '../support/seeded.js';

let f: VaultFixture;
let counting: CountingStore;
/** The vault opened again through `counting`. */
let vault: Vault;
let snapshotId: string;
let treeIds: string[];

beforeEach(async () => {
  f = await makeVault();
  const files: Record<string, string> = {};
  for (let d = 0; d < 6; d++) for (let i = 0; i < 3; i++) files[`d${d}/sub/f${i}.txt`] = seededBytes(100 + d * 10 + i, d * 7 + i).toString('hex');
  await writeTree(f.path('src'), files);
  const first = await backup(f.vault, [f.path('src')], { scratchDir: f.path('scratch'), metadataCache: false });
  snapshotId = first.snapshot!;
  counting = new CountingStore(f.store);
  vault = await Vault.open(counting, PASSPHRASE);
  treeIds = [];
  for (const [id, at] of (await vault.loadIndex()).entries()) if (at.type === ObjectType.tree) treeIds.push(id.toString('hex'));
  counting.reset();
});
afterEach(() => f.cleanup());

function openCache(options: { maxBytes?: number } = {}): MetadataCache {
  const cache = MetadataCache.open(f.path('scratch'), vault.config.id, options);
  if (!cache) throw new Error('the cache did not open');
  return cache;
}

/** Reads the index, the snapshot and every tree through `v`; returns what was read, for comparison. */
async function readAll(v: Vault): Promise<string> {
  const index = await v.loadIndex();
  const snapshot = await v.readSnapshot(snapshotId);
  const trees = [];
  for (const id of treeIds) trees.push(await v.readTree(index, id));
  return JSON.stringify({ size: index.size, damaged: index.damaged.length, snapshot, trees });
}

const entryPath = (cache: MetadataCache, kind: string, id: string): string => join(cache.dir, `${kind}-${id}`);

describe('metadata cache', () => {
  it('serves index objects, snapshots and trees a second time without reading the vault', async () => {
    const plain = await readAll(vault);
    const indexGets = counting.count('index/');
    expect(indexGets).toBeGreaterThan(0);
    counting.reset();

    const cache = openCache();
    const cached = vault.withMetadataCache(cache);
    expect(await readAll(cached)).toBe(plain); // the first read through the cache fills it
    expect(counting.count('data/')).toBe(treeIds.length);
    counting.reset();
    // The vault's own folder, owner-only, named by its id; each entry owner-only too.
    expect(cache.dir).toBe(f.path('scratch', 'metadata', vault.config.id));
    expect(lstatSync(cache.dir).mode & 0o777).toBe(0o700);
    const entries = readdirSync(cache.dir);
    expect(entries).toHaveLength(1 + 1 + treeIds.length); // one index object, the snapshot, the trees
    for (const n of entries) expect(lstatSync(join(cache.dir, n)).mode & 0o777).toBe(0o600);

    // A later run opens the cache from disk: nothing of it is read from the vault again.
    const again = vault.withMetadataCache(openCache());
    expect(await readAll(again)).toBe(plain);
    expect(counting.gets).toEqual([]);
  });

  it('never trusts an entry: a damaged byte, a truncated file or another object\'s bytes are deleted and read again from the vault', async () => {
    const plain = await readAll(vault);
    const first = openCache();
    await readAll(vault.withMetadataCache(first));
    const [t0, t1, t2, t3] = treeIds as [string, string, string, string];
    const indexEntry = readdirSync(first.dir).find((n) => n.startsWith('index-'))!;
    const snapshotEntry = `snapshot-${snapshotId}`;
    // A flipped byte in a tree, a truncated tree, a tree holding another tree's bytes, an index object holding a
    // snapshot's bytes, a snapshot cut to nothing.
    const damaged = readFileSync(entryPath(first, 'tree', t0));
    damaged[damaged.length >> 1]! ^= 0x01;
    writeFileSync(entryPath(first, 'tree', t0), damaged);
    truncateSync(entryPath(first, 'tree', t1), readFileSync(entryPath(first, 'tree', t1)).length - 1);
    copyFileSync(entryPath(first, 'tree', t3), entryPath(first, 'tree', t2));
    copyFileSync(join(first.dir, snapshotEntry), join(first.dir, indexEntry));
    truncateSync(join(first.dir, snapshotEntry), 0);
    counting.reset();

    const cache = openCache();
    expect(await readAll(vault.withMetadataCache(cache))).toBe(plain);
    // Exactly the five damaged objects were read from the vault again, and nothing else.
    expect(counting.count('data/')).toBe(3);
    expect(counting.count('index/')).toBe(1);
    expect(counting.count('snapshots/')).toBe(1);
    expect(cache.stats.rejected).toBe(5);
    // Each was replaced by the vault's bytes: the next run reads nothing.
    counting.reset();
    const next = openCache();
    expect(await readAll(vault.withMetadataCache(next))).toBe(plain);
    expect(counting.gets).toEqual([]);
    expect(next.stats.rejected).toBe(0);
  });

  it('stays within its byte bound, dropping the least recently used first, also when opened again smaller', async () => {
    const index = await vault.loadIndex();
    const size = (id: string): number => index.get(Buffer.from(id, 'hex'))!.length;
    const trees = [...treeIds].sort((a, b) => size(a) - size(b)); // read smallest first: the last three are the largest
    const bound = trees.slice(-3).reduce((sum, id) => sum + size(id), 0); // room for the last three read
    const cache = openCache({ maxBytes: bound });
    const cached = vault.withMetadataCache(cache);
    const cachedIndex = await cached.loadIndex(); // kept, then evicted by the trees read after it
    for (const id of trees) await cached.readTree(cachedIndex, id);
    const onDisk = (): number => readdirSync(cache.dir).reduce((sum, n) => sum + lstatSync(join(cache.dir, n)).size, 0);
    expect(cache.bytes).toBeLessThanOrEqual(bound);
    expect(onDisk()).toBe(cache.bytes);
    expect(readdirSync(cache.dir).sort()).toEqual(trees.slice(-3).map((id) => `tree-${id}`).sort());

    // A hit makes an entry the most recent: after the oldest of the three is read again, reading the smallest tree
    // evicts the next oldest instead.
    const [a, b, c] = trees.slice(-3) as [string, string, string];
    await cached.readTree(cachedIndex, a);
    await cached.readTree(cachedIndex, trees[0]!);
    expect(readdirSync(cache.dir).sort()).toEqual([a, c, trees[0]!].map((id) => `tree-${id}`).sort());
    expect(existsSync(entryPath(cache, 'tree', b))).toBe(false);

    // Opened again with a smaller bound, it trims what earlier runs left, least recently used first (by the files'
    // times, which a hit sets: here set one second apart so that the order is plain).
    const held = readdirSync(cache.dir).sort();
    held.forEach((n, i) => utimesSync(join(cache.dir, n), 1_000_000 + i, 1_000_000 + i));
    const newest = held.slice(-2);
    const smaller = openCache({ maxBytes: newest.reduce((sum, n) => sum + lstatSync(join(cache.dir, n)).size, 0) });
    expect(smaller.size).toBe(2);
    expect(readdirSync(cache.dir).sort()).toEqual(newest);
  });

  it('forgets index objects and snapshots the vault no longer lists', async () => {
    const second = await backup(vault, [f.path('src')], { scratchDir: f.path('scratch'), metadataCache: false, parent: null });
    const cache = openCache();
    const cached = vault.withMetadataCache(cache);
    await cached.loadIndex();
    await cached.listSnapshots();
    const held = (kind: string): string[] => readdirSync(cache.dir).filter((n) => n.startsWith(kind));
    expect(held('snapshot-')).toHaveLength(2);
    const indexObjects = held('index-');
    expect(indexObjects.length).toBeGreaterThan(0);

    // Another machine removes a snapshot and an index object (as forget and prune do).
    await f.store.delete(`snapshots/${second.snapshot!}`);
    await f.store.delete(`index/${indexObjects[0]!.slice('index-'.length)}`);
    const later = openCache();
    const reopened = vault.withMetadataCache(later);
    await reopened.listSnapshots();
    await reopened.loadIndex();
    expect(held('snapshot-')).toEqual([`snapshot-${snapshotId}`]);
    expect(held('index-')).toEqual(indexObjects.slice(1));
    expect(later.stats.cleaned).toBe(2);
  });

  it('keeps what the run writes, so the next run does not fetch it back', async () => {
    const cache = openCache();
    const cached = vault.withMetadataCache(cache);
    const id = await cached.writeSnapshot((await vault.readSnapshot(snapshotId)));
    counting.reset();
    await vault.withMetadataCache(openCache()).readSnapshot(id);
    expect(counting.count('snapshots/')).toBe(0);
  });

  it('keeps two vaults apart, and never follows a link in its folder', async () => {
    const other = await makeVault();
    try {
      expect(MetadataCache.open(f.path('scratch'), other.vault.config.id)!.dir).not.toBe(openCache().dir);
    } finally {
      await other.cleanup();
    }

    // A link in place of an entry (pointing at a file of the right bytes, even) is removed, never read.
    const cache = openCache();
    await readAll(vault.withMetadataCache(cache));
    const outside = f.path('outside');
    copyFileSync(entryPath(cache, 'tree', treeIds[0]!), outside);
    const link = entryPath(cache, 'tree', treeIds[0]!);
    writeFileSync(link, ''); // replaced below by a link
    const { rmSync } = await import('node:fs');
    rmSync(link);
    symlinkSync(outside, link);
    counting.reset();
    const index = await vault.loadIndex();
    counting.reset();
    // Read while the link is there: refused (O_NOFOLLOW), read from the vault, and the link replaced by a file.
    await vault.withMetadataCache(cache).readTree(index, treeIds[0]!);
    expect(counting.count('data/')).toBe(1);
    expect(lstatSync(link).isFile()).toBe(true);
    // Found when the cache is opened: removed.
    rmSync(link);
    symlinkSync(outside, link);
    openCache();
    expect(existsSync(link)).toBe(false);
    expect(existsSync(outside)).toBe(true);

    // A vault folder that is a link: no cache at all, nothing written through it.
    const elsewhere = f.path('elsewhere');
    mkdirSync(elsewhere, { mode: 0o700 });
    rmSync(cache.dir, { recursive: true });
    symlinkSync(elsewhere, cache.dir);
    expect(MetadataCache.open(f.path('scratch'), vault.config.id)).toBeUndefined();
    expect(readdirSync(elsewhere)).toEqual([]);
  });

  it('is for remote vaults: a folder or file:// location is not one', async () => {
    expect(isRemoteVault('/backups/vault')).toBe(false);
    expect(isRemoteVault('file:///backups/vault')).toBe(false);
    expect(isRemoteVault('https://acct.blob.core.windows.net/c')).toBe(true);
    await backup(vault, [f.path('src')], { scratchDir: f.path('scratch') });
    expect(existsSync(f.path('scratch', 'metadata'))).toBe(false);
    const store = await LocalStore.open(f.path('vault'));
    expect(isRemoteVault(store.location)).toBe(false);
  });
});
