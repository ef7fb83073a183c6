/**
 * Reusable read buffers for the backup's data path: fixed-size views of shared memory (so a chunk's slices reach
 * the sealing worker by reference), handed out and taken back instead of allocated per read.
 *
 * A fresh SharedArrayBuffer per 1 MiB read costs more than the read itself (the kernel maps and zero-fills its
 * pages on first touch, and the collector unmaps them later); reusing a few dozen keeps the same pages hot.
 *
 * Contract: a buffer is given back with {@link ReadBuffers.release} only when nothing refers to its bytes any more
 * (every chunk cut from it has been hashed and sealed, and no worker is reading it). A buffer that is never given
 * back (a failed file) is simply left to the collector. At most `maxFree` buffers are kept for reuse.
 *
 * @module
 */
export class ReadBuffers {
  readonly size: number;
  readonly #maxFree: number;
  readonly #free: Buffer[] = [];

  constructor(size: number, maxFree: number) {
    this.size = size;
    this.#maxFree = maxFree;
  }

  /** A buffer of `size` bytes (contents undefined). */
  acquire(): Buffer {
    return this.#free.pop() ?? Buffer.from(new SharedArrayBuffer(this.size));
  }

  /** Takes back a buffer from {@link acquire}, given as any view of it; the caller must not use it afterwards. */
  release(view: Uint8Array): void {
    const memory = view.buffer;
    if (!(memory instanceof SharedArrayBuffer) || memory.byteLength !== this.size) return;
    if (this.#free.length < this.#maxFree) this.#free.push(Buffer.from(memory));
  }
}
