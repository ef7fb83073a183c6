// Builds a pack in memory or over any sink, in the vault's layout (blobs, then the sealed header and trailer of
// src/repo/pack.ts packTail): for tests that plant packs, damaged or not, without running a backup. Backups write
// pack files through src/repo/pack-file.ts only.
import { createHash } from 'node:crypto';
import { type ByteParts, partsLength } from '../../src/bytes.js';
import { type SealKeys, type SealedObject, Codec, sealBlob } from '../../src/crypto/envelope.js';
import { ObjectType } from '../../src/crypto/object-type.js';
import { MAX_PACK_SIZE, type PackEntry, type PackedType, packTail } from '../../src/repo/pack.js';

/** A finished pack. */
export interface PackInfo {
  /** SHA-256 of the pack's bytes: its id and name. */
  readonly id: Buffer;
  /** Total length in bytes. */
  readonly size: number;
  readonly entries: readonly PackEntry[];
}

/** Receives a pack's bytes in order. MUST write the slices in the order given, each exactly once. */
type PackSink = (parts: readonly Buffer[]) => Promise<void> | void;

/**
 * Computes a pack's id from its bytes: `update` sees every slice in order, `digest` gives the SHA-256 once. A slice
 * given to `update` is not changed afterwards, so a hasher may keep it and hash later (off the calling thread).
 */
interface PackHasher {
  update(part: Buffer): void;
  digest(): Buffer | Promise<Buffer>;
}

/** SHA-256 with node:crypto, on the calling thread, as the slices arrive. */
function packHasher(): PackHasher {
  const h = createHash('sha256');
  return { update: (p) => void h.update(p), digest: () => h.digest() };
}

/**
 * Writes one pack through a sink: blobs as they are added, then the header and trailer on {@link finish}. For
 * building a pack in memory or over any sink (tests, tools); a backup's pack files are written by pack-file.ts, in
 * the same layout ({@link packTail}).
 *
 * @example
 * ```ts
 * const w = new PackWriter(keys, (parts) => file.writev(parts));
 * await w.add(ObjectType.data, id, chunk.parts);
 * const info = await w.finish();
 * ```
 */
export class PackWriter {
  readonly #keys: SealKeys;
  readonly #sink: PackSink;
  readonly #hash: PackHasher;
  readonly #entries: PackEntry[] = [];
  #size = 0;
  #finished = false;

  /** @param hasher computes the pack's id. @default {@link packHasher}() */
  constructor(keys: SealKeys, sink: PackSink, hasher: PackHasher = packHasher()) {
    this.#keys = keys;
    this.#sink = sink;
    this.#hash = hasher;
  }

  /** Bytes written so far (blobs only; the header and trailer come on finish). */
  get size(): number {
    return this.#size;
  }

  /** Number of blobs added. */
  get count(): number {
    return this.#entries.length;
  }

  /** Seals `plaintext` as a blob of `type` under `id` and appends it. */
  async add(type: PackedType, id: Uint8Array, plaintext: ByteParts): Promise<PackEntry> {
    return this.addSealed(type, id, sealBlob(this.#keys, type, id, plaintext), partsLength(plaintext));
  }

  /** Appends a blob already sealed with {@link sealBlob} under the same keys. */
  async addSealed(type: PackedType, id: Uint8Array, sealed: SealedObject, plaintextLength: number): Promise<PackEntry> {
    if (this.#finished) throw new Error('PackWriter: add() after finish()');
    if (type !== ObjectType.data && type !== ObjectType.tree) throw new RangeError(`"type" cannot be packed: ${type}`);
    const entry: PackEntry = { type, codec: Codec.none, id: Buffer.from(id), offset: this.#size, length: sealed.length, plaintextLength };
    if (this.#size + sealed.length > MAX_PACK_SIZE) throw new RangeError('pack would exceed 4 GiB');
    await this.#write(sealed.parts);
    this.#entries.push(entry);
    return entry;
  }

  /** Writes the header and trailer; the pack is complete once the returned promise resolves. */
  async finish(): Promise<PackInfo> {
    if (this.#finished) throw new Error('PackWriter: finish() twice');
    this.#finished = true;
    await this.#write(packTail(this.#keys, this.#entries));
    return { id: await this.#hash.digest(), size: this.#size, entries: this.#entries };
  }

  async #write(parts: readonly Buffer[]): Promise<void> {
    for (const p of parts) {
      this.#hash.update(p);
      this.#size += p.length;
    }
    await this.#sink(parts);
  }
}

