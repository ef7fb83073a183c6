import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Vault } from '../../src/repo/vault.js';
import { Folder, objectName } from '../../src/repo/layout.js';
import type { Snapshot } from '../../src/repo/tree.js';
import { LocalStore } from '../../src/transfer/local-store.js';
import type { Body, PutOptions } from '../../src/transfer/store.js';
import { TEST_KDF } from '../support/seeded.js';
import { PassThroughStore } from '../support/pass-through-store.js';
import { FailNthPutStore, RawErrorStore, RecordingStore } from '../support/damage-stores.js';
import { PASSPHRASE, type VaultFixture, damageObject, makeVault } from '../support/vaults.js';

let f: VaultFixture;
beforeEach(async () => {
  f = await makeVault();
});
afterEach(() => f.cleanup());

function snapshotAt(minute: number, path = '/data'): Snapshot {
  return {
    version: 1,
    time: new Date(Date.UTC(2026, 0, 1, 0, minute)).toISOString(),
    hostname: 'host',
    paths: [path],
    tree: '00'.repeat(32),
    parent: null,
    status: 'complete',
    warnings: 0,
    stats: { files: minute, dirs: 0, bytesRead: 0, bytesNew: 0, bytesStored: 0, skipped: 0 },
    program: 'vaultpath test',
  };
}

/** Every file below `dir` (relative paths), folders left out. */
async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) if (!e.isDirectory()) out.push(join(e.parentPath, e.name).slice(dir.length + 1));
  return out.sort();
}

describe('latest and prefixes with a damaged snapshot', () => {
  let ids: string[];
  beforeEach(async () => {
    ids = [];
    for (let n = 0; n < 3; n++) ids.push(await f.vault.writeSnapshot(snapshotAt(n)));
  });

  it('latest fails with VP_SNAPSHOT_DAMAGED naming the damaged newest snapshot, never an older one', async () => {
    const newest = ids[2]!;
    await damageObject(f, `snapshots/${newest}`, 40);
    const e = await f.vault.resolveSnapshot('latest').then(() => undefined, (err: unknown) => err);
    expect(e).toMatchObject({ code: 'VP_SNAPSHOT_DAMAGED', message: expect.stringContaining(newest) });
    await expect(f.vault.latestSnapshot()).rejects.toMatchObject({ code: 'VP_SNAPSHOT_DAMAGED' });
    await expect(f.vault.latestSnapshot({ paths: ['/data'] })).rejects.toMatchObject({ code: 'VP_SNAPSHOT_DAMAGED' });
  });

  it('a damaged snapshot of any age makes latest fail: its time is sealed inside it', async () => {
    await damageObject(f, `snapshots/${ids[0]}`, 40);
    await expect(f.vault.findSnapshot('latest')).rejects.toMatchObject({ code: 'VP_SNAPSHOT_DAMAGED', message: expect.stringContaining(ids[0]!) });
  });

  it('with skipDamaged takes the newest readable snapshot and names the ones passed over', async () => {
    await damageObject(f, `snapshots/${ids[2]}`, 40);
    const found = await f.vault.findSnapshot('latest', { skipDamaged: true });
    expect(found.id).toBe(ids[1]);
    expect(found.skipped).toEqual([ids[2]]);
    expect(await f.vault.latestSnapshot({ skipDamaged: true })).toMatchObject({ id: ids[1], skipped: [ids[2]] });
  });

  it('an id or prefix naming a damaged snapshot fails with VP_SNAPSHOT_DAMAGED, even with skipDamaged', async () => {
    const damaged = ids[1]!;
    await damageObject(f, `snapshots/${damaged}`, 40);
    for (const ref of [damaged, damaged.slice(0, 12)]) {
      await expect(f.vault.resolveSnapshot(ref)).rejects.toMatchObject({ code: 'VP_SNAPSHOT_DAMAGED', message: expect.stringContaining(damaged) });
      await expect(f.vault.findSnapshot(ref, { skipDamaged: true })).rejects.toMatchObject({ code: 'VP_SNAPSHOT_DAMAGED' });
    }
    expect(await f.vault.resolveSnapshot(ids[0]!.slice(0, 12))).toBe(ids[0]);
  });

  it('a listing with includeDamaged returns the damaged snapshot after the others, with its error', async () => {
    await damageObject(f, `snapshots/${ids[0]}`, 40);
    const all = await f.vault.listSnapshots({ includeDamaged: true });
    expect(all.map((s) => s.id)).toEqual([ids[1], ids[2], ids[0]]);
    expect(all[2]).toMatchObject({ id: ids[0], error: { code: 'VP_AUTH_FAILED' } });
    expect(all[2]!.snapshot).toBeUndefined();
  });
});

describe('a damaged index object', () => {
  it('is passed over by loadIndex and recorded by name; the other index objects still load', async () => {
    const { ObjectType } = await import('../../src/crypto/object-type.js');
    const entry = (n: number) => ({ id: Buffer.alloc(32, n), type: ObjectType.data, codec: 0, packId: Buffer.alloc(32, 0xaa), offset: 0, length: 100, plaintextLength: 52 });
    const good = await f.vault.writeIndex([entry(1)]);
    const bad = await f.vault.writeIndex([entry(2)]);
    const badName = objectName(Folder.index, bad);
    await damageObject(f, badName, 20);

    const index = await f.vault.loadIndex();

    expect(index.has(Buffer.alloc(32, 1))).toBe(true);
    expect(index.has(Buffer.alloc(32, 2))).toBe(false);
    expect(index.damaged.map((d) => d.object)).toEqual([badName]);
    expect(index.damaged[0]!.error.code).toBe('VP_AUTH_FAILED');
    expect(good).toBeDefined();
  });
});

describe('errors a store raises that are not VaultpathErrors', () => {
  const eio = () => Object.assign(new Error('EIO: i/o error, read'), { code: 'EIO', errno: -5 });

  it('reach the caller as VP_STORE_IO with the raw error as cause (get, list, and a decorator that throws)', async () => {
    const id = await f.vault.writeSnapshot(snapshotAt(1));
    await f.vault.writeIndex([]);
    const raw = await Vault.open(new RawErrorStore(f.store, 'snapshots/', eio), PASSPHRASE);
    const e = await raw.readSnapshot(id).then(() => undefined, (err: unknown) => err);
    expect(e).toMatchObject({ name: 'VaultpathError', code: 'VP_STORE_IO', cause: { code: 'EIO' } });
    // latest does not take a store failure for damage, nor pass over it.
    await expect(raw.resolveSnapshot('latest')).rejects.toMatchObject({ code: 'VP_STORE_IO' });

    const broken = await Vault.open(new RawErrorStore(f.store, 'index/', () => new TypeError('inner.get is not a function')), PASSPHRASE);
    // A store failure is not damage: the index load fails rather than go on without the object.
    await expect(broken.loadIndex()).rejects.toMatchObject({ code: 'VP_STORE_IO', cause: { name: 'TypeError' } });

    await f.vault.writeSnapshot(snapshotAt(2));
    const listing = await Vault.open(new RawErrorStore(f.store, 'snapshots/', eio, new Set(['list'])), PASSPHRASE);
    await expect(listing.listSnapshots()).rejects.toMatchObject({ code: 'VP_STORE_IO', cause: { code: 'EIO' } });
  });

  it('reach the caller typed from Vault.open and Vault.create too', async () => {
    await expect(Vault.open(new RawErrorStore(f.store, 'config', eio), PASSPHRASE)).rejects.toMatchObject({ code: 'VP_STORE_IO' });
    const dir = f.path('other');
    const store = await LocalStore.open(dir, { create: true, durable: false });
    await expect(Vault.create(new RawErrorStore(store, 'config', eio, new Set(['stat'])), PASSPHRASE, { kdf: TEST_KDF })).rejects.toMatchObject({
      code: 'VP_STORE_IO',
    });
  });
});

describe('a failed create leaves nothing behind; open writes nothing', () => {
  let dir: string;
  let store: LocalStore;
  beforeEach(async () => {
    dir = f.path('new-vault');
    store = await LocalStore.open(dir, { create: true, durable: false });
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('removes the key slot when the config cannot be written, whichever put fails', async () => {
    for (const n of [1, 2]) {
      const failing = new FailNthPutStore(store, n);
      await expect(Vault.create(failing, PASSPHRASE, { kdf: TEST_KDF })).rejects.toMatchObject({ code: 'VP_STORE_IO', cause: { code: 'EIO' } });
      expect(await filesUnder(dir)).toEqual([]);
    }
    // The folder is still usable: a create that does not fail succeeds there.
    await Vault.create(store, PASSPHRASE, { kdf: TEST_KDF });
  });

  it('removes the config too when it was written but its answer was lost, and not a config it did not write', async () => {
    class LostAnswerStore extends PassThroughStore {
      override async put(name: string, body: Body, options?: PutOptions): Promise<void> {
        await this.inner.put(name, body, options);
        if (name === 'config') throw Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
      }
    }
    await expect(Vault.create(new LostAnswerStore(store), PASSPHRASE, { kdf: TEST_KDF })).rejects.toMatchObject({ code: 'VP_STORE_IO' });
    expect(await filesUnder(dir)).toEqual([]);

    // Another process's vault appears between the existence check and the config's write: its config stays.
    const other = await Vault.create(store, 'another passphrase of enough length', { kdf: TEST_KDF });
    class RacingStore extends PassThroughStore {
      override stat() {
        return Promise.resolve(undefined);
      }
    }
    await expect(Vault.create(new RacingStore(store), PASSPHRASE, { kdf: TEST_KDF })).rejects.toMatchObject({ code: 'VP_VAULT_EXISTS' });
    const reopened = await Vault.open(store, 'another passphrase of enough length');
    expect(reopened.config.id).toBe(other.config.id);
    expect((await filesUnder(dir)).filter((p) => p.startsWith('keys'))).toHaveLength(1);
  });

  it('Vault.open of a folder that holds no vault writes nothing into it', async () => {
    const recording = new RecordingStore(store);
    await expect(Vault.open(recording, PASSPHRASE)).rejects.toMatchObject({ code: 'VP_NOT_A_VAULT' });
    expect(recording.writes).toEqual([]);
    expect(await filesUnder(dir)).toEqual([]);
  });
});
