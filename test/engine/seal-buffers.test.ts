// Sealed-chunk buffers are reused, never handed out twice at once, and never more than the cap is kept.
import { describe, expect, it } from 'vitest';
import { SealBuffers } from '../../src/engine/seal-buffers.js';

const KiB = 1024;
const MiB = 1024 * KiB;

describe('sealed-chunk buffers', () => {
  it('hand out views of exactly the length asked for, over buffers of whole 256 KiB grains', () => {
    const pool = new SealBuffers(16 * MiB);
    const a = pool.acquire(1 * MiB + 48);
    expect(a.length).toBe(1 * MiB + 48);
    expect(a.buffer.byteLength).toBe(1 * MiB + 256 * KiB);
    expect(pool.acquire(10).buffer.byteLength).toBe(256 * KiB);
  });

  it('reuse a buffer given back for a request of up to its size and no less than half of it', () => {
    const pool = new SealBuffers(16 * MiB);
    const a = pool.acquire(1 * MiB);
    pool.release(a);
    expect(pool.freeBytes).toBe(1 * MiB);
    const tooSmall = pool.acquire(200 * KiB); // a 256 KiB grain: the 1 MiB buffer is more than twice that
    expect(tooSmall.buffer).not.toBe(a.buffer);
    const b = pool.acquire(700 * KiB);
    expect(b.buffer).toBe(a.buffer);
    expect(pool.freeBytes).toBe(0);
    const c = pool.acquire(700 * KiB); // nothing free: a new one, never the one still out
    expect(c.buffer).not.toBe(a.buffer);
  });

  it('ignore a view of a buffer they did not hand out, and a second release of one', () => {
    const pool = new SealBuffers(16 * MiB);
    pool.release(Buffer.alloc(1 * MiB));
    pool.release(new Uint8Array(new SharedArrayBuffer(256 * KiB)));
    expect(pool.freeBytes).toBe(0);
    const a = pool.acquire(1 * MiB);
    pool.release(a.subarray(100));
    pool.release(a);
    expect(pool.freeBytes).toBe(1 * MiB);
    const b = pool.acquire(1 * MiB);
    const c = pool.acquire(1 * MiB);
    expect(b.buffer).toBe(a.buffer);
    expect(c.buffer).not.toBe(a.buffer);
  });

  it('keep no more than their cap for reuse', () => {
    const pool = new SealBuffers(2 * MiB);
    const out = [pool.acquire(1 * MiB), pool.acquire(1 * MiB), pool.acquire(1 * MiB)];
    for (const b of out) pool.release(b);
    expect(pool.freeBytes).toBe(2 * MiB);
  });
});
