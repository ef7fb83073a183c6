import { createHmac, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ChunkIdentifier } from '../../src/crypto/chunk-id.js';
import { VaultKeys, generateMasterKey } from '../../src/crypto/keys.js';

const keys = VaultKeys.fromMasterKey(generateMasterKey());

describe('chunk ids', () => {
  it('are HMAC-SHA256 of the content under the chunk-id key', () => {
    const data = randomBytes(5000);
    expect(new ChunkIdentifier(keys).id(data)).toEqual(createHmac('sha256', keys.chunkIdKey).update(data).digest());
  });

  it('do not depend on how the content is sliced', () => {
    const data = randomBytes(5000);
    const ids = new ChunkIdentifier(keys);
    expect(ids.id([data.subarray(0, 1), data.subarray(1, 4000), data.subarray(4000)])).toEqual(ids.id(data));
  });

  it('differ between vaults for the same content (no confirmation of known files)', () => {
    const data = Buffer.from('a file everyone has');
    const other = VaultKeys.fromMasterKey(generateMasterKey());
    expect(new ChunkIdentifier(keys).id(data)).not.toEqual(new ChunkIdentifier(other).id(data));
  });

  it('of zero chunks come from the cache and equal the hashed id, and a cached id is never handed out shared', () => {
    const ids = new ChunkIdentifier(keys);
    const zeros = Buffer.alloc(1 << 20);
    const hashed = createHmac('sha256', keys.chunkIdKey).update(zeros).digest();
    const first = ids.id(zeros);
    const second = ids.id([zeros.subarray(0, 10), zeros.subarray(10)]);
    expect(first).toEqual(hashed);
    expect(second).toEqual(hashed);
    second.fill(1); // a caller scribbling on its copy must not poison the cache
    expect(ids.id(zeros)).toEqual(hashed);
  });

  it('of chunks that merely start and end with zero are hashed, not taken from the cache', () => {
    const ids = new ChunkIdentifier(keys);
    const zeros = Buffer.alloc(4096);
    ids.id(zeros);
    const almost = Buffer.alloc(4096);
    almost[2000] = 1;
    expect(ids.id(almost)).toEqual(createHmac('sha256', keys.chunkIdKey).update(almost).digest());
  });

  it('match their content, in constant time', () => {
    const ids = new ChunkIdentifier(keys);
    const data = randomBytes(100);
    expect(ids.matches(ids.id(data), data)).toBe(true);
    expect(ids.matches(ids.id(data), randomBytes(100))).toBe(false);
    expect(ids.matches(Buffer.alloc(3), data)).toBe(false);
  });
});
