import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { INDEX_ENTRY_LENGTH, type IndexEntry, decodeIndex, encodeIndex, openIndex, readIndex, sealIndex } from '../../src/repo/index-file.js';
import { VaultKeys, generateMasterKey } from '../../src/crypto/keys.js';
import { ObjectType } from '../../src/crypto/object-type.js';

const keys = VaultKeys.fromMasterKey(generateMasterKey());
const packA = randomBytes(32);
const packB = randomBytes(32);
const entries: IndexEntry[] = [
  { id: randomBytes(32), type: ObjectType.data, codec: 0, packId: packA, offset: 0, length: 1_048_624, plaintextLength: 1_048_576 },
  { id: randomBytes(32), type: ObjectType.tree, codec: 0, packId: packB, offset: 0, length: 348, plaintextLength: 300 },
  { id: randomBytes(32), type: ObjectType.data, codec: 0, packId: packA, offset: 1_048_624, length: 4_000_048, plaintextLength: 4_000_000 },
];

describe('index objects', () => {
  it('round-trip every field, with pack ids stored once', () => {
    const content = { entries, supersedes: [randomBytes(32)] };
    const plain = encodeIndex(content);
    expect(plain.length).toBe(4 + 2 * 32 + 4 + 3 * INDEX_ENTRY_LENGTH + 4 + 32);
    expect(decodeIndex(plain)).toEqual(content);
  });

  it('seal and open under their id', () => {
    const id = randomBytes(32);
    const sealed = sealIndex(keys, id, { entries, supersedes: [] });
    expect(openIndex(keys, id, sealed)).toEqual({ entries, supersedes: [] });
    expect(() => openIndex(keys, randomBytes(32), sealed)).toThrow(expect.objectContaining({ code: 'VP_AUTH_FAILED' }));
  });

  it('refuse counts that run past the bytes present, instead of trusting them', () => {
    const plain = encodeIndex({ entries, supersedes: [] });
    for (const cut of [0, 3, 10, 70, plain.length - 1]) {
      expect(() => decodeIndex(plain.subarray(0, cut))).toThrow(expect.objectContaining({ code: 'VP_MALFORMED_OBJECT' }));
    }
    const huge = Buffer.from(plain);
    huge.writeUInt32LE(0xffffffff, 0);
    expect(() => decodeIndex(huge)).toThrow(/ends inside its pack ids/);
  });

  it('refuse entries that name a pack that is not listed, or an unpackable type', () => {
    const plain = encodeIndex({ entries, supersedes: [] });
    const firstEntry = 4 + 2 * 32 + 4;
    const badPack = Buffer.from(plain);
    badPack.writeUInt32LE(2, firstEntry + 32);
    expect(() => decodeIndex(badPack)).toThrow(/names pack 2 of 2/);
    const badType = Buffer.from(plain);
    badType[firstEntry + 48] = ObjectType.snapshot;
    expect(() => decodeIndex(badType)).toThrow(/has type 7/);
  });

  it('refuse every damaged entry field in the bulk check a load runs, with the message of the entry-by-entry reader', () => {
    const plain = encodeIndex({ entries, supersedes: [] });
    const third = 4 + 2 * 32 + 4 + 2 * INDEX_ENTRY_LENGTH;
    const damages: [string, (b: Buffer) => void, RegExp][] = [
      ['pack ordinal', (b) => b.writeUInt32LE(2, third + 32), /entry 2 names pack 2 of 2/],
      ['type', (b) => (b[third + 48] = ObjectType.snapshot), /entry 2 has type 7/],
      ['reserved field', (b) => (b[third + 51] = 1), /entry 2 has a non-zero reserved field/],
      ['sealed length', (b) => b.writeUInt32LE(10, third + 40), /entry 2 has a sealed length of 10 bytes/],
      ['end past the largest pack', (b) => b.writeUInt32LE(0xffff_fff0, third + 36), /entry 2 ends at byte/],
      ['plaintext length', (b) => b.writeUInt32LE(3_999_999, third + 44), /entry 2 has a plaintext length of 3999999 bytes/],
    ];
    expect(() => readIndex(plain).check()).not.toThrow();
    for (const [, damage, message] of damages) {
      const bad = Buffer.from(plain);
      damage(bad);
      expect(() => decodeIndex(bad)).toThrow(message);
      expect(() => readIndex(bad).check()).toThrow(message);
    }
  });

  it('refuse trailing bytes', () => {
    expect(() => decodeIndex(Buffer.concat([encodeIndex({ entries, supersedes: [] }), Buffer.of(0)]))).toThrow(/after its last field/);
  });
});
