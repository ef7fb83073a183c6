import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SNAPSHOT_READS, Vault } from '../../src/repo/vault.js';
import type { Snapshot } from '../../src/repo/tree.js';
import type { GetOptions } from '../../src/transfer/store.js';
import { PassThroughStore } from '../support/pass-through-store.js';
import { PASSPHRASE, type VaultFixture, damageObject, makeVault } from '../support/vaults.js';

let f: VaultFixture;
beforeEach(async () => {
  f = await makeVault();
});
afterEach(() => f.cleanup());

/**
 * A Store decorator that counts the gets under way at once, each held back 1–8 ms by its name, so that reads finish
 * in another order than the listing's.
 */
class ConcurrencyStore extends PassThroughStore {
  running = 0;
  most = 0;
  /** Called as each get starts. */
  onGet: (name: string) => void = () => undefined;
  override async get(name: string, options?: GetOptions): Promise<Buffer> {
    this.onGet(name);
    this.running++;
    this.most = Math.max(this.most, this.running);
    try {
      await new Promise((r) => setTimeout(r, 1 + (name.charCodeAt(name.length - 1) % 8)));
      return await this.inner.get(name, options);
    } finally {
      this.running--;
    }
  }
}

function snapshotAt(time: string, n: number): Snapshot {
  return {
    version: 1,
    time,
    hostname: 'host',
    paths: [`/data/${n}`],
    tree: '00'.repeat(32),
    parent: null,
    status: 'complete',
    warnings: 0,
    stats: { files: n, dirs: 0, bytesRead: 0, bytesNew: 0, bytesStored: 0, skipped: 0 },
    program: 'vaultpath test',
  };
}

describe('listing snapshots', () => {
  it('reads several at once, never more than SNAPSHOT_READS, and returns them oldest first', async () => {
    const count = SNAPSHOT_READS * 3 + 5;
    const written: string[] = [];
    // Written newest first, so the order returned cannot come from the order written.
    for (let n = count - 1; n >= 0; n--) written[n] = await f.vault.writeSnapshot(snapshotAt(new Date(Date.UTC(2026, 0, 1, 0, n)).toISOString(), n));
    const store = new ConcurrencyStore(f.store);
    const vault = await Vault.open(store, PASSPHRASE);
    store.most = 0;

    const all = await vault.listSnapshots();

    expect(all.map((s) => s.snapshot.stats.files)).toEqual(Array.from({ length: count }, (_, n) => n));
    expect(all.map((s) => s.id)).toEqual(written);
    expect(store.most).toBeGreaterThan(1);
    expect(store.most).toBeLessThanOrEqual(SNAPSHOT_READS);
  });

  it('orders snapshots of the same time by id, and reports a damaged one by id while listing the rest', async () => {
    const time = '2026-01-01T00:00:00.000Z';
    const ids: string[] = [];
    for (let n = 0; n < 12; n++) ids.push(await f.vault.writeSnapshot(snapshotAt(time, n)));
    const damaged = ids[2]!;
    await damageObject(f, `snapshots/${damaged}`, 40);
    const vault = await Vault.open(new ConcurrencyStore(f.store), PASSPHRASE);
    const errors: string[] = [];

    const all = await vault.listSnapshots({ onError: (id) => errors.push(id) });

    expect(errors).toEqual([damaged]);
    expect(all.map((s) => s.id)).toEqual(ids.filter((id) => id !== damaged).sort());
  });

  it('stops with VP_ABORTED when its signal is aborted, after every read has settled', async () => {
    for (let n = 0; n < 20; n++) await f.vault.writeSnapshot(snapshotAt(new Date(Date.UTC(2026, 0, 1, 0, n)).toISOString(), n));
    const store = new ConcurrencyStore(f.store);
    const vault = await Vault.open(store, PASSPHRASE);
    const controller = new AbortController();
    // Aborted from inside the listing, when its third snapshot read starts: reads are under way, more are to come.
    let reads = 0;
    store.onGet = (name) => {
      if (name.startsWith('snapshots/') && ++reads === 3) controller.abort(new Error('stop'));
    };

    await expect(vault.listSnapshots({ signal: controller.signal })).rejects.toMatchObject({ code: 'VP_ABORTED' });
    expect(store.running).toBe(0);
  });
});
