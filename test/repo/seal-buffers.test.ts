// Sealed-chunk buffers are reused, never handed out twice at once, and never more than the cap is kept.
import { describe, expect, it } from 'vitest';
import { type BufferMemory, SealBuffers, defaultBufferMemory } from '../../src/repo/seal-buffers.js';
import { nativeFunction } from '../../src/native/addon.js';

const KiB = 1024;
const MiB = 1024 * KiB;

describe('sealed-chunk buffers', () => {
  it('hand out views of exactly the length asked for, over buffers of whole 64 KiB grains', () => {
    const pool = new SealBuffers(16 * MiB);
    const a = pool.acquire(1 * MiB + 48);
    expect(a.length).toBe(1 * MiB + 48);
    expect(a.buffer.byteLength).toBe(1 * MiB + 64 * KiB);
    expect(pool.acquire(10).buffer.byteLength).toBe(64 * KiB);
  });

  it('reuse a buffer given back for a request of up to its size and no less than two thirds of it', () => {
    const pool = new SealBuffers(16 * MiB);
    const a = pool.acquire(1 * MiB);
    pool.release(a);
    expect(pool.freeBytes).toBe(1 * MiB);
    const tooSmall = pool.acquire(600 * KiB); // 640 KiB, and 1 MiB is more than half again as large
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

  it('take back a shared buffer only once each of its shares has been given back', () => {
    const pool = new SealBuffers(16 * MiB);
    const batch = pool.acquire(200 * KiB, 3);
    const parts = [batch.subarray(0, 1000), batch.subarray(1000, 5000), batch.subarray(5000)];
    pool.release(parts[0]!);
    pool.release(parts[2]!);
    expect(pool.freeBytes).toBe(0);
    expect(pool.acquire(200 * KiB).buffer).not.toBe(batch.buffer); // still out: never handed out twice
    pool.release(parts[1]!);
    expect(pool.freeBytes).toBe(256 * KiB);
    pool.release(parts[1]!); // past its shares: ignored
    expect(pool.freeBytes).toBe(256 * KiB);
    expect(pool.acquire(200 * KiB).buffer).toBe(batch.buffer);
  });

  it('keep no more than their cap for reuse, the buffers given back most recently', () => {
    const pool = new SealBuffers(2 * MiB);
    const out = [pool.acquire(1 * MiB), pool.acquire(1 * MiB), pool.acquire(1 * MiB)];
    for (const b of out) pool.release(b);
    expect(pool.freeBytes).toBe(2 * MiB);
    // Sizes change: the stale 1 MiB buffers make way for the small ones as these come back.
    const small = [pool.acquire(200 * KiB), pool.acquire(200 * KiB)];
    for (const b of small) pool.release(b);
    expect(pool.freeBytes).toBe(1 * MiB + 512 * KiB);
    expect(pool.acquire(200 * KiB).buffer).toBe(small[0]!.buffer);
    expect(pool.acquire(200 * KiB).buffer).toBe(small[1]!.buffer);
    expect(pool.acquire(1 * MiB).buffer).toBe(out[2]!.buffer);
    expect(pool.acquire(1 * MiB).buffer).not.toBe(out[1]!.buffer); // dropped to make room
    const huge = pool.acquire(3 * MiB);
    pool.release(huge);
    expect(pool.freeBytes).toBe(0); // more than the cap alone: never kept
  });

  it('give back the memory of a buffer as soon as it is not kept, and of every kept one on dispose', () => {
    const allocated: ArrayBuffer[] = [];
    const freed: ArrayBuffer[] = [];
    const memory: BufferMemory = { allocate: (n) => (allocated.push(new ArrayBuffer(n)), allocated.at(-1)!), free: (b) => void freed.push(b) };
    const pool = new SealBuffers(2 * MiB, memory);
    const out = [pool.acquire(1 * MiB), pool.acquire(1 * MiB), pool.acquire(1 * MiB), pool.acquire(3 * MiB)];
    expect(allocated.map((b) => b.byteLength)).toEqual([1 * MiB, 1 * MiB, 1 * MiB, 3 * MiB]);
    for (const b of out) pool.release(b);
    expect(freed).toEqual([allocated[0], allocated[3]]); // the oldest past the cap, and one larger than the cap
    const still = pool.acquire(1 * MiB);
    pool.dispose();
    expect(freed).toEqual([allocated[0], allocated[3], allocated[2]]); // not the one still out
    expect(pool.freeBytes).toBe(0);
    expect(still.buffer).toBe(allocated[1]);
  });

  it.runIf(process.platform === 'linux')('use mapped memory where the addon is built, unmapped at once: every view of it becomes empty', () => {
    expect(nativeFunction('mapBuffer'), 'the native addon did not build or load').not.toBeNull();
    const memory = defaultBufferMemory();
    const buffer = memory.allocate(256 * KiB);
    const view = Buffer.from(buffer, 100, 1000);
    view.fill(7);
    expect(Buffer.from(buffer)[100]).toBe(7);
    memory.free(buffer);
    expect(buffer.byteLength).toBe(0);
    expect(view.length).toBe(0);
    const unmap = nativeFunction('unmapBuffer') as unknown as (b: unknown) => boolean;
    expect(unmap(buffer)).toBe(false); // already unmapped
    expect(unmap(new ArrayBuffer(8))).toBe(false); // not ours: left alone
    expect(unmap({})).toBe(false);
    const map = nativeFunction('mapBuffer') as unknown as (n: unknown) => ArrayBuffer;
    expect(() => map(0)).toThrow(TypeError);
    expect(() => map('1')).toThrow(TypeError);
    expect(new Uint8Array(map(4096)).every((b) => b === 0)).toBe(true);
  });
});
