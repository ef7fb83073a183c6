/**
 * Store decorators for how many requests run, and how often they start.
 *
 * - {@link withConcurrency} (p-queue): at most N requests to the store at once; each waiting request leaves the
 *   queue if its signal aborts. This bounds sockets and memory.
 * - {@link withRequestRate} (bottleneck): at most N requests started per second toward the store (an API's request
 *   quota, e.g. a storage account's operations per second). It spaces starts; it says nothing about bytes.
 * - Bytes per second are the token bucket's job ({@link withThrottle}), innermost, on the bodies.
 *
 * The order is chosen in one place, {@link storeChain}: retry (outermost) → concurrency → request
 * rate → throttle → backend. The throttle works at any other place too: these gates pass every call's options
 * (a throttle's `pace`) through and forward the store's `pacesWire`, as every decorator must (see Store).
 *
 * p-queue and bottleneck are loaded on a decorated store's first request, not with this module: most stores (a
 * local vault) use neither, and every command would pay for loading them at start-up.
 *
 * @module
 */
import type PQueue from 'p-queue';
import type Bottleneck from 'bottleneck';
import { VaultpathError, throwIfAborted } from '../errors.js';
import type { Body, CallOptions, GetOptions, PutOptions, Store, StoreObjectInfo } from './store.js';
import { type ThrottleBuckets, withThrottle } from './throttled-store.js';
import { type RetryOptions, withRetry } from './retry.js';

/** Runs each request of `store` through `run`, which decides when it may start. */
class GatedStore implements Store {
  constructor(
    private readonly inner: Store,
    private readonly run: <T>(task: () => Promise<T>, signal: AbortSignal | undefined) => Promise<T>,
  ) {
    if (inner.download) {
      this.download = (name, path, options = {}) => this.run(() => inner.download!(name, path, options), options.signal);
    }
  }

  download?: (name: string, path: string, options?: CallOptions) => Promise<number>;

  get location(): string {
    return this.inner.location;
  }
  /** Forwarded, with every call's options (its `pace`), so a throttle outside this gate still pays at the wire. */
  get pacesWire(): boolean | undefined {
    return this.inner.pacesWire;
  }
  put(name: string, body: Body, options: PutOptions = {}): Promise<void> {
    return this.run(() => this.inner.put(name, body, options), options.signal);
  }
  get(name: string, options: GetOptions = {}): Promise<Buffer> {
    return this.run(() => this.inner.get(name, options), options.signal);
  }
  stat(name: string, options: CallOptions = {}): Promise<StoreObjectInfo | undefined> {
    return this.run(() => this.inner.stat(name, options), options.signal);
  }
  list(prefix: string, options?: CallOptions): AsyncIterable<StoreObjectInfo> {
    return this.inner.list(prefix, options);
  }
  delete(name: string, options: CallOptions = {}): Promise<void> {
    return this.run(() => this.inner.delete(name, options), options.signal);
  }
}

/** At most `concurrency` requests of `store` in flight at once (p-queue). */
export function withConcurrency(store: Store, concurrency: number): Store {
  let queue: Promise<PQueue> | undefined;
  return new GatedStore(store, async (task, signal) => {
    try {
      const q = await (queue ??= import('p-queue').then(({ default: PQueueClass }) => new PQueueClass({ concurrency })));
      return (await q.add(() => task(), { signal })) as Awaited<ReturnType<typeof task>>;
    } catch (e) {
      throwIfAborted(signal); // a request that left the queue on abort reports VP_ABORTED, as every Store call does
      throw e;
    }
  });
}

/** At most `perSecond` requests of `store` started per second (bottleneck). */
export function withRequestRate(store: Store, perSecond: number): Store {
  let limiter: Promise<Bottleneck> | undefined;
  return new GatedStore(store, async (task, signal) => {
    throwIfAborted(signal);
    const l = await (limiter ??= import('bottleneck').then(({ default: BottleneckClass }) => new BottleneckClass({ minTime: Math.ceil(1000 / perSecond) })));
    throwIfAborted(signal);
    const job = l.schedule(() => task());
    if (!signal) return job;
    return new Promise((resolve, reject) => {
      const onAbort = (): void => reject(new VaultpathError('VP_ABORTED', 'The request was aborted while waiting for its turn.', { cause: signal.reason }));
      signal.addEventListener('abort', onAbort, { once: true });
      job.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
    });
  });
}

export interface StoreChainOptions extends ThrottleBuckets {
  /** Retry failures that another attempt can cure (outermost, so retried bodies pay the throttle again). @default none */
  readonly retry?: RetryOptions;
  /** Requests in flight at once. @default unlimited */
  readonly concurrency?: number;
  /** Requests started per second. @default unlimited */
  readonly requestsPerSecond?: number;
}

/** The one place the store chain is composed: retry → concurrency → request rate → throttle → backend. */
export function storeChain(backend: Store, options: StoreChainOptions = {}): Store {
  let store = withThrottle(backend, options);
  if (options.requestsPerSecond) store = withRequestRate(store, options.requestsPerSecond);
  if (options.concurrency) store = withConcurrency(store, options.concurrency);
  if (options.retry) store = withRetry(store, options.retry);
  return store;
}
