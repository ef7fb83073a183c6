/**
 * Keyed content-defined chunking: FastCDC (Xia et al., USENIX ATC 2016) with a gear table derived from the vault's
 * master key, over async iterables of buffers, with memory bounded by the maximum chunk size.
 *
 * The rolling hash is the 32-bit gear hash `h = (h << 1) + gear[byte]`: bit k of `h` depends on the last k + 1
 * bytes, so the top bits see a 32-byte window. A cut is made after a byte when the top bits of `h` are all zero:
 *
 * - the first `minSize` bytes of a chunk are skipped without hashing (the hash restarts at 0 at `minSize`);
 * - from `minSize` to `avgSize`, the mask has log2(avgSize) + 2 bits (cuts are rarer);
 * - from `avgSize` to `maxSize`, the mask has log2(avgSize) − 2 bits (cuts are likelier);
 * - at `maxSize` the chunk is cut regardless.
 *
 * This is FastCDC's "normalized chunking, level 2": chunk sizes cluster around `avgSize`. Because the gear table
 * comes from the key, someone who knows a file but not the key cannot predict where it is cut (borg derives its
 * table the same way; see eprint 2025/558 for why the chunk order inside packs is randomized too).
 *
 * Boundaries are a function of the byte sequence alone: how the input is split into buffers never changes them.
 * THE CUT RULE AND THE GEAR DERIVATION ARE PART OF THE VAULT FORMAT. Changing either moves every boundary, so
 * every file's chunks change and existing vaults stop deduplicating (they bloat). The golden vectors in
 * test/chunk/fastcdc.golden.test.ts pin them.
 *
 * Runs of zero bytes (sparse files, zeroed images) are passed over with memcmp instead of hashing: after 32 zero
 * bytes the hash sits at a fixed point (−gear[0] mod 2^32) that does not change until a non-zero byte arrives,
 * so if that fixed point is not a cut, the rest of the run cannot contain one.
 *
 * The scan itself runs in the native addon where it is built (native/kernels/gear.c, 4.6 to 6.4 times the speed of the
 * JavaScript loop, which is the fallback); a test holds the two to the same cut points.
 *
 * @module
 */
import { VaultpathError, throwIfAborted } from '../errors.js';
import { asBuffer, zeroRunLength } from '../bytes.js';
import { nativeFunction } from '../native/addon.js';

/** Chunk size bounds, in bytes. */
export interface ChunkerParams {
  /** No chunk but the last is shorter. */
  readonly minSize: number;
  /** The target average; a power of two. */
  readonly avgSize: number;
  /** No chunk is longer; this bounds the chunker's memory. */
  readonly maxSize: number;
}

/**
 * 512 KiB / 1 MiB / 8 MiB, as restic.
 *
 * - 1 MiB average: fine enough to deduplicate edited documents and shifted archives, coarse enough that the index
 *   stays near a million entries (~60 MB) per TiB and per-object overhead (52 bytes sealed, one index entry) is
 *   lost in the noise. kopia's 4 MiB halves dedup on small edits for little gain.
 * - 512 KiB minimum: the first half of every chunk is not hashed at all, which doubles chunking throughput.
 * - 8 MiB maximum: bounds a chunk (and the memory per chunk in flight) while letting incompressible runs and zero
 *   regions form large chunks. Same sizes as restic, so dedup ratios compare like for like.
 */
export const DEFAULT_CHUNKER_PARAMS: ChunkerParams = Object.freeze({
  minSize: 512 * 1024,
  avgSize: 1024 * 1024,
  maxSize: 8 * 1024 * 1024,
});

/** Accepted range of chunk sizes (a vault's config is checked against it). */
export const CHUNKER_LIMITS = Object.freeze({ minSize: 64, avgSize: { min: 256, max: 16 * 1024 * 1024 }, maxSize: 64 * 1024 * 1024 });

/**
 * Checks chunker parameters: 64 ≤ min < avg < max ≤ 64 MiB, avg a power of two from 256 B to 16 MiB.
 * @throws {VaultpathError} `VP_CHUNKER_PARAMS`.
 */
export function checkChunkerParams(p: ChunkerParams): void {
  const ok =
    Number.isSafeInteger(p.minSize) &&
    Number.isSafeInteger(p.avgSize) &&
    Number.isSafeInteger(p.maxSize) &&
    p.minSize >= CHUNKER_LIMITS.minSize &&
    p.minSize < p.avgSize &&
    p.avgSize < p.maxSize &&
    p.maxSize <= CHUNKER_LIMITS.maxSize &&
    p.avgSize >= CHUNKER_LIMITS.avgSize.min &&
    p.avgSize <= CHUNKER_LIMITS.avgSize.max &&
    (p.avgSize & (p.avgSize - 1)) === 0;
  if (!ok) {
    throw new VaultpathError(
      'VP_CHUNKER_PARAMS',
      `Chunker sizes min=${p.minSize} avg=${p.avgSize} max=${p.maxSize} are not usable: they must satisfy ` +
        `${CHUNKER_LIMITS.minSize} ≤ min < avg < max ≤ ${CHUNKER_LIMITS.maxSize}, with avg a power of two from ` +
        `${CHUNKER_LIMITS.avgSize.min} to ${CHUNKER_LIMITS.avgSize.max}.`,
    );
  }
}

/** A mask of the top `bits` bits of a 32-bit word, as a signed int32 (the hash is kept as int32). */
function topBits(bits: number): number {
  return (~0 << (32 - bits)) | 0;
}

/**
 * The gear-hash scan: hashes `b[i..limit)` from `state[0]` and returns the index just past the first cut under mask
 * `state[1]`, or -1 with the hash left in `state[0]`. `state[2]` is the hash's fixed point in a run of zero bytes
 * and `state[3]` is 1 when that point is no cut, so that long zero runs can be passed over. The addon's `gearScan`
 * does the same (native/kernels/gear.c).
 * @internal
 */
export type GearScan = (b: Uint8Array, i: number, limit: number, state: Int32Array, gear: Int32Array) => number;

/** The portable {@link GearScan}. @internal */
export function gearScanPortable(buf: Uint8Array, i: number, limit: number, state: Int32Array, gear: Int32Array): number {
  const b = asBuffer(buf);
  let h = state[0]!;
  const mask = state[1]!;
  const zeroSkippable = state[3] === 1;
  while (i < limit) {
    if (b[i] === 0 && zeroSkippable) {
      const run = zeroRunLength(b, i, limit);
      if (run >= 64) {
        // Hash the first 32 zeros for real (a cut may fall among them); after them h is the fixed point and no
        // cut can occur until the run ends.
        for (const stop = i + 32; i < stop; i++) {
          h = ((h << 1) + gear[0]!) | 0;
          if ((h & mask) === 0) return i + 1;
        }
        i += run - 32;
        h = state[2]!;
        continue;
      }
    }
    // Plain FastCDC loop in blocks, so a zero run starting mid-buffer is noticed within 4 KiB.
    const blockEnd = Math.min(limit, i + 4096);
    for (; i < blockEnd; i++) {
      h = ((h << 1) + gear[b[i]!]!) | 0;
      if ((h & mask) === 0) return i + 1;
    }
  }
  state[0] = h;
  return -1;
}

const gearScan: GearScan = nativeFunction('gearScan') ?? gearScanPortable;

/**
 * Finds cut points one buffer at a time and remembers where it is between buffers. Low level: most callers want
 * {@link chunkStream}. Not safe to share between concurrent streams; make one per stream.
 */
export class CutPointFinder {
  readonly #gear: Int32Array;
  readonly #min: number;
  readonly #avg: number;
  readonly #max: number;
  readonly #maskS: number;
  readonly #maskL: number;
  /**
   * The scan's state, carried between buffers: the hash, the mask, the hash after 32 or more zero bytes, and
   * whether that is no cut.
   */
  readonly #state = new Int32Array(4);
  #pos = 0;

  constructor(gearTable: Uint32Array, params: ChunkerParams = DEFAULT_CHUNKER_PARAMS) {
    if (!(gearTable instanceof Uint32Array) || gearTable.length !== 256) {
      throw new TypeError('"gearTable" expected Uint32Array of length 256');
    }
    checkChunkerParams(params);
    this.#gear = new Int32Array(gearTable.buffer.slice(gearTable.byteOffset, gearTable.byteOffset + 1024));
    this.#min = params.minSize;
    this.#avg = params.avgSize;
    this.#max = params.maxSize;
    const bits = Math.log2(params.avgSize);
    this.#maskS = topBits(bits + 2);
    this.#maskL = topBits(bits - 2);
    const zeroFix = -this.#gear[0]! | 0;
    // maskL's bits are a subset of maskS's, so a fixed point that is no cut under maskL is none under maskS.
    this.#state.set([0, 0, zeroFix, (zeroFix & this.#maskL) !== 0 ? 1 : 0]);
  }

  /** Bytes consumed since the last cut. */
  get pending(): number {
    return this.#pos;
  }

  /**
   * Scans `buf` from `start`. Returns the index just past the next cut point, or -1 if the buffer ends first (the
   * state carries over to the next call). After a cut the finder is at the start of a new chunk.
   */
  next(buf: Uint8Array, start: number): number {
    const b = asBuffer(buf);
    const n = b.length;
    let i = start;
    let pos = this.#pos;

    if (pos < this.#min) {
      const skip = Math.min(this.#min - pos, n - i);
      i += skip;
      pos += skip;
      if (pos < this.#min) {
        this.#pos = pos;
        return -1;
      }
      this.#state[0] = 0; // the hash starts at the minimum
    }
    if (pos < this.#avg) {
      const limit = Math.min(n, i + (this.#avg - pos));
      const end = this.#scan(b, i, limit, this.#maskS);
      if (end >= 0) return this.#cut(end);
      pos += limit - i;
      i = limit;
      if (pos < this.#avg) {
        this.#pos = pos;
        return -1;
      }
    }
    const limit = Math.min(n, i + (this.#max - pos));
    const end = this.#scan(b, i, limit, this.#maskL);
    if (end >= 0) return this.#cut(end);
    pos += limit - i;
    if (pos === this.#max) return this.#cut(limit);
    this.#pos = pos;
    return -1;
  }

  /** Forgets the current chunk: the next byte starts a new one. */
  reset(): void {
    this.#pos = 0;
    this.#state[0] = 0;
  }

  #cut(end: number): number {
    this.reset();
    return end;
  }

  /** Hashes b[i..limit) under `mask` and returns the index past the first cut, or -1 with the hash carried over. */
  #scan(b: Buffer, i: number, limit: number, mask: number): number {
    this.#state[1] = mask;
    return gearScan(b, i, limit, this.#state, this.#gear);
  }
}

/** One chunk of a stream. */
export interface Chunk {
  /** Offset of the chunk's first byte in the stream. */
  readonly offset: number;
  /** Length in bytes (≥ 1). */
  readonly length: number;
  /**
   * The chunk's bytes, as slices of the input buffers in order (one slice unless the chunk spans input buffers).
   * They share memory with the input: the source must not reuse a buffer after yielding it.
   */
  readonly parts: readonly Buffer[];
}

export interface ChunkStreamOptions {
  /** Stops the stream at the next chunk boundary or input buffer; iteration then throws `VP_ABORTED`. */
  readonly signal?: AbortSignal;
}

/**
 * Splits a stream of buffers into content-defined chunks.
 *
 * Memory: at most one chunk's worth of input buffers (≤ `maxSize` plus the last buffer read) is held at a time.
 * An empty stream yields no chunks.
 *
 * @param source the bytes, e.g. an `fs.ReadStream`. It MUST NOT reuse a buffer after yielding it.
 * @param gearTable the vault's gear table (`VaultKeys.gearTable`).
 * @throws {VaultpathError} `VP_CHUNKER_PARAMS` for unusable sizes; `VP_ABORTED`.
 * @example
 * ```ts
 * for await (const chunk of chunkStream(createReadStream(path), keys.gearTable)) {
 *   const id = ids.id(chunk.parts);
 * }
 * ```
 */
export async function* chunkStream(
  source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  gearTable: Uint32Array,
  params: ChunkerParams = DEFAULT_CHUNKER_PARAMS,
  options: ChunkStreamOptions = {},
): AsyncGenerator<Chunk, void, undefined> {
  const finder = new CutPointFinder(gearTable, params);
  const { signal } = options;
  let parts: Buffer[] = [];
  let length = 0;
  let offset = 0;
  throwIfAborted(signal);
  for await (const input of source) {
    throwIfAborted(signal);
    const buf = asBuffer(input);
    let start = 0;
    while (start < buf.length) {
      const end = finder.next(buf, start);
      if (end < 0) {
        parts.push(buf.subarray(start));
        length += buf.length - start;
        break;
      }
      parts.push(buf.subarray(start, end));
      length += end - start;
      yield { offset, length, parts };
      throwIfAborted(signal);
      offset += length;
      parts = [];
      length = 0;
      start = end;
    }
  }
  if (length > 0) yield { offset, length, parts };
}
