/**
 * The throttle composes: placed outside retry and the request gates (concurrency, request rate) rather than right on the
 * backend, it still pays at the wire of a backend that buffers its bodies (the Azure store, on Azurite): the
 * backend is handed the throttle's `pace`, every byte is paid once, and none is paid while merely read.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { withConcurrency, withRequestRate } from '../../src/transfer/limits.js';
import { withThrottle } from '../../src/transfer/throttled-store.js';
import { withRetry } from '../../src/transfer/retry.js';
import type { GetOptions, PutOptions, Store, Body } from '../../src/transfer/store.js';
import { TokenBucket } from '../../src/throttle/token-bucket.js';
import { systemClock } from '../../src/throttle/clock.js';
import { newAzureStore } from '../support/azure.js';

const MiB = 2 ** 20;

describe('a throttle outside retry and the request gates', () => {
  it('pays an Azure upload and download at the wire, once per byte', async () => {
    const { store: azure } = await newAzureStore({ blockSize: MiB });
    try {
      // Which calls reach the backend with the throttle's pace: the only thing this layer adds to the real store.
      const paced: string[] = [];
      const backend: Store = Object.assign(Object.create(azure) as Store, {
        put: (name: string, body: Body, options: PutOptions = {}) => {
          if (options.pace) paced.push(`put ${name}`);
          return azure.put(name, body, options);
        },
        get: (name: string, options: GetOptions = {}) => {
          if (options.pace) paced.push(`get ${name}`);
          return azure.get(name, options);
        },
      });
      const upload = new TokenBucket(systemClock, 1024 * MiB);
      const download = new TokenBucket(systemClock, 1024 * MiB);
      const store = withThrottle(withRetry(withConcurrency(withRequestRate(backend, 1000), 2)), { upload, download });
      const data = randomBytes(3 * MiB + 5);
      await store.put('data/00/pack', data);
      expect((await store.get('data/00/pack')).equals(data)).toBe(true);
      expect(paced).toEqual(['put data/00/pack', 'get data/00/pack']);
      expect(upload.granted).toBe(data.length);
      expect(download.granted).toBe(data.length);
    } finally {
      await azure.close();
    }
  });

  it('pays both buckets of a throttle inside another, at the wire, once per byte each', async () => {
    const { store: azure } = await newAzureStore({ blockSize: MiB });
    try {
      const vault = new TokenBucket(systemClock, 1024 * MiB);
      const process = new TokenBucket(systemClock, 1024 * MiB);
      const store = withThrottle(withConcurrency(withThrottle(azure, { upload: vault, download: vault }), 2), { upload: process, download: process });
      expect(store.pacesWire).toBe(true);
      const data = randomBytes(2 * MiB + 3);
      await store.put('data/00/pack', data);
      expect((await store.get('data/00/pack')).equals(data)).toBe(true);
      expect(vault.granted).toBe(2 * data.length);
      expect(process.granted).toBe(2 * data.length);
    } finally {
      await azure.close();
    }
  });
});
