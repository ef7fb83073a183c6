/**
 * The metadata cache as backup and restore use it: an unchanged backup fetches from the vault no index object,
 * snapshot or tree that an earlier run already fetched (or wrote); a restore reads its trees once across runs; a
 * remote vault (Azurite behind a counting pass-through server) gets the cache without being asked, a local one
 * does not.
 */
import { existsSync, readdirSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Vault } from '../../src/repo/vault.js';
import { backup } from '../../src/engine/backup.js';
import { restore } from '../../src/engine/restore.js';
import type { GetOptions } from '../../src/transfer/store.js';
import { PassThroughStore } from '../support/pass-through-store.js';
import { PASSPHRASE, type VaultFixture, describeTree, makeVault } from '../support/vaults.js';
import { writeTree } from '../support/trees.js';
import { TEST_KDF, seededBytes } from '../support/seeded.js';
import { azureBehindFaultServer } from '../support/azure.js';

/** Counts the gets that reach the store: whole objects by folder, and ranged reads of packs (trees). */
class CountingStore extends PassThroughStore {
  readonly gets: { name: string; ranged: boolean }[] = [];
  override get(name: string, options?: GetOptions): Promise<Buffer> {
    this.gets.push({ name, ranged: options?.offset !== undefined });
    return this.inner.get(name, options);
  }
  /** Gets since the last call: index objects, snapshots, and ranged pack reads. */
  take(): { index: number; snapshots: number; ranged: number } {
    const out = {
      index: this.gets.filter((g) => g.name.startsWith('index/')).length,
      snapshots: this.gets.filter((g) => g.name.startsWith('snapshots/')).length,
      ranged: this.gets.filter((g) => g.ranged).length,
    };
    this.gets.length = 0;
    return out;
  }
}

let f: VaultFixture;
const FILES = 24;
beforeAll(async () => {
  f = await makeVault();
  const files: Record<string, string> = {};
  for (let i = 0; i < FILES; i++) files[`d${i % 6}/sub${i % 2}/f${i}.bin`] = seededBytes(500 + i * 37, i).toString('base64');
  await writeTree(f.path('src'), files);
});
afterAll(() => f.cleanup());

describe('metadata cache in backup and restore', () => {
  it('an unchanged backup fetches no index object, snapshot or tree an earlier run fetched or wrote', async () => {
    const counting = new CountingStore(f.store);
    const vault = await Vault.open(counting, PASSPHRASE);
    const options = { scratchDir: f.path('scratch'), metadataCache: { localVaults: true } };
    await backup(vault, [f.path('src')], options);
    counting.take();

    // The first unchanged run reads the parent's trees (written inside packs); the index objects and the snapshot
    // the first run wrote were kept as they were written.
    const second = await backup(vault, [f.path('src')], options);
    expect(second.filesUnchanged).toBe(FILES);
    const reads = counting.take();
    expect(reads.index).toBe(0);
    expect(reads.snapshots).toBe(0);
    expect(reads.ranged).toBeGreaterThan(0);

    // The next one reads nothing of that from the vault, opened afresh as a new process would.
    const fresh = await Vault.open(counting, PASSPHRASE);
    counting.take();
    const third = await backup(fresh, [f.path('src')], options);
    expect(third.filesUnchanged).toBe(FILES);
    expect(third.bytesNew).toBe(0);
    expect(counting.take()).toEqual({ index: 0, snapshots: 0, ranged: 0 });
  });

  it('a restore reads its trees from the vault once across runs, and restores the same files', async () => {
    const counting = new CountingStore(f.store);
    const vault = await Vault.open(counting, PASSPHRASE);
    const options = { recoveryFolder: f.path('recovery'), metadataCache: { localVaults: true } };
    await restore(vault, 'latest', f.path('target-1'), options);
    expect(counting.take().ranged).toBeGreaterThan(0);
    const r = await restore(vault, 'latest', f.path('target-2'), options);
    expect(r.errors).toEqual([]);
    expect(counting.take()).toEqual({ index: 0, snapshots: 0, ranged: 0 });
    expect(await describeTree(f.path('target-2'))).toEqual(await describeTree(f.path('target-1')));
  });

  it('is on by default for a remote vault only', async () => {
    // A local vault: no cache folder, whatever the number of runs.
    const local = await makeVault();
    try {
      await backup(local.vault, [f.path('src')], { scratchDir: local.path('scratch') });
      await backup(local.vault, [f.path('src')], { scratchDir: local.path('scratch') });
      expect(existsSync(local.path('scratch', 'metadata'))).toBe(false);
    } finally {
      await local.cleanup();
    }

    // Azure Blob Storage (Azurite) behind a server that passes every request on and records it.
    const t = await azureBehindFaultServer(() => 'pass', { singlePutLimit: undefined });
    try {
      const created = await Vault.create(t.store, PASSPHRASE, { kdf: TEST_KDF });
      const scratchDir = f.path('scratch-azure');
      await backup(created, [f.path('src')], { scratchDir });
      await backup(await Vault.open(t.store, PASSPHRASE), [f.path('src')], { scratchDir });
      const vault = await Vault.open(t.store, PASSPHRASE);
      const before = t.server.requests.length;
      const third = await backup(vault, [f.path('src')], { scratchDir });
      expect(third.filesUnchanged).toBe(FILES);
      const reads = t.server.requests.slice(before).filter((r) => r.method === 'GET' && !/[?&]comp=list/.test(r.url));
      expect(reads.map((r) => r.url.replace(/\?.*/, ''))).toEqual([]);
      expect(readdirSync(f.path('scratch-azure', 'metadata'))).toEqual([vault.config.id]);
    } finally {
      await t.close();
    }
  });
});
