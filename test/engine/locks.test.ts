import { hostname } from 'node:os';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { backup } from '../../src/engine/backup.js';
import { Vault } from '../../src/repo/vault.js';
import { LOCK_ABANDONED_AFTER_MS } from '../../src/repo/lock.js';
import type { Body, CallOptions, PutOptions, StoreObjectInfo } from '../../src/transfer/store.js';
import { seededBytes } from '../support/seeded.js';
import { PassThroughStore } from '../support/pass-through-store.js';
import { PASSPHRASE, type VaultFixture, backupAbortedAfter, makeVault } from '../support/vaults.js';

const MiB = 1024 * 1024;
let f: VaultFixture;
beforeEach(async () => {
  f = await makeVault();
});
afterEach(() => f.cleanup());

async function source(files: number, seed: number): Promise<string> {
  const src = f.path('src');
  await mkdir(src, { recursive: true });
  for (let i = 0; i < files; i++) await writeFile(join(src, `f${seed}-${i}`), seededBytes(MiB, seed + i));
  return src;
}

/** Records which objects were put, in order, and which prefixes were listed. */
class ObservedStore extends PassThroughStore {
  readonly puts: string[] = [];
  readonly lists: string[] = [];
  override async put(name: string, body: Body, options?: PutOptions): Promise<void> {
    this.puts.push(name);
    return this.inner.put(name, body, options);
  }
  override list(prefix: string, options?: CallOptions): AsyncIterable<StoreObjectInfo> {
    this.lists.push(prefix);
    return this.inner.list(prefix, options);
  }
}

async function lockIds(): Promise<string[]> {
  return (await f.vault.readLocks()).map((l) => l.id).sort();
}

describe('the lock a backup takes', () => {
  it('is written before its first pack and removed once its snapshot is written', async () => {
    const src = await source(3, 10);
    const store = new ObservedStore(f.store);
    const vault = await Vault.open(store, PASSPHRASE);

    const r = await backup(vault, [src], { scratchDir: f.path('scratch'), targetPackSize: 512 * 1024 });

    const firstLock = store.puts.findIndex((n) => n.startsWith('locks/'));
    const firstPack = store.puts.findIndex((n) => n.startsWith('data/'));
    expect(firstLock).toBeGreaterThanOrEqual(0);
    expect(firstLock).toBeLessThan(firstPack);
    expect(r.snapshot).toBeDefined();
    expect(await lockIds()).toEqual([]);
  });

  it('spares a vault without locks the listing of its packs', async () => {
    const src = await source(3, 20);
    await backup(f.vault, [src], { scratchDir: f.path('scratch') });
    await writeFile(join(src, 'new'), seededBytes(MiB, 99));
    const store = new ObservedStore(f.store);

    await backup(await Vault.open(store, PASSPHRASE), [src], { scratchDir: f.path('scratch') });

    expect(store.lists).not.toContain('data/');
  });

  it('is left behind by a run that stored packs and failed, and the next run adopts them and removes it', async () => {
    const src = await source(8, 30);
    const { error: aborted, storedAtAbort } = await backupAbortedAfter(f.vault, [src], 2 * MiB, { scratchDir: f.path('scratch') });
    expect(aborted).toMatchObject({ code: 'VP_ABORTED' });
    const [left] = await f.vault.readLocks();
    expect(left?.lock).toMatchObject({ hostname: hostname(), pid: process.pid, exclusive: false });
    // As if the failed run's process had ended: its lock, of this machine, names a pid nothing runs.
    await f.vault.deleteLock(left!.id);
    const abandoned = await f.vault.writeLock({ ...left!.lock!, pid: 2 ** 30 });
    const store = new ObservedStore(f.store);

    const next = await backup(await Vault.open(store, PASSPHRASE), [src], { scratchDir: f.path('scratch') });

    expect(store.lists).toContain('data/');
    expect(next.bytesNew).toBeLessThanOrEqual(8 * MiB - storedAtAbort + 64 * 1024);
    expect(await lockIds()).not.toContain(abandoned);
    expect(await lockIds()).toEqual([]);
  });

  it('is not left by a run that ends before staging any pack', async () => {
    const src = await source(4, 40);
    const controller = new AbortController();
    const e = await backup(f.vault, [src], {
      scratchDir: f.path('scratch'),
      signal: controller.signal,
      onProgress: (p) => {
        if (p.phase === 'backup' && !controller.signal.aborted) controller.abort(); // after the first file: no pack is full yet
      },
    }).then(() => undefined, (err: unknown) => err);
    expect(e).toMatchObject({ code: 'VP_ABORTED' });
    expect(await lockIds()).toEqual([]);
  });
});

describe('locks found by a backup', () => {
  it('removes only the abandoned ones: this machine\'s of ended processes, and any shared lock over 24 hours old', async () => {
    const src = await source(1, 50);
    const now = Date.now();
    const at = (ms: number): string => new Date(now - ms).toISOString();
    const deadHere = await f.vault.writeLock({ time: at(1000), hostname: hostname(), pid: 2 ** 30, exclusive: false });
    const liveHere = await f.vault.writeLock({ time: at(1000), hostname: hostname(), pid: process.pid, exclusive: false });
    const freshElsewhere = await f.vault.writeLock({ time: at(LOCK_ABANDONED_AFTER_MS / 2), hostname: 'elsewhere', pid: 2 ** 30, exclusive: false });
    const oldElsewhere = await f.vault.writeLock({ time: at(LOCK_ABANDONED_AFTER_MS + 60_000), hostname: 'elsewhere', pid: 7, exclusive: false });
    const oldExclusive = await f.vault.writeLock({ time: at(10 * LOCK_ABANDONED_AFTER_MS), hostname: 'elsewhere', pid: 7, exclusive: true });
    await f.store.put(`locks/${'ee'.repeat(32)}`, Buffer.from('not a sealed object'));

    await backup(f.vault, [src], { scratchDir: f.path('scratch') });

    expect(await lockIds()).toEqual([liveHere, freshElsewhere, oldExclusive, 'ee'.repeat(32)].sort());
    expect(await lockIds()).not.toContain(deadHere);
    expect(await lockIds()).not.toContain(oldElsewhere);
  });
});
