// The addon's blob opener must accept exactly what the portable path (Vault.openBlobAt) accepts, give the same
// plaintext, and refuse everything else with the same error code and message. Its blob writer must do the same and
// put the plaintext, and nothing else, at the asked position of the target file.
import { closeSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { open, rename, writeFile } from 'node:fs/promises';
import { gcm } from '@noble/ciphers/aes.js';
import { expand } from '@noble/hashes/hkdf.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { concatBytes, utf8ToBytes } from '@noble/hashes/utils.js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { nativeBlobOpener, nativeBlobWriter, openDirect } from '../../src/native/open.js';
import { rawFunction } from './raw.js';
import { aadPrefix, objectKeyLabel } from '../../src/crypto/envelope.js';
import { ObjectType } from '../../src/crypto/object-type.js';
import type { BlobLocation } from '../../src/repo/vault.js';
import { refChunkId, refSealBlob } from '../support/reference-envelope.js';
import { seededBytes } from '../support/seeded.js';
import { type VaultFixture, makeVault } from '../support/vaults.js';

const linux = process.platform === 'linux';

let f: VaultFixture;
beforeEach(async () => {
  f = await makeVault();
});
afterEach(() => f.cleanup());

/** A pack-like file: `lead` bytes of padding, then the blobs one after another; their locations. */
async function packFile(path: string, blobs: readonly { sealed: Uint8Array; type: number; codec?: number }[], lead = 777): Promise<BlobLocation[]> {
  const packId = Buffer.from(seededBytes(32, 99));
  const out: BlobLocation[] = [];
  let offset = lead;
  for (const b of blobs) {
    out.push({ packId, type: b.type as BlobLocation['type'], codec: b.codec ?? 0, offset, length: b.sealed.length, plaintextLength: b.sealed.length - 48 });
    offset += b.sealed.length;
  }
  await writeFile(path, Buffer.concat([seededBytes(lead, 1), ...blobs.map((b) => b.sealed)]));
  return out;
}

/** A blob sealed as the format says but under `codec`, written here from FORMAT.md (the engine never seals one). */
function sealWithCodec(sealKey: Uint8Array, type: number, codec: number, id: Uint8Array, plaintext: Uint8Array, salt: Uint8Array): Uint8Array {
  const key = expand(sha256, sealKey, concatBytes(utf8ToBytes('vaultpath/v1/object-key'), salt), 32);
  return concatBytes(salt, gcm(key, new Uint8Array(12), concatBytes(Uint8Array.of(1, type, codec, 0), salt, id)).encrypt(plaintext));
}

/** What the portable path does with the bytes read at `at`: the plaintext, or the error it throws. */
function portable(fd: number, at: BlobLocation, id: Uint8Array): Buffer | { code: string; message: string } {
  const sealed = Buffer.alloc(at.length);
  const n = readSync(fd, sealed, 0, at.length, at.offset);
  try {
    return f.vault.openBlobAt(at, id, sealed.subarray(0, n));
  } catch (e) {
    return { code: (e as { code: string }).code, message: (e as Error).message };
  }
}

describe('the native blob opener', () => {
  it.runIf(linux)('is built and loads on Linux (the restore opens its blobs through it)', () => {
    expect(nativeBlobOpener(f.vault.keys), 'the native addon did not build or load: see the output of scripts/build-native.mjs').not.toBeNull();
  });

  describe.runIf(linux)('on Linux', () => {
    it('opens blobs sealed by the independent reference implementation, at any offset, of any size', async () => {
      const open = nativeBlobOpener(f.vault.keys)!;
      const plain = [0, 1, 4096, 300_000, 8 * 1024 * 1024 + 3].map((n, i) => seededBytes(n, 40 + i));
      const types = [ObjectType.data, ObjectType.tree, ObjectType.data, ObjectType.tree, ObjectType.data];
      const ids = plain.map((p) => refChunkId(f.vault.keys.chunkIdKey, p));
      const blobs = plain.map((p, i) => ({ sealed: refSealBlob(f.vault.keys.sealKey, types[i]!, ids[i]!, p, seededBytes(32, 60 + i)), type: types[i]! }));
      const path = f.path('pack');
      const at = await packFile(path, blobs);
      const fd = openSync(path, 'r');
      try {
        const opened = await Promise.all(at.map((a, i) => open(fd, a, ids[i]!)));
        opened.forEach((o, i) => expect(o.equals(plain[i]!), `blob ${i} of ${plain[i]!.length} bytes`).toBe(true));
      } finally {
        closeSync(fd);
      }
    });

    it('refuses what the portable path refuses, with the same code and message', async () => {
      const open = nativeBlobOpener(f.vault.keys)!;
      const k = f.vault.keys;
      const data = seededBytes(10_000, 3);
      const id = refChunkId(k.chunkIdKey, data);
      const good = refSealBlob(k.sealKey, ObjectType.data, id, data, seededBytes(32, 4));
      const flip = (at: number): Uint8Array => {
        const b = Uint8Array.from(good);
        b[at]! ^= 0x01;
        return b;
      };
      const otherId = Buffer.from(seededBytes(32, 5));
      const cases: { name: string; sealed: Uint8Array; type?: number; codec?: number; id?: Uint8Array; code: string }[] = [
        { name: 'a flipped bit in the salt', sealed: flip(3), code: 'VP_AUTH_FAILED' },
        { name: 'a flipped bit in the ciphertext', sealed: flip(5000), code: 'VP_AUTH_FAILED' },
        { name: 'a flipped bit in the tag', sealed: flip(good.length - 1), code: 'VP_AUTH_FAILED' },
        { name: 'another type claimed', sealed: good, type: ObjectType.tree, code: 'VP_AUTH_FAILED' },
        { name: 'another codec claimed', sealed: good, codec: 1, code: 'VP_AUTH_FAILED' },
        { name: 'asked under another id', sealed: good, id: otherId, code: 'VP_AUTH_FAILED' },
        { name: 'sealed under an id that is not its hash', sealed: refSealBlob(k.sealKey, ObjectType.data, otherId, data, seededBytes(32, 6)), id: otherId, code: 'VP_ID_MISMATCH' },
        { name: 'authentic, under a codec this version does not know', sealed: sealWithCodec(k.sealKey, ObjectType.data, 1, id, data, seededBytes(32, 7)), codec: 1, code: 'VP_UNKNOWN_CODEC' },
      ];
      const path = f.path('pack');
      // The last blob is cut short: the file ends 100 bytes into it.
      const cut = refSealBlob(k.sealKey, ObjectType.data, id, data, seededBytes(32, 8));
      const at = await packFile(path, [...cases.map((c) => ({ sealed: c.sealed, type: c.type ?? ObjectType.data, codec: c.codec })), { sealed: cut, type: ObjectType.data }]);
      await writeFile(path, readFileSync(path).subarray(0, at.at(-1)!.offset + 100));
      const fd = openSync(path, 'r');
      try {
        for (const [i, c] of [...cases, { name: 'the file ends inside the blob', code: 'VP_MALFORMED_OBJECT', id: undefined }].entries()) {
          const askId = c.id ?? id;
          const expected = portable(fd, at[i]!, askId);
          expect(expected, c.name).toMatchObject({ code: c.code });
          await expect(open(fd, at[i]!, askId), c.name).rejects.toMatchObject(expected);
        }
      } finally {
        closeSync(fd);
      }
    });

    it('refuses an impossible place in a pack for that blob alone, opening the others asked for with it', async () => {
      const open = nativeBlobOpener(f.vault.keys)!;
      const data = seededBytes(1000, 12);
      const id = refChunkId(f.vault.keys.chunkIdKey, data);
      const path = f.path('pack');
      const [at] = await packFile(path, [{ sealed: refSealBlob(f.vault.keys.sealKey, ObjectType.data, id, data, seededBytes(32, 13)), type: ObjectType.data }]);
      const fd = openSync(path, 'r');
      try {
        const outcomes = await Promise.allSettled([open(fd, { ...at!, length: 47 }, id), open(fd, { ...at!, offset: 0.5 }, id), open(fd, at!, id)]);
        expect(outcomes[0]).toMatchObject({ status: 'rejected', reason: { code: 'VP_MALFORMED_OBJECT' } });
        expect(outcomes[1]).toMatchObject({ status: 'rejected', reason: { code: 'VP_MALFORMED_OBJECT' } });
        expect(outcomes[2]).toEqual({ status: 'fulfilled', value: data });
      } finally {
        closeSync(fd);
      }
    });

    it('reports a failed read by its errno, as a store read error', async () => {
      const open = nativeBlobOpener(f.vault.keys)!;
      const fd = openSync(f.dir, 'r'); // a folder: pread fails with EISDIR
      try {
        const at: BlobLocation = { packId: Buffer.alloc(32), type: ObjectType.data, codec: 0, offset: 0, length: 100, plaintextLength: 52 };
        await expect(open(fd, at, Buffer.alloc(32))).rejects.toMatchObject({ code: 'VP_STORE_IO', message: expect.stringContaining('EISDIR') });
      } finally {
        closeSync(fd);
      }
    });

    it('throws before queueing anything when an argument is of the wrong type or length', () => {
      const raw = rawFunction('openBlobs');
      const k = f.vault.keys;
      const [L, P] = [objectKeyLabel(), aadPrefix(ObjectType.data)];
      const spec = (fd: number, offset: number, length: number, check = 1): Float64Array => Float64Array.of(fd, offset, length, check);
      const usage = /openBlobs\(specs/;
      expect(() => raw(spec(-1, 0, 100), Buffer.alloc(32), P, k.sealKey, k.chunkIdKey, L)).toThrow(usage);
      expect(() => raw(spec(0, 0, 47), Buffer.alloc(32), P, k.sealKey, k.chunkIdKey, L)).toThrow(usage);
      expect(() => raw(spec(0, 0.5, 100), Buffer.alloc(32), P, k.sealKey, k.chunkIdKey, L)).toThrow(usage);
      expect(() => raw(spec(0, 0, 100, 2), Buffer.alloc(32), P, k.sealKey, k.chunkIdKey, L)).toThrow(usage); // check: 1 or 0
      expect(() => raw(spec(0, 0, 100), Buffer.alloc(31), P, k.sealKey, k.chunkIdKey, L)).toThrow(usage);
      expect(() => raw(spec(0, 0, 100), Buffer.alloc(32), P, k.sealKey.subarray(1), k.chunkIdKey, L)).toThrow(usage);
      expect(() => raw(new Float64Array(5), Buffer.alloc(32), P, k.sealKey, k.chunkIdKey, L)).toThrow(usage);
      expect(() => raw(new Float64Array(0), Buffer.alloc(0), P, k.sealKey, k.chunkIdKey, L)).toThrow(usage);
      expect(() => raw(spec(0, 0, 100), Buffer.alloc(32), Buffer.alloc(17), k.sealKey, k.chunkIdKey, L)).toThrow(usage); // 16 bytes at most
      expect(() => raw(Float64Array.of(...spec(0, 0, 100), ...spec(0, 0, 100)), Buffer.alloc(64), Buffer.alloc(5), k.sealKey, k.chunkIdKey, L)).toThrow(usage); // one per blob
      expect(() => raw(spec(0, 0, 100), Buffer.alloc(32), P, k.sealKey, k.chunkIdKey, Buffer.alloc(0))).toThrow(usage); // a label of 1 to 64 bytes
    });
  });
});

describe.runIf(linux)('the native blob writer', () => {
  /** Blobs of these sizes sealed by the reference implementation into one pack file; their plaintexts, ids, places. */
  async function referencePack(sizes: readonly number[], seed: number): Promise<{ plain: Uint8Array[]; ids: Uint8Array[]; at: BlobLocation[]; path: string }> {
    const k = f.vault.keys;
    const plain = sizes.map((n, i) => seededBytes(n, seed + i));
    const ids = plain.map((p) => refChunkId(k.chunkIdKey, p));
    const blobs = plain.map((p, i) => ({ sealed: refSealBlob(k.sealKey, ObjectType.data, ids[i]!, p, seededBytes(32, seed + 50 + i)), type: ObjectType.data }));
    const path = f.path(`pack-${seed}`);
    return { plain, ids, at: await packFile(path, blobs), path };
  }

  it('writes each blob\'s plaintext at its position, of any size, several at once, into one file', async () => {
    const write = nativeBlobWriter(f.vault.keys)!;
    // 9 MiB is above what a pool thread keeps between jobs: its buffer is freed, and the next blob gets a new one.
    const { plain, ids, at, path } = await referencePack([4096, 1, 300_000, 9 * 1024 * 1024 + 5, 70_000, 2 * 1024 * 1024], 200);
    const positions = plain.map((_, i) => plain.slice(0, i).reduce((sum, p) => sum + p.length, 0));
    const pack = openSync(path, 'r');
    const target = f.path('restored');
    const out = openSync(target, 'w');
    try {
      await Promise.all(at.map((a, i) => write(pack, a, ids[i]!, { fd: out, direct: -1 }, positions[i]!)));
    } finally {
      closeSync(pack);
      closeSync(out);
    }
    expect(readFileSync(target).equals(Buffer.concat(plain))).toBe(true);
  });

  it.runIf(linux)('writes the same bytes with a direct descriptor: whole pages through it, partial ones beside it', async () => {
    const write = nativeBlobWriter(f.vault.keys)!;
    // Blobs that start and end inside a page, inside one page, exactly on page bounds, and above a thread's buffer.
    const sizes = [5000, 100, 3092, 8192, 3 * 4096 + 17, 9 * 1024 * 1024 + 3, 12_288, 1];
    const { plain, ids, at, path } = await referencePack(sizes, 300);
    const positions = plain.map((_, i) => plain.slice(0, i).reduce((sum, p) => sum + p.length, 0));
    const pack = openSync(path, 'r');
    const target = f.path('restored-direct');
    const out = await open(target, 'w');
    const direct = await openDirect(out.fd);
    try {
      // Where the file system refuses O_DIRECT (tmpfs on older kernels) the writer must do without it.
      await Promise.all(at.map((a, i) => write(pack, a, ids[i]!, { fd: out.fd, direct: direct?.fd ?? -1 }, positions[i]!)));
    } finally {
      closeSync(pack);
      await direct?.close();
      await out.close();
    }
    expect(positions[3]! % 4096).toBe(0); // the page-aligned blob is where it should be
    expect(readFileSync(target).equals(Buffer.concat(plain))).toBe(true);
  });

  it.runIf(linux)('opens the same file again for direct I/O, not what its name points to', async () => {
    const target = f.path('named');
    const file = await open(target, 'w');
    const direct = await openDirect(file.fd);
    try {
      await rename(target, f.path('renamed'));
      await writeFile(target, 'another file under the old name');
      if (!direct) return; // no O_DIRECT on this file system: nothing was opened
      expect((await direct.stat()).ino).toBe((await file.stat()).ino);
      expect((await direct.stat()).ino).not.toBe(statSync(target).ino);
    } finally {
      await direct?.close();
      await file.close();
    }
  });

  it('refuses what the opener refuses, with the same code and message, and writes nothing for it', async () => {
    const write = nativeBlobWriter(f.vault.keys)!;
    const open = nativeBlobOpener(f.vault.keys)!;
    const { plain, ids, at, path } = await referencePack([50_000, 50_000], 300);
    const damaged = readFileSync(path);
    damaged[at[0]!.offset + 1000]! ^= 0x40; // inside the first blob's ciphertext
    await writeFile(path, damaged);
    const pack = openSync(path, 'r');
    const target = f.path('restored');
    const out = openSync(target, 'w');
    const target0 = { fd: out, direct: -1 };
    try {
      const expected = await open(pack, at[0]!, ids[0]!).then(
        () => expect.fail('the damaged blob opened'),
        (e: { code: string; message: string }) => ({ code: e.code, message: e.message }),
      );
      expect(expected.code).toBe('VP_AUTH_FAILED');
      await expect(write(pack, at[0]!, ids[0]!, target0, 0)).rejects.toMatchObject(expected);
      await expect(write(pack, at[1]!, ids[0]!, target0, 0)).rejects.toMatchObject({ code: 'VP_AUTH_FAILED' }); // asked under another id
      await expect(write(pack, { ...at[1]!, length: 47 }, ids[1]!, target0, 0)).rejects.toMatchObject({ code: 'VP_MALFORMED_OBJECT' });
      expect(readFileSync(target).length).toBe(0);
      await write(pack, at[1]!, ids[1]!, target0, 10);
    } finally {
      closeSync(pack);
      closeSync(out);
    }
    expect(readFileSync(target).equals(Buffer.concat([Buffer.alloc(10), plain[1]!]))).toBe(true);
  });

  it('reports a failed write by its errno name, as Node\'s file calls do', async () => {
    const write = nativeBlobWriter(f.vault.keys)!;
    const { ids, at, path } = await referencePack([1000], 400);
    const pack = openSync(path, 'r');
    const readOnly = openSync(path, 'r');
    try {
      await expect(write(pack, at[0]!, ids[0]!, { fd: readOnly, direct: -1 }, 0)).rejects.toMatchObject({ code: 'EBADF', message: expect.stringContaining('EBADF') });
    } finally {
      closeSync(pack);
      closeSync(readOnly);
    }
  });

  it('throws before queueing anything when a target is not a descriptor, a direct descriptor or -1, and an offset', () => {
    const raw = rawFunction('openBlobsInto');
    const k = f.vault.keys;
    const spec = Float64Array.of(0, 0, 100, 1);
    const [L, P] = [objectKeyLabel(), aadPrefix(ObjectType.data)];
    const usage = /openBlobsInto\(specs/;
    expect(() => raw(spec, Buffer.alloc(32), P, k.sealKey, k.chunkIdKey, L, Float64Array.of(-1, -1, 0))).toThrow(usage);
    expect(() => raw(spec, Buffer.alloc(32), P, k.sealKey, k.chunkIdKey, L, Float64Array.of(1, -2, 0))).toThrow(usage);
    expect(() => raw(spec, Buffer.alloc(32), P, k.sealKey, k.chunkIdKey, L, Float64Array.of(1, 2.5, 0))).toThrow(usage);
    expect(() => raw(spec, Buffer.alloc(32), P, k.sealKey, k.chunkIdKey, L, Float64Array.of(1, -1, 0.5))).toThrow(usage);
    expect(() => raw(spec, Buffer.alloc(32), P, k.sealKey, k.chunkIdKey, L, Float64Array.of(1, 0))).toThrow(usage);
    expect(() => raw(spec, Buffer.alloc(32), P, k.sealKey, k.chunkIdKey, L, Float64Array.of(1, -1, 0, 2))).toThrow(usage);
    expect(() => raw(spec, Buffer.alloc(31), P, k.sealKey, k.chunkIdKey, L, Float64Array.of(1, -1, 0))).toThrow(usage);
  });
});
