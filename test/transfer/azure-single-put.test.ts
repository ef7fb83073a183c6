/**
 * The Azure store sends an object up to its single-put limit as one Put Blob (one transaction), and larger ones in
 * blocks, with the same Content-MD5 check, create-only condition, retries and pacing as the block path. Requests
 * are counted by a pass-through server (test/support/fault-server.ts) in front of Azurite, so what is asserted is
 * what went on the wire.
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { AZURE_LIMITS, AzureStore, type AzureStoreOptions } from '../../src/transfer/azure-store.js';
import { withRetry } from '../../src/transfer/retry.js';
import { type Fault, type FaultServer, startFaultServer } from '../support/fault-server.js';
import { azureLocation, azurite, newAzureStore } from '../support/azure.js';

const KiB = 1024;
const MiB = 1024 * KiB;

/** Open stores and servers, closed after each test. */
const open: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  while (open.length > 0) await open.pop()!.close();
});

/**
 * A new container reached `direct`ly and through a counting server that answers as `decide` says (every request
 * passes by default); `store` has exactly the options given, so the defaults are the product's.
 */
async function counted(options: AzureStoreOptions = {}, decide: (req: IncomingMessage) => Fault = () => 'pass') {
  const { store: direct, container } = await newAzureStore();
  open.push(direct);
  const headers: Array<{ url: string; ifNoneMatch: string | undefined }> = [];
  const server: FaultServer = await startFaultServer(azurite().endpoint, (req) => {
    headers.push({ url: req.url ?? '', ifNoneMatch: req.headers['if-none-match'] as string | undefined });
    return decide(req);
  });
  open.push(server);
  const store = await AzureStore.open(azureLocation(container, { endpoint: server.endpoint }), { credential: azurite().credential, proxy: false, ...options });
  open.push(store);
  /** The requests that named `name`, by kind. */
  const requestsFor = (name: string, from = 0) => {
    const kinds = { putBlob: 0, putBlock: 0, putBlockList: 0, other: 0 };
    for (const r of server.requests.slice(from)) {
      if (!new URL(r.url, 'http://x').pathname.endsWith(`/${name}`)) continue;
      if (r.method === 'PUT' && r.url.includes('comp=blocklist')) kinds.putBlockList++;
      else if (r.method === 'PUT' && r.url.includes('comp=block&')) kinds.putBlock++;
      else if (r.method === 'PUT' && !r.url.includes('comp=')) kinds.putBlob++;
      else kinds.other++;
    }
    return kinds;
  };
  return { store, direct, server, headers, requestsFor };
}

describe('the Azure store, single Put Blob up to its limit', () => {
  it('sends a 16 MiB pack, and the largest pack a backup writes, as one Put Blob with the default options', async () => {
    const t = await counted();
    for (const [name, size] of [
      ['data/00/pack', 16 * MiB],
      ['data/01/pack', 16 * MiB + 8 * MiB + 64 * KiB],
    ] as const) {
      const data = randomBytes(size);
      await t.store.put(name, data, { ifNotExists: true });
      expect(t.requestsFor(name)).toEqual({ putBlob: 1, putBlock: 0, putBlockList: 0, other: 0 });
      expect((await t.direct.get(name)).equals(data)).toBe(true);
    }
  });

  it('puts an object of exactly the limit in one request, and one byte more in blocks', async () => {
    const t = await counted({ singlePutLimit: MiB, blockSize: 256 * KiB });
    const at = randomBytes(MiB);
    const over = randomBytes(MiB + 1);
    await t.store.put('data/00/at', at, { ifNotExists: true });
    await t.store.put('data/00/over', over, { ifNotExists: true });
    expect(t.requestsFor('data/00/at')).toEqual({ putBlob: 1, putBlock: 0, putBlockList: 0, other: 0 });
    expect(t.requestsFor('data/00/over')).toEqual({ putBlob: 0, putBlock: 5, putBlockList: 1, other: 0 });
    expect((await t.direct.get('data/00/at')).equals(at)).toBe(true);
    expect((await t.direct.get('data/00/over')).equals(over)).toBe(true);
  });

  it('sends a streamed body (a staged pack) as one Put Blob too', async () => {
    const t = await counted();
    const data = randomBytes(6 * MiB + 3);
    const body = {
      size: data.length,
      async *stream() {
        for (let o = 0; o < data.length; o += 100_000) yield data.subarray(o, o + 100_000);
      },
    };
    await t.store.put('data/02/pack', body, { ifNotExists: true });
    expect(t.requestsFor('data/02/pack')).toEqual({ putBlob: 1, putBlock: 0, putBlockList: 0, other: 0 });
    expect((await t.direct.get('data/02/pack')).equals(data)).toBe(true);
  });

  it('has the service refuse a body damaged on the way (Content-MD5), stores nothing, and a retry sends it whole again', async () => {
    let damaged = 0;
    const t = await counted({}, (req) => {
      if (damaged === 0 && req.method === 'PUT' && !req.url!.includes('comp=') && req.url!.includes('data/03/pack')) return damaged++, 'corrupt';
      return 'pass';
    });
    const data = randomBytes(6 * MiB);
    const error = await t.store.put('data/03/pack', data, { ifNotExists: true }).catch((e: unknown) => e);
    expect(damaged).toBe(1);
    expect(error).toMatchObject({ code: 'VP_STORE_IO', status: 400, retryable: true });
    expect(await t.direct.stat('data/03/pack')).toBeUndefined();

    damaged = 0;
    const retrying = withRetry(t.store, { policy: { baseDelayMs: 5, maxDelayMs: 20, maxAttempts: 3 } });
    const from = t.server.requests.length;
    await retrying.put('data/03/pack', data, { ifNotExists: true });
    expect(damaged).toBe(1);
    expect(retrying.stats.retries).toBe(1);
    expect(t.requestsFor('data/03/pack', from)).toEqual({ putBlob: 2, putBlock: 0, putBlockList: 0, other: 0 });
    expect((await t.direct.get('data/03/pack')).equals(data)).toBe(true);
  });

  it('is create-only: a second put of the name is one refused request and leaves the first object', async () => {
    const t = await counted();
    const first = randomBytes(16 * MiB);
    await t.store.put('data/04/pack', first, { ifNotExists: true });
    const from = t.server.requests.length;
    await expect(t.store.put('data/04/pack', randomBytes(16 * MiB), { ifNotExists: true })).rejects.toMatchObject({ code: 'VP_ALREADY_EXISTS' });
    expect(t.requestsFor('data/04/pack', from)).toEqual({ putBlob: 1, putBlock: 0, putBlockList: 0, other: 0 });
    expect(t.headers.filter((h) => h.url.includes('data/04/pack')).map((h) => h.ifNoneMatch)).toEqual(['*', '*']);
    expect((await t.direct.get('data/04/pack')).equals(first)).toBe(true);
  });

  it('takes a retried create-only Put Blob whose answer was lost as done, after reading back size and MD5', async () => {
    let dropped = 0;
    const t = await counted({}, (req) => {
      if (dropped === 0 && req.method === 'PUT' && req.url!.includes('data/05/pack')) return dropped++, 'drop-after-commit';
      return 'pass';
    });
    const retrying = withRetry(t.store, { policy: { baseDelayMs: 5, maxDelayMs: 20, maxAttempts: 3 } });
    const data = randomBytes(12 * MiB);
    await retrying.put('data/05/pack', data, { ifNotExists: true });
    expect(dropped).toBe(1);
    expect(retrying.stats.retries).toBe(1);
    // The first Put Blob (committed, answer lost), the retry's (409/412), the read-back (HEAD).
    expect(t.requestsFor('data/05/pack')).toEqual({ putBlob: 2, putBlock: 0, putBlockList: 0, other: 1 });
    expect((await t.direct.get('data/05/pack')).equals(data)).toBe(true);
  });

  it('pays the throttle for every byte of a single Put Blob, in slices of at most 64 KiB', async () => {
    const t = await counted();
    const data = randomBytes(5 * MiB + 1);
    const paid: number[] = [];
    await t.store.put('data/06/pack', data, { pace: async (n) => void paid.push(n) });
    expect(t.requestsFor('data/06/pack')).toEqual({ putBlob: 1, putBlock: 0, putBlockList: 0, other: 0 });
    expect(paid.reduce((a, b) => a + b, 0)).toBe(data.length);
    expect(Math.max(...paid)).toBeLessThanOrEqual(64 * KiB);
  });

  it.each([-1, 1.5, AZURE_LIMITS.maxPutBlobSize + 1])('refuses a single-put limit of %d', async (singlePutLimit) => {
    await expect(newAzureStore({ singlePutLimit })).rejects.toThrow(RangeError);
  });
});
