import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { VaultpathError } from '../../src/errors.js';
import { LocalStore } from '../../src/transfer/local-store.js';
import { DEFAULT_RETRY_POLICY, type RetryEvent, isRetryable, withRetry } from '../../src/transfer/retry.js';
import type { Body, CallOptions, GetOptions, PutOptions, ReplayableBody, Store } from '../../src/transfer/store.js';
import { storeChain } from '../../src/transfer/limits.js';
import { TokenBucket } from '../../src/throttle/token-bucket.js';
import { parseRate } from '../../src/throttle/rate.js';
import { FakeClock } from '../support/fake-clock.js';
import { tempDir } from '../support/trees.js';

/** A real local store whose next calls fail as scripted (fault injection around a real part). */
class FlakyStore implements Store {
  readonly faults: (() => Promise<never>)[] = [];
  /** Faults of puts that come after the whole body was sent (a lost answer, a reset at the end). */
  readonly faultsAfterBody: (() => Promise<never>)[] = [];
  calls = 0;
  bodiesStreamed = 0;
  constructor(readonly inner: Store) {}
  get location(): string {
    return this.inner.location;
  }
  async #maybeFail(): Promise<void> {
    this.calls++;
    const fault = this.faults.shift();
    if (fault) await fault();
  }
  async put(name: string, body: Body, options?: PutOptions): Promise<void> {
    await this.#maybeFail();
    const counted: ReplayableBody = {
      size: body instanceof Uint8Array ? body.length : body.size,
      stream: () => {
        this.bodiesStreamed++;
        return body instanceof Uint8Array ? (async function* () { yield body; })() : body.stream();
      },
    };
    const late = this.faultsAfterBody.shift();
    if (late) {
      for await (const _ of counted.stream()) void _;
      return late();
    }
    return this.inner.put(name, counted, options);
  }
  async get(name: string, options?: GetOptions): Promise<Buffer> {
    await this.#maybeFail();
    return this.inner.get(name, options);
  }
  async stat(name: string, options?: CallOptions) {
    await this.#maybeFail();
    return this.inner.stat(name, options);
  }
  list(prefix: string, options?: CallOptions) {
    return this.inner.list(prefix, options);
  }
  async delete(name: string, options?: CallOptions): Promise<void> {
    await this.#maybeFail();
    return this.inner.delete(name, options);
  }
}

const http = (status: number, retryAfterMs?: number) => () =>
  Promise.reject(new VaultpathError('VP_STORE_IO', `answered ${status}`, { status, ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) }));
const reset = () => () => Promise.reject(new VaultpathError('VP_STORE_IO', 'socket hang up', { cause: Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }) }));

describe('the retry decorator', () => {
  let dir: string;
  let flaky: FlakyStore;
  let clock: FakeClock;
  const events: RetryEvent[] = [];
  beforeEach(async () => {
    dir = await tempDir();
    flaky = new FlakyStore(await LocalStore.open(join(dir, 'v'), { create: true, durable: false }));
    clock = new FakeClock();
    events.length = 0;
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  const retrying = (policy = {}, random = () => 0.5) => withRetry(flaky, { clock, policy, random, onRetry: (e) => events.push(e) });

  it('retries 503 with capped exponential backoff and full jitter: waits of random × base × 2^(n−1)', async () => {
    const store = retrying({ baseDelayMs: 1000, maxDelayMs: 3000, maxAttempts: 5 });
    flaky.faults.push(http(503), http(500), http(502), http(504));
    const put = store.put('index/a', Buffer.from('x'));
    await clock.advance(10 * 60_000);
    await put;
    expect(events.map((e) => e.delayMs)).toEqual([500, 1000, 1500, 1500]); // 0.5 × min(3000, 1000, 2000, 4000, 8000)
    expect(events.map((e) => e.attempt)).toEqual([2, 3, 4, 5]);
    expect(store.stats).toEqual({ attempts: 5, retries: 4, bytesResent: 4 });
    expect((await flaky.inner.get('index/a')).toString()).toBe('x');
  });

  it('waits at least what Retry-After asks', async () => {
    const store = retrying({ baseDelayMs: 100 });
    flaky.faults.push(http(429, 7000));
    const started = clock.now();
    const get = store.stat('index/none');
    await clock.advance(6999);
    expect(flaky.calls).toBe(1);
    await clock.advance(1);
    await get;
    expect(flaky.calls).toBe(2);
    expect(clock.now() - started).toBe(7000);
  });

  it('retries network resets found in the cause chain', async () => {
    const store = retrying({ baseDelayMs: 10 });
    flaky.faults.push(reset());
    const p = store.stat('x');
    await clock.advance(1000);
    await expect(p).resolves.toBeUndefined();
    expect(store.stats.retries).toBe(1);
  });

  it.each([400, 401, 403, 404, 407, 409, 412])('fails at once on %i', async (status) => {
    const store = retrying();
    flaky.faults.push(http(status));
    await expect(store.stat('x')).rejects.toMatchObject({ status });
    expect(flaky.calls).toBe(1);
  });

  it('never retries a full disk or an abort', () => {
    expect(isRetryable(new VaultpathError('VP_STORE_FULL', 'full'))).toBe(false);
    expect(isRetryable(new VaultpathError('VP_ABORTED', 'aborted', { retryable: true }))).toBe(false);
    expect(isRetryable(new VaultpathError('VP_STORE_IO', 'md5', { status: 400, retryable: true }))).toBe(true);
  });

  it('gives up after maxAttempts with the last failure, its code unchanged', async () => {
    const store = retrying({ maxAttempts: 3, baseDelayMs: 10 });
    flaky.faults.push(http(503), http(503), http(500), http(503));
    const p = store.stat('x').catch((e: unknown) => e);
    await clock.advance(60_000);
    expect(await p).toMatchObject({ code: 'VP_STORE_IO', status: 500 });
    expect(flaky.calls).toBe(3);
  });

  it('starts no attempt after the deadline', async () => {
    const store = retrying({ maxAttempts: 100, baseDelayMs: 1000, maxDelayMs: 1000, deadlineMs: 2200 }, () => 0.999);
    for (let i = 0; i < 10; i++) flaky.faults.push(http(503));
    const p = store.stat('x').catch((e: unknown) => e);
    await clock.advance(60_000);
    expect(await p).toMatchObject({ status: 503 });
    expect(flaky.calls).toBe(3); // at 0, 999 and 1998 ms; a fourth would start at 2997 > 2200
  });

  it('ends a wait at once on abort, and starts no further attempt', async () => {
    const store = retrying({ baseDelayMs: 60_000 });
    flaky.faults.push(http(503));
    const controller = new AbortController();
    const p = store.stat('x', { signal: controller.signal }).catch((e: unknown) => e);
    await clock.advance(10);
    controller.abort();
    expect(await p).toMatchObject({ code: 'VP_ABORTED' });
    await clock.advance(120_000);
    expect(flaky.calls).toBe(1);
  });

  it('times out an attempt that hangs, and tries again', async () => {
    // A store whose first stat never answers until its signal aborts.
    let calls = 0;
    const hanging: Store = {
      location: 'hanging',
      stat: (name: string, options?: CallOptions) =>
        ++calls === 1
          ? new Promise((_, reject) => options?.signal?.addEventListener('abort', () => reject(new VaultpathError('VP_ABORTED', 'aborted'))))
          : Promise.resolve({ name, size: 1 }),
      put: () => Promise.resolve(),
      get: () => Promise.resolve(Buffer.alloc(0)),
      list: async function* () {},
      delete: () => Promise.resolve(),
    };
    const store = withRetry(hanging, { clock, policy: { attemptTimeoutMs: 5000, baseDelayMs: 10 }, random: () => 0 });
    const p = store.stat('a');
    await clock.advance(4999);
    expect(calls).toBe(1);
    await clock.advance(1);
    await expect(p).resolves.toEqual({ name: 'a', size: 1 });
    expect(calls).toBe(2);
    expect(store.stats.retries).toBe(1);
  });

  it('replays the body on each attempt, and the replay pays the throttle again', async () => {
    class CountingBucket extends TokenBucket {
      paid = 0;
      override take(bytes: number, signal?: AbortSignal): Promise<void> {
        this.paid += bytes;
        return super.take(bytes, signal);
      }
    }
    const bucket = new CountingBucket(clock, parseRate('1GiB/s'));
    const store = storeChain(flaky, { upload: bucket, retry: { clock, policy: { baseDelayMs: 10 }, random: () => 0 } });
    flaky.faultsAfterBody.push(http(503));
    const body = Buffer.alloc(200_000, 9);
    const p = store.put('data/00/p', body);
    await clock.advance(10_000);
    await p;
    expect(flaky.bodiesStreamed).toBe(2);
    expect(bucket.paid).toBe(400_000);
    expect((await flaky.inner.get('data/00/p')).equals(body)).toBe(true);
  });

  it('has defaults close to the Azure SDK (4 tries, 4 s base, 120 s cap) and retries 408, 429, 500, 502, 503, 504', () => {
    expect(DEFAULT_RETRY_POLICY).toMatchObject({ maxAttempts: 4, baseDelayMs: 4000, maxDelayMs: 120_000, retryStatuses: [408, 429, 500, 502, 503, 504] });
  });
});
