// A writing run's session: its lock lives from open to commit, survives a failed run only when a pack may be
// outside the index, and is removed again when opening fails; adoption indexes packs an earlier run left unlisted.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { WriteSession } from '../../src/repo/session.js';
import { Vault } from '../../src/repo/vault.js';
import { PackUploader } from '../../src/repo/pack-uploader.js';
import { ScratchCache } from '../../src/stage/scratch-cache.js';
import { ObjectType } from '../../src/crypto/object-type.js';
import { sealBlob } from '../../src/crypto/envelope.js';
import { systemClock } from '../../src/throttle/clock.js';
import type { Snapshot } from '../../src/repo/tree.js';
import type { Store } from '../../src/transfer/store.js';
import { seededBytes } from '../support/seeded.js';
import { PassThroughStore } from '../support/pass-through-store.js';
import { PASSPHRASE, type VaultFixture, makeVault } from '../support/vaults.js';

let f: VaultFixture;
beforeEach(async () => {
  f = await makeVault();
});
afterEach(() => f.cleanup());

const options = { write: true, started: Date.now(), clock: systemClock };

async function lockIds(): Promise<string[]> {
  return (await f.vault.readLocks()).map((l) => l.id);
}

function snapshot(): Snapshot {
  return { version: 1, time: new Date().toISOString(), hostname: 'h', paths: ['/x'], tree: '00'.repeat(32), parent: null, status: 'complete', warnings: 0, stats: { files: 0, dirs: 0, bytesRead: 0, bytesNew: 0, bytesStored: 0, skipped: 0 }, program: 'vaultpath' };
}

describe('WriteSession', () => {
  it('holds a lock from open until the snapshot is committed', async () => {
    const { session, alongside } = await WriteSession.open(f.vault, options, Promise.resolve(42));
    expect(alongside).toBe(42);
    expect(await lockIds()).toHaveLength(1);
    const id = await session.commit(snapshot());
    expect(await f.vault.snapshotIds()).toEqual([id]);
    expect(await lockIds()).toEqual([]);
  });

  it('keeps the lock of a failed run that staged a pack, and removes that of one that staged none', async () => {
    const kept = await WriteSession.open(f.vault, options, Promise.resolve(undefined));
    await kept.session.abandon(1);
    const [left] = await lockIds();
    expect(left).toBeDefined();
    const removed = await WriteSession.open(f.vault, options, Promise.resolve(undefined));
    await removed.session.abandon(0);
    expect(await lockIds()).toEqual([left]);
  });

  it('removes its lock again when what runs alongside fails, and throws that failure', async () => {
    const failure = new Error('parent unreadable');
    await expect(WriteSession.open(f.vault, options, Promise.reject(failure))).rejects.toBe(failure);
    expect(await lockIds()).toEqual([]);
  });

  it('takes no lock in a dry run', async () => {
    const { session } = await WriteSession.open(f.vault, { ...options, write: false }, Promise.resolve(undefined));
    expect(await lockIds()).toEqual([]);
    await session.release();
  });

  it('adopts a pack no index lists when an earlier run left its lock, and only then lists the packs', async () => {
    // An earlier run: its lock, and a pack stored whose index object never arrived.
    const earlier = await WriteSession.open(f.vault, options, Promise.resolve(undefined));
    const scratch = await ScratchCache.open(f.path('scratch'), { capacity: 64 * 1024 * 1024 });
    const noIndex = new (class extends PassThroughStore {
      override async put(name: string, body: Parameters<Store['put']>[1], o?: Parameters<Store['put']>[2]): Promise<void> {
        if (name.startsWith('index/')) return;
        return this.inner.put(name, body, o);
      }
    })(f.store);
    const vault = await Vault.open(noIndex, PASSPHRASE);
    const uploader = new PackUploader(vault, scratch);
    const plain = seededBytes(4000, 9);
    const id = f.vault.ids.id([plain]);
    await uploader.add(ObjectType.data, id, sealBlob(f.vault.keys, ObjectType.data, id, [plain]), plain.length);
    await uploader.finish();
    await scratch.close();
    await earlier.session.abandon(uploader.packsStaged);
    expect((await f.vault.loadIndex()).has(id)).toBe(false);

    const { session } = await WriteSession.open(f.vault, options, Promise.resolve(undefined));
    expect(session.index.has(id)).toBe(false);
    await session.adopt();
    expect(session.index.has(id)).toBe(true);
    expect((await f.vault.loadIndex()).has(id)).toBe(true);
    await session.release();
  });
});
