/**
 * Deterministic test data that any implementation can regenerate: the AES-256-CTR keystream under a key made of
 * the byte `seed` repeated, with a zero IV. (Golden vectors are defined over this data.)
 */
import { createCipheriv } from 'node:crypto';

export function seededBytes(length: number, seed = 23): Buffer {
  const cipher = createCipheriv('aes-256-ctr', Buffer.alloc(32, seed), Buffer.alloc(16));
  return cipher.update(Buffer.alloc(length));
}

/** A fixed master key for vectors: bytes 0x00, 0x01, …, 0x1f. */
export const FIXED_MASTER_KEY = Uint8Array.from({ length: 32 }, (_, i) => i);

/** Splits `data` into pieces of the given sizes, cycling through them. */
export function splitInto(data: Buffer, sizes: readonly number[]): Buffer[] {
  const out: Buffer[] = [];
  for (let o = 0, i = 0; o < data.length; i++) {
    const n = Math.min(sizes[i % sizes.length]!, data.length - o);
    out.push(data.subarray(o, o + n));
    o += n;
  }
  return out;
}

/** Fast KDF parameters for tests that are not about the KDF's cost. */
export const TEST_KDF = Object.freeze({ memoryKiB: 64, iterations: 1, parallelism: 1 });
