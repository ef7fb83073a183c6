/**
 * Reusable output buffers for sealed chunks: the backup's large chunks are sealed into these, and each goes back
 * once the pack holding it is written (or at once, when the chunk turned out to be a duplicate). Small files are
 * sealed a batch to a buffer, which is shared: it goes back once each of its files has been given back.
 *
 * A fresh buffer per sealed chunk (about 1 MiB each, ~1 GiB for a 1 GiB backup) costs a page fault per 4 KiB on
 * first touch, and its memory comes back only when the collector runs: measured here, 55,000 page faults for a
 * 384 MiB backup, and a peak RSS that grew with the pack pipeline's slack. Reused buffers keep the same pages.
 *
 * Sizes are rounded up to a multiple of {@link GRAIN}; a request takes the smallest free buffer of at least its size
 * and at most half again as large, else a new one. At most `maxFreeBytes` are kept for reuse, the most recently
 * given back. Buffers past that are unmapped at once where the native addon is built (native/napi/memory.c), as are all
 * kept ones on {@link SealBuffers.dispose}: left to the collector, a backup whose sizes change (large chunks, then
 * batches of small files) carried tens of MiB of dropped buffers between collections. Elsewhere, and for any buffer
 * never given back (a failed backup), the collector frees them.
 *
 * Contract: a buffer is given back with {@link SealBuffers.release} only when nothing refers to its bytes any more:
 * once per share it was acquired with, given as any view of it. A view of another buffer, or a release past its
 * shares, is ignored.
 *
 * @module
 */
import { nativeFunction } from '../native/addon.js';

/** Where buffers come from, and go when they are not kept. */
export interface BufferMemory {
  readonly allocate: (size: number) => ArrayBuffer;
  /** Gives the memory back now; the buffer must not be used afterwards. */
  readonly free: (buffer: ArrayBuffer) => void;
}

/** Mapped memory, unmapped on free, where the addon is built; else ordinary ArrayBuffers left to the collector. */
export function defaultBufferMemory(): BufferMemory {
  const map = nativeFunction('mapBuffer');
  const unmap = nativeFunction('unmapBuffer');
  if (map && unmap) return { allocate: map, free: (b) => void unmap(b) };
  return { allocate: (size) => new ArrayBuffer(size), free: () => undefined };
}

/** Buffer sizes are multiples of this. */
const GRAIN = 64 * 1024;

export class SealBuffers {
  readonly #maxFreeBytes: number;
  readonly #memory: BufferMemory;
  /** Oldest given back first. */
  readonly #free: ArrayBuffer[] = [];
  #freeBytes = 0;
  /** Buffers handed out and not yet given back, with their shares still out: a foreign view is never taken in. */
  readonly #out = new WeakMap<ArrayBuffer, number>();

  constructor(maxFreeBytes: number, memory: BufferMemory = defaultBufferMemory()) {
    this.#maxFreeBytes = maxFreeBytes;
    this.#memory = memory;
  }

  /**
   * A view of exactly `length` bytes (contents undefined) over a buffer of this pool, which comes back after
   * `shares` releases (one per user of a part of it).
   */
  acquire(length: number, shares = 1): Buffer {
    const size = Math.max(GRAIN, Math.ceil(length / GRAIN) * GRAIN);
    let best = -1;
    for (let i = 0; i < this.#free.length; i++) {
      const n = this.#free[i]!.byteLength;
      if (n >= size && n <= size + size / 2 && (best < 0 || n < this.#free[best]!.byteLength)) best = i;
    }
    let memory: ArrayBuffer;
    if (best >= 0) {
      memory = this.#free.splice(best, 1)[0]!;
      this.#freeBytes -= memory.byteLength;
    } else {
      memory = this.#memory.allocate(size);
    }
    this.#out.set(memory, shares);
    return Buffer.from(memory, 0, length);
  }

  /** Gives back one share of a buffer from {@link acquire}, given as any view of it; anything else is ignored. */
  release(view: Uint8Array): void {
    const memory = view.buffer;
    if (!(memory instanceof ArrayBuffer)) return;
    const shares = this.#out.get(memory);
    if (shares === undefined) return;
    if (shares > 1) {
      this.#out.set(memory, shares - 1);
      return;
    }
    this.#out.delete(memory);
    if (memory.byteLength > this.#maxFreeBytes) {
      this.#memory.free(memory);
      return;
    }
    // Past the cap, the buffers given back longest ago go first: when the sizes asked for change (a folder of small
    // files after large ones), stale sizes would otherwise fill the cap and every fresh buffer be dropped.
    this.#free.push(memory);
    this.#freeBytes += memory.byteLength;
    while (this.#freeBytes > this.#maxFreeBytes) {
      const oldest = this.#free.shift()!;
      this.#freeBytes -= oldest.byteLength;
      this.#memory.free(oldest);
    }
  }

  /** Gives back the memory of every buffer kept for reuse. Buffers still out are not touched. */
  dispose(): void {
    for (const memory of this.#free.splice(0)) this.#memory.free(memory);
    this.#freeBytes = 0;
  }

  /** Bytes kept for reuse. */
  get freeBytes(): number {
    return this.#freeBytes;
  }
}
