import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LocalStore } from '../../src/transfer/local-store.js';
import { storeChain, withConcurrency, withRequestRate } from '../../src/transfer/limits.js';
import type { Store } from '../../src/transfer/store.js';
import { TokenBucket } from '../../src/throttle/token-bucket.js';
import { systemClock } from '../../src/throttle/clock.js';
import { storeConformance } from '../support/store-conformance.js';
import { tempDir } from '../support/trees.js';

storeConformance('local store behind the whole chain (concurrency, request rate, throttle)', async () => {
  const dir = await tempDir('vaultpath-chain-');
  const bucket = new TokenBucket(systemClock, 'unlimited');
  const store = storeChain(await LocalStore.open(join(dir, 'vault'), { create: true }), {
    upload: bucket, download: bucket, concurrency: 2, requestsPerSecond: 10_000,
  });
  return { store, cleanup: () => rm(dir, { recursive: true, force: true }) };
});

/** A backend whose stat takes `ms` and counts how many run at once. */
function slowBackend(ms: number): Store & { peak: number; starts: number[] } {
  let running = 0;
  const s = {
    location: 'slow',
    peak: 0,
    starts: [] as number[],
    async stat() {
      s.starts.push(performance.now());
      running++;
      s.peak = Math.max(s.peak, running);
      await new Promise((r) => setTimeout(r, ms));
      running--;
      return undefined;
    },
    put: async () => undefined,
    get: async () => Buffer.alloc(0),
    delete: async () => undefined,
    list: async function* () {},
  };
  return s;
}

describe('request limits', () => {
  it('hold requests in flight to the concurrency', async () => {
    const backend = slowBackend(20);
    const store = withConcurrency(backend, 3);
    await Promise.all(Array.from({ length: 12 }, () => store.stat('config')));
    expect(backend.peak).toBe(3);
  });

  it('space request starts to the rate per second', async () => {
    const backend = slowBackend(0);
    const store = withRequestRate(backend, 50);
    await Promise.all(Array.from({ length: 10 }, () => store.stat('config')));
    // 20 ms apart on average. Single gaps are not checked: a timer that fires late (a loaded machine) makes the next
    // gap short, as the limiter schedules each start from the one before. The limiter keeps its schedule in whole
    // milliseconds of Date.now, which can put the nine gaps up to 9 ms short of 180 against performance.now: the
    // bound allows that and more, and without the limiter the span is about 0.
    const span = backend.starts.at(-1)! - backend.starts[0]!;
    expect(span).toBeGreaterThanOrEqual(0.8 * 9 * 20);
  });

  it('take a waiting request out of the queue when its signal aborts, with VP_ABORTED', async () => {
    const backend = slowBackend(200);
    const store = withConcurrency(backend, 1);
    const first = store.stat('config');
    const controller = new AbortController();
    const second = store.stat('config', { signal: controller.signal });
    controller.abort();
    await expect(second).rejects.toMatchObject({ code: 'VP_ABORTED' });
    await first;
    expect(backend.starts.length).toBe(1);
  });
});
