import { describe, expect, it } from 'vitest';
import { BURST_SECONDS, MAX_WAIT_MS, TokenBucket } from '../../src/throttle/token-bucket.js';
import { FakeClock } from '../support/fake-clock.js';

const MiB = 2 ** 20;

/** Takes `total` bytes in `piece`-sized requests and records (time, granted) after each. */
async function transfer(bucket: TokenBucket, clock: FakeClock, total: number, piece: number, log: [number, number][], signal?: AbortSignal): Promise<number> {
  for (let sent = 0; sent < total; sent += piece) {
    await bucket.take(Math.min(piece, total - sent), signal);
    log.push([clock.now(), bucket.granted]);
  }
  return clock.now();
}

describe('the token bucket', () => {
  it('moves bytes at the rate: 10 MiB at 1 MiB/s takes 10 s of simulated time', async () => {
    const clock = new FakeClock();
    const start = clock.now();
    const bucket = new TokenBucket(clock, MiB);
    let done = 0;
    void transfer(bucket, clock, 10 * MiB, 256 * 1024, []).then((t) => (done = t));
    await clock.advance(11_000);
    expect(done - start).toBeGreaterThanOrEqual(10_000 - BURST_SECONDS * 1000);
    expect(done - start).toBeLessThanOrEqual(10_000 + MAX_WAIT_MS);
  });

  it('never lets more than the burst through ahead of the rate, in any window', async () => {
    const clock = new FakeClock();
    const rate = 2 * MiB;
    const bucket = new TokenBucket(clock, rate);
    const log: [number, number][] = [];
    void transfer(bucket, clock, 6 * MiB, 4 * MiB, log); // requests far larger than the burst, paid in slices
    const grants: [number, number][] = [];
    const start = clock.now();
    for (let t = 0; t < 4000; t += 10) {
      await clock.advance(10);
      grants.push([clock.now() - start, bucket.granted]);
    }
    for (let i = 0; i < grants.length; i++) {
      for (let j = i + 1; j < grants.length; j++) {
        const seconds = (grants[j]![0] - grants[i]![0]) / 1000;
        expect(grants[j]![1] - grants[i]![1]).toBeLessThanOrEqual(rate * seconds + bucket.burst + 1);
      }
    }
    expect(bucket.granted).toBe(6 * MiB);
  });

  it('shares one budget between concurrent transfers, fairly', async () => {
    const clock = new FakeClock();
    const bucket = new TokenBucket(clock, MiB);
    const a: [number, number][] = [];
    const b: [number, number][] = [];
    let doneA = 0;
    let doneB = 0;
    void transfer(bucket, clock, 4 * MiB, 64 * 1024, a).then((t) => (doneA = t));
    void transfer(bucket, clock, 4 * MiB, 64 * 1024, b).then((t) => (doneB = t));
    const start = clock.now();
    await clock.advance(9000);
    // 8 MiB together at 1 MiB/s: both finish near 8 s, not 4 s each.
    expect(Math.max(doneA, doneB) - start).toBeGreaterThanOrEqual(7900);
    expect(Math.abs(doneA - doneB)).toBeLessThan(200);
  });

  it('applies a new limit to transfers in flight within 100 ms', async () => {
    const clock = new FakeClock();
    const bucket = new TokenBucket(clock, 512 * 1024);
    void transfer(bucket, clock, 64 * MiB, 64 * 1024, []);
    await clock.advance(2000);
    bucket.setLimit(4 * MiB);
    const at = clock.now();
    await clock.advance(MAX_WAIT_MS);
    const before = bucket.granted;
    await clock.advance(1000);
    // From 100 ms after the change, a second moves 4 MiB (within a burst).
    expect(bucket.granted - before).toBeGreaterThan(4 * MiB - bucket.burst);
    expect(bucket.granted - before).toBeLessThanOrEqual(4 * MiB + bucket.burst);
    expect(clock.now() - at).toBe(1100);
  });

  it('pauses (nothing moves) and resumes, which no rate of zero could express', async () => {
    const clock = new FakeClock();
    const bucket = new TokenBucket(clock, 'paused');
    void transfer(bucket, clock, MiB, 64 * 1024, []);
    await clock.advance(5000);
    expect(bucket.granted).toBe(0);
    bucket.setLimit('unlimited');
    await clock.advance(MAX_WAIT_MS);
    expect(bucket.granted).toBe(MiB);
    expect(() => bucket.setLimit(0)).toThrow(RangeError);
  });

  it('stops a waiting transfer on abort, and the next one goes on', async () => {
    const clock = new FakeClock();
    const bucket = new TokenBucket(clock, 64 * 1024);
    const controller = new AbortController();
    const first = transfer(bucket, clock, 10 * MiB, 64 * 1024, [], controller.signal);
    let secondDone = false;
    void bucket.take(64 * 1024).then(() => (secondDone = true));
    await clock.advance(500);
    controller.abort();
    await expect(first).rejects.toMatchObject({ code: 'VP_ABORTED' });
    await clock.advance(2000);
    expect(secondDone).toBe(true);
  });
});
