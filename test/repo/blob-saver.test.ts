// The port between a backup and the vault: "save this blob". Dedup against the index and the run, storeDuplicate,
// the dry run, and the lifetime of sealed bytes handed to it, against a real vault and scratch cache.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BlobSaver } from '../../src/repo/blob-saver.js';
import { ScratchCache } from '../../src/stage/scratch-cache.js';
import { ObjectType } from '../../src/crypto/object-type.js';
import { openBlob } from '../../src/crypto/envelope.js';
import { type Kernels, nativeKernels, portableKernels } from '../../src/native/ports.js';
import type { ChunkSealer } from '../../src/repo/seal-pool.js';
import { seededBytes } from '../support/seeded.js';
import { type VaultFixture, makeVaultWithScratch } from '../support/vaults.js';

const KiB = 1024;
/** The factory needs no real keys to say whether the addon's chunk sealer is built here. */
const ADDON_SEALS_CHUNKS = nativeKernels.chunkSealer({ sealKey: new Uint8Array(32), chunkIdKey: new Uint8Array(32) } as never) !== null;

let f: VaultFixture;
let scratch: ScratchCache;
beforeEach(async () => {
  const made = await makeVaultWithScratch();
  [f, scratch] = [made, made.scratch];
});
afterEach(() => f.cleanup());

async function saverFor(options: { kernels?: Kernels; scratch?: ScratchCache | null; sealWorkers?: number | undefined } = {}): Promise<BlobSaver> {
  const index = await f.vault.loadIndex();
  return new BlobSaver(f.vault, index, {
    kernels: options.kernels ?? portableKernels,
    scratch: options.scratch === null ? undefined : (options.scratch ?? scratch),
    sealWorkers: 'sealWorkers' in options ? options.sealWorkers : 0,
    targetPackSize: 256 * KiB,
  });
}

describe('BlobSaver.saveBlob', () => {
  it('stores a blob once: saved again in the run, or in a later run whose index has it, it is known and stores nothing', async () => {
    const plain = seededBytes(5000, 1);
    const first = await saverFor();
    const a = await first.saveBlob(ObjectType.data, { parts: [plain], length: plain.length });
    const b = await first.saveBlob(ObjectType.data, { parts: [plain], length: plain.length });
    expect([a.known, b.known]).toEqual([false, true]);
    expect(a.id.equals(b.id)).toBe(true);
    await first.finish();
    await first.close();
    const index = await f.vault.loadIndex();
    expect(index.size).toBe(1);
    expect((await f.vault.readBlob(index, a.id, ObjectType.data)).equals(plain)).toBe(true);

    const second = await saverFor();
    expect(await second.saveBlob(ObjectType.data, { parts: [plain], length: plain.length })).toMatchObject({ known: true });
    await second.finish();
    await second.close();
    expect(second.bytesStored).toBe(0);
  });

  it('stores a blob the index has again when asked to (storeDuplicate), as a blob of its own pack', async () => {
    const plain = seededBytes(5000, 2);
    const first = await saverFor();
    await first.saveBlob(ObjectType.data, { parts: [plain], length: plain.length });
    await first.finish();
    await first.close();
    const second = await saverFor();
    const again = await second.saveBlob(ObjectType.data, { parts: [plain], length: plain.length }, { storeDuplicate: true });
    await second.finish();
    await second.close();
    expect(again.known).toBe(false);
    expect(second.bytesStored).toBeGreaterThan(plain.length);
    const index = await f.vault.loadIndex();
    const at = index.get(again.id)!;
    const sealed = await f.store.get(`data/${at.packId.toString('hex').slice(0, 2)}/${at.packId.toString('hex')}`, { offset: at.offset, length: at.length });
    expect(openBlob(f.vault.keys, ObjectType.data, again.id, sealed).equals(plain)).toBe(true);
  });

  it('in a dry run (no scratch cache) gives ids and stores nothing', async () => {
    const plain = seededBytes(3000, 3);
    const dry = await saverFor({ scratch: null });
    const r = await dry.saveBlob(ObjectType.tree, { parts: [plain], length: plain.length });
    await dry.finish();
    await dry.close();
    expect(r).toMatchObject({ known: false });
    expect(r.id.equals(f.vault.ids.id([plain]))).toBe(true);
    expect((await f.vault.loadIndex()).size).toBe(0);
  });

  it.runIf(ADDON_SEALS_CHUNKS)('owns the sealed bytes it is given: a large chunk sealed ahead that turns out known goes back to the buffer pool', async () => {
    // The addon's chunk sealer, observed at the pool it seals into.
    const sealedInto: Uint8Array[] = [];
    const released: Uint8Array[] = [];
    const kernels: Kernels = {
      ...portableKernels,
      chunkSealer: (keys, buffers) => {
        if (!buffers) return null;
        const release = buffers.release.bind(buffers);
        buffers.release = (view) => {
          released.push(view);
          release(view);
        };
        const acquire = buffers.acquire.bind(buffers);
        buffers.acquire = (length, shares) => {
          const b = acquire(length, shares);
          sealedInto.push(b);
          return b;
        };
        return nativeKernels.chunkSealer(keys, buffers) satisfies ChunkSealer | null;
      },
    };
    const saver = await saverFor({ kernels, sealWorkers: undefined });
    const plain = seededBytes(300 * KiB, 4);
    const a = await saver.saveBlob(ObjectType.data, { parts: [plain], length: plain.length }, { likelyNew: true });
    const b = await saver.saveBlob(ObjectType.data, { parts: [plain], length: plain.length }, { likelyNew: true });
    await saver.finish();
    expect([a.known, b.known]).toEqual([false, true]);
    expect(sealedInto).toHaveLength(2);
    // Each sealed buffer is given back exactly once: the first once written to the scratch cache, the second (the
    // duplicate) at once. The pool may hand the first's memory out again for the second, so they are counted.
    expect(released).toHaveLength(2);
    expect(released.map((v) => v.buffer)).toEqual(expect.arrayContaining([sealedInto[0]!.buffer, sealedInto[1]!.buffer]));
    await saver.close();
  });
});
