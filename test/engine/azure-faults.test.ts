/**
 * Backup and restore into Azure Blob Storage (Azurite) through a fault-injecting server: a stretch where 30% of
 * requests are answered 503 or 500, a committed write whose success is lost, a stalled answer, a reset connection
 * and a block damaged in transit. The backup completes, the restore is byte-identical, and a fault costs at
 * most one retry and a few blocks sent again.
 */
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backup } from '../../src/engine/backup.js';
import { restore } from '../../src/engine/restore.js';
import { Vault } from '../../src/repo/vault.js';
import { AzureStore } from '../../src/transfer/azure-store.js';
import { withRetry } from '../../src/transfer/retry.js';
import { TEST_KDF, seededBytes } from '../support/seeded.js';
import { tempDir } from '../support/trees.js';
import { PASSPHRASE, describeTree } from '../support/vaults.js';
import { azureBehindFaultServer, azureLocation, azurite } from '../support/azure.js';
import type { Fault } from '../support/fault-server.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const BLOCK = 64 * KiB;

/** A deterministic generator in [0, 1) (mulberry32). */
function seeded(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

let dir: string;
beforeAll(async () => {
  dir = await tempDir('vaultpath-azure-faults-');
  const src = join(dir, 'src');
  await mkdir(join(src, 'docs'), { recursive: true });
  await writeFile(join(src, 'big.bin'), seededBytes(3 * MiB + 5, 7));
  await writeFile(join(src, 'docs', 'a.txt'), seededBytes(40 * KiB, 8));
  for (let i = 0; i < 20; i++) await writeFile(join(src, 'docs', `small-${i}.bin`), seededBytes(1 + i * 997, 100 + i));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

/** Backs up `src` into a fresh container reached through a fault server; returns what happened. */
async function backupThrough(decide: (req: import('node:http').IncomingMessage, n: number) => Fault) {
  const t = await azureBehindFaultServer(decide, { blockSize: BLOCK, timeoutMs: 1000 });
  const { server, container, store: backend } = t;
  const store = withRetry(backend, { policy: { baseDelayMs: 20, maxDelayMs: 200, maxAttempts: 6 } });
  try {
    const vault = await Vault.create(store, PASSPHRASE, { kdf: TEST_KDF });
    const result = await backup(vault, [join(dir, 'src')], { scratchDir: join(dir, 'scratch') });
    return { result, container, requests: server.requests.length, bytesIn: server.bytesIn(), injected: { ...server.injected }, stats: { ...store.stats } };
  } finally {
    await t.close();
  }
}

describe('an Azure vault behind a faulty network', () => {
  it('completes the backup, restores byte-identical, and retries once per fault', async () => {
    // The same backup without faults gives the number of requests it needs.
    const clean = await backupThrough(() => 'pass');
    expect(clean.stats.retries).toBe(0);

    const random = seeded(42);
    let committed = false;
    let stalled = false;
    let reset = false;
    let corrupted = false;
    const faulty = await backupThrough((req, n) => {
      const url = req.url ?? '';
      if (n < 6) return 'pass'; // opening the vault and writing its keys
      if (!committed && url.includes('comp=blocklist')) return (committed = true), 'drop-after-commit';
      if (!corrupted && url.includes('comp=block&')) return (corrupted = true), 'corrupt';
      if (!stalled && req.method === 'PUT' && n > 20) return (stalled = true), 'stall';
      if (!reset && n > 30) return (reset = true), 'reset';
      if (n < 60 && random() < 0.3) return { status: random() < 0.5 ? 503 : 500 };
      return 'pass';
    });
    const injected = Object.values(faulty.injected).reduce((a, b) => a + b, 0);
    expect(faulty.injected).toMatchObject({ 'drop-after-commit': 1, corrupt: 1, stall: 1, reset: 1 });
    expect((faulty.injected['503'] ?? 0) + (faulty.injected['500'] ?? 0)).toBeGreaterThanOrEqual(5);
    expect(faulty.result.status).toBe('complete');
    // A fault costs at most one retry of the store call it hit (faults on blocks in flight together share one).
    expect(faulty.stats.retries).toBeGreaterThanOrEqual(1);
    expect(faulty.stats.retries).toBeLessThanOrEqual(injected);
    // A retried write sends again only the blocks not yet acknowledged: a few blocks per fault, not whole packs.
    expect(faulty.requests).toBeLessThanOrEqual(clean.requests + injected * 6);
    expect(faulty.bytesIn - clean.bytesIn).toBeLessThanOrEqual(injected * 6 * BLOCK);

    // Restore from the container directly (no faults) and compare.
    const store = await AzureStore.open(azureLocation(faulty.container), { credential: azurite().credential, proxy: false });
    try {
      const vault = await Vault.open(store, PASSPHRASE);
      const restored = await restore(vault, faulty.result.snapshot!, join(dir, 'target'), { recoveryFolder: join(dir, 'recovery') });
      expect(restored.errors).toEqual([]);
      expect(await describeTree(join(dir, 'target', 'src'))).toEqual(await describeTree(join(dir, 'src')));
    } finally {
      await store.close();
    }
    // For the README's figures.
    console.log(
      `azure faults: ${injected} injected (${JSON.stringify(faulty.injected)}), ${faulty.stats.retries} retries, ${faulty.stats.attempts} attempts, ` +
        `${faulty.bytesIn - clean.bytesIn} bytes sent again (${faulty.bytesIn} against ${clean.bytesIn}), ${faulty.requests} requests against ${clean.requests} without faults; restore identical`,
    );
  });
});
