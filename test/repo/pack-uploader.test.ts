// The pack uploader appends sealed blobs to a pending file as they come, so a pack in the making holds no blob in
// memory, and copies them into the pack in a random order once it is full. The packs it stores are the format's:
// named by their SHA-256, each blob where the index says.
import { createHash } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PackUploader } from '../../src/repo/pack-uploader.js';
import { ScratchCache } from '../../src/stage/scratch-cache.js';
import { Vault } from '../../src/repo/vault.js';
import { ObjectType } from '../../src/crypto/object-type.js';
import { type SealedObject, openBlob, sealBlob } from '../../src/crypto/envelope.js';
import type { PutOptions, Body } from '../../src/transfer/store.js';
import { PassThroughStore } from '../support/pass-through-store.js';
import { seededBytes } from '../support/seeded.js';
import { PASSPHRASE, type VaultFixture, makeVaultWithScratch } from '../support/vaults.js';

const KiB = 1024;
const MiB = 1024 * KiB;

let f: VaultFixture;
let scratch: ScratchCache;
beforeEach(async () => {
  const made = await makeVaultWithScratch();
  [f, scratch] = [made, made.scratch];
});
afterEach(() => f.cleanup());

/** Files in this run's scratch folder besides its marker. */
async function staged(): Promise<string[]> {
  return (await readdir(scratch.dir)).filter((n) => n !== 'pid');
}

function blob(vault: Vault, length: number, seed: number, type: typeof ObjectType.data | typeof ObjectType.tree = ObjectType.data): { id: Buffer; sealed: SealedObject; plain: Buffer } {
  const plain = seededBytes(length, seed);
  const id = vault.ids.id([plain]);
  return { id, sealed: sealBlob(vault.keys, type, id, [plain]), plain };
}

describe('the pack uploader', () => {
  it('stores blobs in a random order, in packs named by their SHA-256, each blob where the index says', async () => {
    const uploader = new PackUploader(f.vault, scratch, { targetPackSize: 256 * KiB });
    const blobs = Array.from({ length: 300 }, (_, i) => blob(f.vault, 1000 + i, i));
    for (const b of blobs) await uploader.add(ObjectType.data, b.id, b.sealed, b.plain.length);
    await uploader.finish();
    expect(uploader.packs).toBeGreaterThan(1);

    const index = await f.vault.loadIndex();
    const packs = new Map<string, { at: number; added: number }[]>();
    for (const [i, b] of blobs.entries()) {
      const at = index.get(b.id)!;
      const pack = await f.store.get(`data/${at.packId.toString('hex').slice(0, 2)}/${at.packId.toString('hex')}`);
      expect(createHash('sha256').update(pack).digest().equals(at.packId)).toBe(true);
      expect(openBlob(f.vault.keys, ObjectType.data, b.id, pack.subarray(at.offset, at.offset + at.length)).equals(b.plain)).toBe(true);
      const list = packs.get(at.packId.toString('hex')) ?? [];
      list.push({ at: at.offset, added: i });
      packs.set(at.packId.toString('hex'), list);
    }
    // In file order, the blobs of a pack are not in the order they were added (for 300 blobs in a few packs, a
    // shuffle that leaves every pack in order has a chance far below one in 10^100).
    let inOrder = 0;
    for (const list of packs.values()) {
      const added = list.sort((a, b) => a.at - b.at).map((e) => e.added);
      if (added.every((n, i) => i === 0 || n > added[i - 1]!)) inOrder++;
    }
    expect(inOrder).toBeLessThan(packs.size);
    expect(await staged()).toEqual([]);
    expect(scratch.used).toBe(0);
  });

  it('hands sealed bytes back once appended: a pack being filled holds at most two appends of them', async () => {
    const recycled: SealedObject[] = [];
    const uploader = new PackUploader(f.vault, scratch, { targetPackSize: 48 * MiB, recycle: (s) => recycled.push(s) });
    let added = 0;
    let most = 0;
    for (let i = 0; i < 40; i++) {
      const b = blob(f.vault, 512 * KiB - 100, i);
      await uploader.add(ObjectType.data, b.id, b.sealed, b.plain.length);
      added += b.sealed.length;
      most = Math.max(most, added - recycled.reduce((n, s) => n + s.length, 0));
    }
    // 20 MiB added to one pack still open; what was not handed back is what the next appends will write.
    expect(uploader.packs).toBe(0);
    expect(recycled.length).toBeGreaterThan(30);
    expect(most).toBeLessThanOrEqual(2 * MiB + 512 * KiB);
    await uploader.finish();
    expect(recycled.length).toBe(40);
    expect(uploader.packs).toBe(1);
  });

  it('keeps the scratch cache within its capacity while each pack is copied beside its pending file', async () => {
    await scratch.close();
    // Room for one pack of up to 1 MiB + one blob, twice: the pending file and the pack it is copied into.
    scratch = await ScratchCache.open(f.path('scratch'), { capacity: 2 * (MiB + 300 * KiB) });
    const uploader = new PackUploader(f.vault, scratch, { targetPackSize: MiB });
    const blobs = Array.from({ length: 60 }, (_, i) => blob(f.vault, 100 * KiB + 7 * i, 1000 + i));
    await Promise.all(blobs.map((b) => uploader.add(ObjectType.data, b.id, b.sealed, b.plain.length)));
    await uploader.finish();
    expect(uploader.packs).toBeGreaterThanOrEqual(6);
    expect(scratch.highWaterMark).toBeGreaterThan(MiB);
    expect(scratch.highWaterMark).toBeLessThanOrEqual(scratch.capacity);
    const index = await f.vault.loadIndex();
    expect(blobs.every((b) => index.has(b.id))).toBe(true);
    expect(await staged()).toEqual([]);
  });

  it('after a failed upload, fails the next add, and settle() leaves no pending file and no space held', async () => {
    class FailingStore extends PassThroughStore {
      override put(name: string, body: Body, options?: PutOptions): Promise<void> {
        return name.startsWith('data/') ? Promise.reject(new Error('the store refused the pack')) : super.put(name, body, options);
      }
    }
    const vault = await Vault.open(new FailingStore(f.store), PASSPHRASE);
    // Blobs large enough that the pack open when the failure surfaces has appended some already.
    const uploader = new PackUploader(vault, scratch, { targetPackSize: 3 * MiB });
    await expect(
      (async () => {
        for (let i = 0; i < 100; i++) {
          const b = blob(vault, 600 * KiB, i);
          await uploader.add(ObjectType.data, b.id, b.sealed, b.plain.length);
        }
      })(),
    ).rejects.toThrow('the store refused the pack');
    await uploader.settle();
    expect(await staged()).toEqual([]);
    expect(scratch.used).toBe(0);
  });

  it('stores a blob larger than a pack as a pack of its own, even in a cache too small to stage it twice', async () => {
    await scratch.close();
    scratch = await ScratchCache.open(f.path('scratch'), { capacity: MiB });
    const uploader = new PackUploader(f.vault, scratch, { targetPackSize: 256 * KiB });
    const small = blob(f.vault, 100 * KiB, 1);
    const tree = blob(f.vault, 600 * KiB, 2, ObjectType.tree); // a huge folder's listing: more than half the cache
    await uploader.add(ObjectType.data, small.id, small.sealed, small.plain.length);
    await uploader.add(ObjectType.tree, tree.id, tree.sealed, tree.plain.length);
    await uploader.finish();
    expect(uploader.packs).toBe(2);
    const index = await f.vault.loadIndex();
    const at = index.get(tree.id)!;
    const pack = await f.store.get(`data/${at.packId.toString('hex').slice(0, 2)}/${at.packId.toString('hex')}`);
    expect(openBlob(f.vault.keys, ObjectType.tree, tree.id, pack.subarray(at.offset, at.offset + at.length)).equals(tree.plain)).toBe(true);
    expect(index.get(small.id)?.packId.equals(at.packId)).toBe(false);
  });

  it('uploads at most maxInFlight packs at once however many add at once', async () => {
    let uploading = 0;
    let most = 0;
    class SlowStore extends PassThroughStore {
      override async put(name: string, body: Body, options?: PutOptions): Promise<void> {
        if (!name.startsWith('data/')) return super.put(name, body, options);
        most = Math.max(most, ++uploading);
        await new Promise((r) => setTimeout(r, 20));
        try {
          await super.put(name, body, options);
        } finally {
          uploading--;
        }
      }
    }
    const vault = await Vault.open(new SlowStore(f.store), PASSPHRASE);
    const uploader = new PackUploader(vault, scratch, { targetPackSize: 512 * KiB, maxInFlight: 2 });
    const blobs = Array.from({ length: 120 }, (_, i) => blob(vault, 60 * KiB, 3000 + i));
    await Promise.all(blobs.map((b) => uploader.add(ObjectType.data, b.id, b.sealed, b.plain.length)));
    await uploader.finish();
    expect(uploader.packs).toBeGreaterThanOrEqual(12);
    expect(most).toBe(2);
  });

  it('removes the pending file of a pack once it is copied, before its upload', async () => {
    let mostPending = 0;
    class SlowStore extends PassThroughStore {
      override async put(name: string, body: Body, options?: PutOptions): Promise<void> {
        if (name.startsWith('data/')) {
          mostPending = Math.max(mostPending, (await staged()).filter((n) => n.startsWith('pending-')).length);
          await new Promise((r) => setTimeout(r, 20));
        }
        return super.put(name, body, options);
      }
    }
    const vault = await Vault.open(new SlowStore(f.store), PASSPHRASE);
    const uploader = new PackUploader(vault, scratch, { targetPackSize: 512 * KiB, maxInFlight: 2 });
    for (let i = 0; i < 60; i++) {
      const b = blob(vault, 60 * KiB, 5000 + i);
      await uploader.add(ObjectType.data, b.id, b.sealed, b.plain.length);
    }
    await uploader.finish();
    // During an upload: the pack being filled, and at most one other still being copied; never the uploading ones.
    expect(mostPending).toBeLessThanOrEqual(2);
  });

  it('refuses any use after settle()', async () => {
    const uploader = new PackUploader(f.vault, scratch);
    const b = blob(f.vault, 1000, 9);
    await uploader.settle();
    await expect(uploader.add(ObjectType.data, b.id, b.sealed, b.plain.length)).rejects.toThrow(/after settle/);
    expect(await staged()).toEqual([]);
  });
});
