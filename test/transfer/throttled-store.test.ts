import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LocalStore } from '../../src/transfer/local-store.js';
import { withThrottle } from '../../src/transfer/throttled-store.js';
import type { Body, PutOptions, Store } from '../../src/transfer/store.js';
import { TokenBucket } from '../../src/throttle/token-bucket.js';
import { systemClock } from '../../src/throttle/clock.js';
import { FakeClock } from '../support/fake-clock.js';
import { storeConformance } from '../support/store-conformance.js';
import { tempDir } from '../support/trees.js';

const MiB = 2 ** 20;

storeConformance('local store behind an unlimited throttle', async () => {
  const dir = await tempDir('vaultpath-throttle-');
  const bucket = new TokenBucket(systemClock, 'unlimited');
  const store = withThrottle(await LocalStore.open(join(dir, 'vault'), { create: true }), { upload: bucket, download: bucket });
  return { store, cleanup: () => rm(dir, { recursive: true, force: true }) };
});

describe('the throttled store', () => {
  it('paces an upload at the upload rate, streaming even a body it could have hard-linked', async () => {
    const dir = await tempDir();
    try {
      const clock = new FakeClock();
      const upload = new TokenBucket(clock, MiB);
      const store = withThrottle(await LocalStore.open(join(dir, 'vault'), { create: true }), { upload });
      const source = join(dir, 'staged');
      await writeFile(source, randomBytes(4 * MiB));
      const body: Body = { size: 4 * MiB, path: source, stream: () => createReadStream(source) };
      const start = clock.now();
      let done = false;
      let allPaidAt = 0;
      const put = store.put('data/00/pack', body).then(() => (done = true));
      // Simulated time for the bucket, moved only while the upload waits on it: the file I/O underneath takes real
      // time, however long a loaded machine needs, and none of it counts as simulated time.
      for (let i = 0; i < 200 && !done; i++) {
        for (let spins = 0; spins < 20_000 && !done && clock.pending === 0; spins++) await new Promise((r) => setTimeout(r, 1));
        if (done) break;
        await clock.advance(50);
        if (allPaidAt === 0 && upload.granted === 4 * MiB) allPaidAt = clock.now();
      }
      expect(done).toBe(true);
      await put;
      if (allPaidAt === 0 && upload.granted === 4 * MiB) allPaidAt = clock.now(); // paid during the last step
      // The last byte is paid for 4 s after the first, at 1 MiB/s (less the initial burst).
      expect(allPaidAt - start).toBeGreaterThanOrEqual(3900);
      expect(allPaidAt - start).toBeLessThanOrEqual(4100);
      expect(upload.granted).toBe(4 * MiB);
      expect((await stat(source)).nlink).toBe(1); // streamed and paid for, not linked
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('makes a retried upload pay for its bytes again', async () => {
    const dir = await tempDir();
    try {
      const local = await LocalStore.open(join(dir, 'vault'), { create: true });
      // The first attempt reads the whole body and then loses the connection; the retry succeeds.
      let attempts = 0;
      const flaky: Store = Object.assign(Object.create(local) as Store, {
        put: async (name: string, body: Body, options?: PutOptions) => {
          if (attempts++ === 0) {
            for await (const _ of (body as { stream(): AsyncIterable<Uint8Array> }).stream());
            throw new Error('connection reset');
          }
          return local.put(name, body, options);
        },
      });
      const upload = new TokenBucket(systemClock, 'unlimited');
      const throttled = withThrottle(flaky, { upload });
      const data = randomBytes(MiB);
      await throttled.put('index/x', data).catch(() => throttled.put('index/x', data));
      expect(attempts).toBe(2);
      expect(upload.granted).toBe(2 * MiB);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
