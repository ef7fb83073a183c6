/**
 * node:crypto (the fast path) and @noble (an independent implementation written from FORMAT.md) must agree on
 * every byte: each seals, the other opens, in both directions, for sizes from 0 bytes to 16 MiB.
 */
import { randomBytes, randomInt } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { SUBKEY_LABELS, VaultKeys, generateMasterKey } from '../../src/crypto/keys.js';
import { ObjectType } from '../../src/crypto/object-type.js';
import { joinSealed, openBlob, openObject, seal, sealBlob, sealObject } from '../../src/crypto/envelope.js';
import { ChunkIdentifier } from '../../src/crypto/chunk-id.js';
import { refChunkId, refOpenBlob, refOpenObject, refSealBlob, refSealObject, refSubkey } from '../support/reference-envelope.js';

const MiB = 1024 * 1024;
// Edge sizes around the AES block (16) and GCM's internal boundaries, then random sizes up to 16 MiB.
const SIZES = [0, 1, 15, 16, 17, 255, 4096, 65_535, 65_536, 65_537, 16 * MiB];
for (let i = 0; i < 6; i++) SIZES.push(randomInt(1, 4 * MiB));

const master = generateMasterKey();
const keys = VaultKeys.fromMasterKey(master);

describe('the reference implementation', () => {
  it('derives the same subkeys and gear table from the master key', () => {
    expect(Buffer.from(refSubkey(master, SUBKEY_LABELS.seal, 32))).toEqual(keys.sealKey);
    expect(Buffer.from(refSubkey(master, SUBKEY_LABELS.chunkId, 32))).toEqual(keys.chunkIdKey);
    expect(Buffer.from(refSubkey(master, SUBKEY_LABELS.localCache, 32))).toEqual(keys.localCacheKey);
    const gear = refSubkey(master, SUBKEY_LABELS.chunkerGear, 1024);
    const view = new DataView(gear.buffer, gear.byteOffset);
    expect(Array.from({ length: 256 }, (_, i) => view.getUint32(i * 4, true))).toEqual([...keys.gearTable]);
  });

  it('computes the same chunk ids', () => {
    const ids = new ChunkIdentifier(keys);
    for (const size of [0, 1, 100_000]) {
      const data = randomBytes(size);
      expect(ids.id(data)).toEqual(Buffer.from(refChunkId(keys.chunkIdKey, data)));
    }
    const zeros = Buffer.alloc(3 * MiB);
    expect(ids.id(zeros)).toEqual(Buffer.from(refChunkId(keys.chunkIdKey, zeros)));
    expect(ids.id(zeros)).toEqual(Buffer.from(refChunkId(keys.chunkIdKey, zeros))); // from the zero cache
  });
});

describe.each(SIZES.map((size) => ({ size })))('$size bytes', ({ size }) => {
  const data = randomBytes(size);
  const id = randomBytes(32);

  it('sealed by node:crypto opens with @noble, byte for byte', () => {
    const obj = joinSealed(sealObject(keys, ObjectType.snapshot, id, data));
    expect(Buffer.from(refOpenObject(keys.sealKey, ObjectType.snapshot, id, obj)).equals(data)).toBe(true);
    const blob = joinSealed(sealBlob(keys, ObjectType.data, id, data));
    expect(Buffer.from(refOpenBlob(keys.sealKey, ObjectType.data, id, blob)).equals(data)).toBe(true);
  });

  it('sealed by @noble opens with node:crypto, byte for byte, and the ciphertexts are identical', () => {
    const salt = randomBytes(32);
    const obj = refSealObject(keys.sealKey, ObjectType.index, id, data, salt);
    expect(openObject(keys, ObjectType.index, id, obj).equals(data)).toBe(true);
    expect(joinSealed(seal(keys, ObjectType.index, id, data, salt, true)).equals(obj)).toBe(true);
    const blob = refSealBlob(keys.sealKey, ObjectType.tree, id, data, salt);
    expect(openBlob(keys, ObjectType.tree, id, blob).equals(data)).toBe(true);
  });
});
