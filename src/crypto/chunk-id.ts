/**
 * Chunk ids: HMAC-SHA256 of the chunk's plaintext under the vault's chunk-id key (node:crypto).
 *
 * Keyed, so someone who can list the vault cannot confirm that it holds a file they know by hashing it: without
 * the key the ids say nothing about content. The id is also the dedup key and the name bound into the chunk's
 * envelope, so a reader re-derives it after opening a chunk to prove the chunk is the one it asked for.
 *
 * All-zero chunks (sparse files, zeroed disk images) repeat by the thousand and with only a few distinct lengths;
 * {@link ChunkIdentifier} recognizes them with a memcmp and answers from a small cache instead of hashing the same
 * zeros again.
 *
 * @module
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { type ByteParts, asParts, checkBytes, isAllZero, partsLength } from '../bytes.js';

/** Length of a chunk id in bytes. */
export const CHUNK_ID_LENGTH = 32;

/** The keys chunk ids need (a {@link VaultKeys} fits). */
export interface ChunkIdKeys {
  readonly chunkIdKey: Uint8Array;
}

// Zero chunks come in few lengths (max-size chunks, and the tail of each zero run); a handful of entries suffices.
const ZERO_CACHE_ENTRIES = 64;

/**
 * Computes chunk ids under one vault's key.
 *
 * @example
 * ```ts
 * const ids = new ChunkIdentifier(keys);
 * for await (const chunk of chunkStream(file, keys.gearTable)) ids.id(chunk.parts);
 * ```
 */
export class ChunkIdentifier {
  readonly #key: Uint8Array;
  readonly #zeroIds = new Map<number, Buffer>();

  constructor(keys: ChunkIdKeys) {
    checkBytes(keys.chunkIdKey, 32, 'chunkIdKey');
    this.#key = keys.chunkIdKey;
  }

  /** The id of `data` (one buffer or slices in order). */
  id(data: ByteParts): Buffer {
    const parts = asParts(data);
    if (parts.length > 0 && startsAndEndsWithZero(parts)) {
      const length = partsLength(parts);
      const cached = this.#zeroIds.get(length);
      if (cached) {
        if (isAllZero(parts)) return Buffer.from(cached);
      } else if (isAllZero(parts)) {
        const id = this.#hash(parts);
        if (this.#zeroIds.size >= ZERO_CACHE_ENTRIES) this.#zeroIds.delete(this.#zeroIds.keys().next().value!);
        this.#zeroIds.set(length, id);
        return Buffer.from(id);
      }
    }
    return this.#hash(parts);
  }

  /** True when `id` is the id of `data`; compares in constant time. */
  matches(id: Uint8Array, data: ByteParts): boolean {
    return id.length === CHUNK_ID_LENGTH && timingSafeEqual(id, this.id(data));
  }

  #hash(parts: readonly Uint8Array[]): Buffer {
    const h = createHmac('sha256', this.#key);
    for (const p of parts) h.update(p);
    return h.digest();
  }
}

function startsAndEndsWithZero(parts: readonly Uint8Array[]): boolean {
  const first = parts.find((p) => p.length > 0);
  if (!first) return true;
  const last = parts.findLast((p) => p.length > 0)!;
  return first[0] === 0 && last[last.length - 1] === 0;
}
