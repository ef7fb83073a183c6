/**
 * The throttle as a Store decorator: request bodies (uploads) and response bodies (downloads) pay their bytes to
 * token buckets shared by every transfer of the process.
 *
 * A backend that buffers bodies before sending them (the Azure store: a block and its Content-MD5) declares
 * `pacesWire`, and is given a `pace` function instead, which it awaits for each piece as the piece goes on the wire;
 * paying while the body is read would let the buffered bytes leave in bursts.
 *
 * storeChain puts it innermost, right around the backend (`withRetry(withConcurrency(withThrottle(backend)))`), so a
 * body sent again on a retry streams through the bucket again and is paid again. It reads nothing of the backend
 * but the Store interface: decorators between them forward `pacesWire` and pass `pace` through, and a throttle
 * inside another forwards both too, paying its own bucket and the outer one's. A body that
 * offers a local file path has the path withheld, so a local store must stream it (and pay for it) rather than take
 * it by hard link.
 *
 * @module
 */
import type { TokenBucket } from '../throttle/token-bucket.js';
import {
  type Body,
  type CallOptions,
  type GetOptions,
  type PutOptions,
  type Store,
  type StoreObjectInfo,
  bodySize,
  bodyStream,
  downloadTo,
} from './store.js';

/** Bytes paid per step while streaming: small enough that a transfer follows the rate smoothly. */
const STEP = 64 * 1024;

export interface ThrottleBuckets {
  /** Pays for request bodies (uploads). */
  readonly upload?: TokenBucket;
  /** Pays for response bodies (downloads). */
  readonly download?: TokenBucket;
}

export class ThrottledStore implements Store {
  readonly #inner: Store;
  readonly #buckets: ThrottleBuckets;

  constructor(inner: Store, buckets: ThrottleBuckets) {
    this.#inner = inner;
    this.#buckets = buckets;
  }

  get location(): string {
    return this.#inner.location;
  }

  /** Forwarded, as every decorator does: a throttle outside this one then pays at the same wire. */
  get pacesWire(): boolean | undefined {
    return this.#inner.pacesWire;
  }

  put(name: string, body: Body, options: PutOptions = {}): Promise<void> {
    const bucket = this.#buckets.upload;
    if (!bucket) return this.#inner.put(name, body, options);
    if (this.#inner.pacesWire) return this.#inner.put(name, body, { ...options, pace: payer(bucket, options.pace) });
    const { signal } = options;
    const paid = {
      size: bodySize(body),
      async *stream(): AsyncIterable<Uint8Array> {
        for await (const chunk of bodyStream(body)) {
          if (bucket.passIfUnlimited(chunk.length)) {
            yield chunk;
            continue;
          }
          for (let o = 0; o < chunk.length; o += STEP) {
            const piece = chunk.subarray(o, Math.min(chunk.length, o + STEP));
            await bucket.take(piece.length, signal);
            yield piece;
          }
        }
      },
    };
    return this.#inner.put(name, paid, options);
  }

  async get(name: string, options: GetOptions = {}): Promise<Buffer> {
    if (this.#inner.pacesWire && this.#buckets.download) return this.#inner.get(name, { ...options, pace: payer(this.#buckets.download, options.pace) });
    const data = await this.#inner.get(name, options);
    const bucket = this.#buckets.download;
    if (bucket && !bucket.passIfUnlimited(data.length)) {
      for (let o = 0; o < data.length; o += STEP) await bucket.take(Math.min(STEP, data.length - o), options.signal);
    }
    return data;
  }

  /** Downloads through the inner store, then pays for the bytes before returning (the next download waits). */
  async download(name: string, path: string, options: CallOptions = {}): Promise<number> {
    if (this.#inner.pacesWire && this.#buckets.download) return downloadTo(this.#inner, name, path, { ...options, pace: payer(this.#buckets.download, options.pace) });
    const size = await downloadTo(this.#inner, name, path, options);
    const bucket = this.#buckets.download;
    if (bucket && !bucket.passIfUnlimited(size)) {
      for (let o = 0; o < size; o += STEP) await bucket.take(Math.min(STEP, size - o), options.signal);
    }
    return size;
  }

  stat(name: string, options?: CallOptions): Promise<StoreObjectInfo | undefined> {
    return this.#inner.stat(name, options);
  }

  list(prefix: string, options?: CallOptions): AsyncIterable<StoreObjectInfo> {
    return this.#inner.list(prefix, options);
  }

  delete(name: string, options?: CallOptions): Promise<void> {
    return this.#inner.delete(name, options);
  }
}

/**
 * Pays `bucket` for bytes in slices of {@link STEP}, as a backend that paces its wire asks; then `outer`, the pace
 * of a throttle outside this one, so nested throttles (a vault's limit inside the process's) each get paid.
 */
function payer(bucket: TokenBucket, outer?: (bytes: number, signal?: AbortSignal) => Promise<void>): (bytes: number, signal?: AbortSignal) => Promise<void> {
  return async (bytes, signal) => {
    if (outer) await outer(bytes, signal);
    if (bucket.passIfUnlimited(bytes)) return;
    for (let o = 0; o < bytes; o += STEP) await bucket.take(Math.min(STEP, bytes - o), signal);
  };
}

/** Wraps `store` so its bodies pay `buckets`. */
export function withThrottle(store: Store, buckets: ThrottleBuckets): Store {
  return buckets.upload || buckets.download ? new ThrottledStore(store, buckets) : store;
}
