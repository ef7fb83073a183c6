import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { MAX_PACK_SIZE, PACK_TRAILER_LENGTH, openPackHeader, packTail, readPackTrailer } from '../../src/repo/pack.js';
import { PackWriter } from '../support/pack-writer.js';
import { VaultKeys, generateMasterKey } from '../../src/crypto/keys.js';
import { ObjectType } from '../../src/crypto/object-type.js';
import { BLOB_OVERHEAD, openBlob } from '../../src/crypto/envelope.js';
import { ChunkIdentifier } from '../../src/crypto/chunk-id.js';

const keys = VaultKeys.fromMasterKey(generateMasterKey());
const ids = new ChunkIdentifier(keys);

async function writePack(blobs: Buffer[]): Promise<{ bytes: Buffer; info: Awaited<ReturnType<PackWriter['finish']>> }> {
  const out: Buffer[] = [];
  const w = new PackWriter(keys, (parts) => {
    out.push(...parts);
  });
  for (const [i, b] of blobs.entries()) await w.add(i % 2 ? ObjectType.tree : ObjectType.data, ids.id(b), b);
  const info = await w.finish();
  return { bytes: Buffer.concat(out), info };
}

describe('packs', () => {
  const blobs = [randomBytes(1000), randomBytes(0), randomBytes(70_000), Buffer.from('{"nodes":[]}')];

  it('are named by the SHA-256 of their bytes', async () => {
    const { bytes, info } = await writePack(blobs);
    expect(info.size).toBe(bytes.length);
    expect(info.id).toEqual(createHash('sha256').update(bytes).digest());
  });

  it('hold each blob at its recorded offset, opening to the original bytes', async () => {
    const { bytes, info } = await writePack(blobs);
    for (const [i, e] of info.entries.entries()) {
      expect(e.length).toBe(blobs[i]!.length + BLOB_OVERHEAD);
      expect(e.plaintextLength).toBe(blobs[i]!.length);
      expect(openBlob(keys, e.type, e.id, bytes.subarray(e.offset, e.offset + e.length))).toEqual(blobs[i]);
    }
  });

  it('end with a trailer and a sealed header that lists the same entries', async () => {
    const { bytes, info } = await writePack(blobs);
    const trailer = bytes.subarray(bytes.length - PACK_TRAILER_LENGTH);
    expect(trailer.subarray(4).toString('latin1')).toBe('VPK\u0001');
    const headerLength = readPackTrailer(trailer, bytes.length, 'pack');
    const header = bytes.subarray(bytes.length - PACK_TRAILER_LENGTH - headerLength, bytes.length - PACK_TRAILER_LENGTH);
    expect(openPackHeader(keys, header, bytes.length, 'pack')).toEqual(info.entries);
  });

  it('show no plaintext markers: blob boundaries are not visible in the bytes', async () => {
    const { bytes, info } = await writePack([Buffer.alloc(100), Buffer.alloc(100)]);
    // Each blob starts with its random salt; nothing at a boundary distinguishes it from random bytes.
    expect(bytes.subarray(info.entries[1]!.offset, info.entries[1]!.offset + 4)).not.toEqual(Buffer.of(1, 3, 0, 0));
    expect(bytes.includes(Buffer.alloc(16))).toBe(false);
  });

  it('refuse a truncated pack, a foreign trailer, and a future version', async () => {
    const { bytes } = await writePack(blobs);
    const t = Buffer.from(bytes.subarray(bytes.length - 8));
    expect(() => readPackTrailer(Buffer.alloc(8), bytes.length, 'p')).toThrow(expect.objectContaining({ code: 'VP_MALFORMED_OBJECT' }));
    expect(() => readPackTrailer(t, 100, 'p')).toThrow(expect.objectContaining({ code: 'VP_MALFORMED_OBJECT' }));
    t[7] = 2;
    expect(() => readPackTrailer(t, bytes.length, 'p')).toThrow(expect.objectContaining({ code: 'VP_UNSUPPORTED_VERSION' }));
  });

  it('refuse a header that does not tile the pack', async () => {
    const { bytes } = await writePack(blobs);
    const headerLength = readPackTrailer(bytes.subarray(bytes.length - 8), bytes.length, 'p');
    const header = bytes.subarray(bytes.length - 8 - headerLength, bytes.length - 8);
    expect(() => openPackHeader(keys, header, bytes.length + 1, 'p')).toThrow(expect.objectContaining({ code: 'VP_MALFORMED_OBJECT' }));
  });

  it('refuse to pack anything but data and trees, or past the largest pack', () => {
    const entry = { type: ObjectType.data, codec: 0, id: randomBytes(32), offset: 0, length: 100, plaintextLength: 100 - BLOB_OVERHEAD } as const;
    expect(() => packTail(keys, [entry])).not.toThrow();
    expect(() => packTail(keys, [{ ...entry, type: ObjectType.snapshot as never }])).toThrow(RangeError);
    expect(() => packTail(keys, [{ ...entry, offset: MAX_PACK_SIZE - 50 }])).toThrow(RangeError);
  });
});
