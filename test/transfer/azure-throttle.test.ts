/**
 * The one real-time throttle check, on loopback: four concurrent uploads to an HTTP server (Azurite, behind a pass-
 * through server that timestamps every byte it receives) share a 2 MiB/s limit for about 8 s. Measured where the
 * bytes arrive: the average never exceeds the limit by more than 5% and no 1-second window exceeds 110% of it.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { storeChain } from '../../src/transfer/limits.js';
import { TokenBucket } from '../../src/throttle/token-bucket.js';
import { systemClock } from '../../src/throttle/clock.js';
import { azureBehindFaultServer } from '../support/azure.js';

const MiB = 2 ** 20;

describe('the throttle on a real HTTP connection', () => {
  it('holds four concurrent uploads to 2 MiB/s in real time: average at most 5% over, no 1-second window over 110%', async () => {
    const t = await azureBehindFaultServer(() => 'pass', { blockSize: MiB });
    const { store: backend, server } = t;
    try {
      const rate = 2 * MiB;
      const upload = new TokenBucket(systemClock, rate);
      const store = storeChain(backend, { upload, concurrency: 4 });
      const before = server.bytesIn();
      const t0 = performance.now();
      await Promise.all([0, 1, 2, 3].map((i) => store.put(`data/0${i}/pack`, randomBytes(4 * MiB))));
      const seconds = (performance.now() - t0) / 1000;
      const sent = server.bytesIn() - before;
      expect(sent).toBeGreaterThanOrEqual(16 * MiB);
      const average = sent / seconds;
      // Never faster than the limit (plus 5%). Slower is bounded loosely: on a loaded machine the server behind the
      // throttle (another process) may take its time, which says nothing about the throttle; the pacing itself is
      // checked exactly in simulated time (test/throttle).
      expect(average).toBeLessThanOrEqual(rate * 1.05);
      expect(average).toBeGreaterThan(rate * 0.5);
      // Every 1-second window, measured at the server from each arrival.
      const a = server.arrivals;
      let worst = 0;
      for (let i = 0, j = 0; i < a.length; i++) {
        while (j < a.length && a[j]![0] - a[i]![0] <= 1000) j++;
        const windowBytes = a[j - 1]![1] - (i > 0 ? a[i - 1]![1] : 0);
        if (a[i]![0] + 1000 <= a[a.length - 1]![0]) worst = Math.max(worst, windowBytes);
      }
      expect(worst).toBeLessThanOrEqual(rate * 1.1);
      console.log(`real-time throttle over HTTP: ${(average / MiB).toFixed(3)} MiB/s average for 2 MiB/s over ${seconds.toFixed(2)} s; busiest 1-s window ${(worst / MiB).toFixed(3)} MiB`);
    } finally {
      await t.close();
    }
  }, 30_000);
});
