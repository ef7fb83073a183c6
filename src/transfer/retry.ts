/**
 * Retries as a Store decorator: capped exponential backoff with full jitter, a per-attempt timeout and an overall
 * deadline, for failures that another attempt can cure.
 *
 * The policy is data ({@link RetryPolicy}, defaults in {@link DEFAULT_RETRY_POLICY}, close to the Azure SDK's
 * StorageRetryPolicy: 4 tries, 4 s base delay, 120 s cap). A failure is retried when:
 * - it carries an HTTP status in `retryStatuses` (408, 429, 500, 502, 503, 504), waiting at least the server's
 *   `Retry-After`; or
 * - it, or an error in its `cause` chain, has a network error code in `retryErrors` (resets, refused connections,
 *   timeouts, a socket closed by the other side); or
 * - the store marked it `retryable` itself (the Azure store does so for a Content-MD5 mismatch, which means the
 *   bytes were damaged in transit); or
 * - the attempt ran out of its own time (`attemptTimeoutMs`), while the caller's signal had not aborted.
 * Everything else (400, 401, 403, 404, 407, a full disk, a conflict) fails at once.
 *
 * Contracts:
 * - Bodies are replayed: every attempt streams the {@link ReplayableBody} again from its start (from the scratch
 *   cache), and since this decorator sits outside the throttle, the re-sent bytes pay the throttle again.
 * - Each `put` is told its attempt number (`PutOptions.attempt`).
 * - After the caller's signal aborts, no further attempt starts, and a wait between attempts ends at once.
 * - No attempt starts after the deadline; the last failure is thrown as it was, its code unchanged.
 * - An attempt whose failure the store marked as progress ({@link markProgress}: a write whose blocks were partly
 *   acknowledged, resumed by the next attempt) does not count against `maxAttempts`; the deadline still bounds it.
 * - A listing that fails part-way resumes after the last name it yielded (stores list in name order), so each name
 *   is still yielded once.
 * - Opening a remote store is retried the same way ({@link retryOpen}): a refused or reset first connection does
 *   not fail the command while the policy allows another attempt.
 *
 * @module
 */
import { VaultpathError, causeChain, throwIfAborted } from '../errors.js';
import { type Clock, systemClock } from '../throttle/clock.js';
import { type Body, type CallOptions, type GetOptions, type PutOptions, type Store, type StoreObjectInfo, bodySize, madeProgress } from './store.js';

export interface RetryPolicy {
  /** Attempts in all, the first included. */
  readonly maxAttempts: number;
  /** The backoff before retry n is a random time in [0, min(maxDelayMs, baseDelayMs × 2^(n−1))]. */
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
  /** The longest one attempt may take. */
  readonly attemptTimeoutMs: number;
  /** No attempt starts later than this after the first. */
  readonly deadlineMs: number;
  /** HTTP statuses worth another attempt. */
  readonly retryStatuses: readonly number[];
  /** Network error codes (Node's and undici's) worth another attempt. */
  readonly retryErrors: readonly string[];
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = Object.freeze({
  maxAttempts: 4,
  baseDelayMs: 4_000,
  maxDelayMs: 120_000,
  attemptTimeoutMs: 10 * 60_000,
  deadlineMs: 30 * 60_000,
  retryStatuses: Object.freeze([408, 429, 500, 502, 503, 504]),
  retryErrors: Object.freeze([
    'ECONNRESET',
    'ECONNREFUSED',
    'ECONNABORTED',
    'EPIPE',
    'ETIMEDOUT',
    'ENETUNREACH',
    'EHOSTUNREACH',
    'EAI_AGAIN',
    'UND_ERR_SOCKET',
    'UND_ERR_CLOSED',
    'UND_ERR_CONNECT_TIMEOUT',
    'UND_ERR_HEADERS_TIMEOUT',
    'UND_ERR_BODY_TIMEOUT',
  ]),
});

/** What one retry was about, for counting and logging. */
export interface RetryEvent {
  readonly operation: 'open' | 'put' | 'get' | 'stat' | 'list' | 'delete' | 'download';
  readonly name: string;
  /** The attempt about to start (2 for the first retry). */
  readonly attempt: number;
  readonly delayMs: number;
  readonly error: unknown;
  /** Body bytes that will be sent again (puts). */
  readonly bytesResent: number;
}

export interface RetryOptions {
  readonly policy?: Partial<RetryPolicy>;
  /** @default systemClock */
  readonly clock?: Clock;
  /** Called before each retry's wait; must not block. */
  readonly onRetry?: (event: RetryEvent) => void;
  /** The jitter source, in [0, 1). @default Math.random */
  readonly random?: () => number;
}

/** Totals of a {@link RetryStore}: attempts made, retries among them, and body bytes sent again. */
export interface RetryStats {
  attempts: number;
  retries: number;
  bytesResent: number;
}

/** True when `policy` says `e` is worth another attempt. */
export function isRetryable(e: unknown, policy: RetryPolicy = DEFAULT_RETRY_POLICY): boolean {
  if (e instanceof VaultpathError) {
    if (e.code === 'VP_ABORTED') return false;
    if (e.status !== undefined && policy.retryStatuses.includes(e.status)) return true;
    if (e.retryable) return true;
    if (e.status !== undefined) return false;
  }
  for (const c of causeChain(e)) if (typeof c.code === 'string' && policy.retryErrors.includes(c.code)) return true;
  return false;
}

export class RetryStore implements Store {
  readonly stats: RetryStats = { attempts: 0, retries: 0, bytesResent: 0 };
  readonly policy: RetryPolicy;
  readonly #inner: Store;
  readonly #attempts: Attempts;

  constructor(inner: Store, options: RetryOptions = {}) {
    this.#inner = inner;
    this.policy = Object.freeze({ ...DEFAULT_RETRY_POLICY, ...options.policy });
    this.#attempts = new Attempts(this.policy, options, this.stats, () => this.#inner.location);
    if (inner.download) {
      this.download = (name: string, path: string, options: CallOptions = {}) =>
        this.#attempts.run('download', name, 0, options.signal, (signal) => inner.download!(name, path, { ...options, signal }));
    }
  }

  get location(): string {
    return this.#inner.location;
  }

  /** The backend's: a throttle outside this decorator pays at the wire (calls pass `pace` through). */
  get pacesWire(): boolean | undefined {
    return this.#inner.pacesWire;
  }

  download?: (name: string, path: string, options?: CallOptions) => Promise<number>;

  put(name: string, body: Body, options: PutOptions = {}): Promise<void> {
    return this.#attempts.run('put', name, bodySize(body), options.signal, (signal, attempt) => this.#inner.put(name, body, { ...options, signal, attempt }));
  }

  get(name: string, options: GetOptions = {}): Promise<Buffer> {
    return this.#attempts.run('get', name, 0, options.signal, (signal) => this.#inner.get(name, { ...options, signal }));
  }

  stat(name: string, options: CallOptions = {}): Promise<StoreObjectInfo | undefined> {
    return this.#attempts.run('stat', name, 0, options.signal, (signal) => this.#inner.stat(name, { ...options, signal }));
  }

  delete(name: string, options: CallOptions = {}): Promise<void> {
    return this.#attempts.run('delete', name, 0, options.signal, (signal) => this.#inner.delete(name, { ...options, signal }));
  }

  async *list(prefix: string, options: CallOptions = {}): AsyncIterable<StoreObjectInfo> {
    const clock = this.#attempts.clock;
    const started = clock.now();
    let last: string | undefined;
    for (let attempt = 1; ; attempt++) {
      throwIfAborted(options.signal);
      this.stats.attempts++;
      try {
        for await (const o of this.#inner.list(prefix, options)) {
          if (last !== undefined && o.name <= last) continue;
          last = o.name;
          yield o;
        }
        return;
      } catch (e) {
        await this.#attempts.backoff('list', prefix, attempt, attempt, 0, started, e, options.signal);
      }
    }
  }
}

/**
 * Opens a remote store under the retry policy: a vault whose service refuses or resets the first connections (a
 * network coming up, a service restarting) is opened once it answers, as any later call would be retried.
 * `open` is called once per attempt with that attempt's signal.
 */
export function retryOpen<T>(location: string, open: (signal: AbortSignal) => Promise<T>, options: RetryOptions & { readonly signal?: AbortSignal } = {}): Promise<T> {
  const policy = Object.freeze({ ...DEFAULT_RETRY_POLICY, ...options.policy });
  return new Attempts(policy, options, { attempts: 0, retries: 0, bytesResent: 0 }, () => location).run('open', location, 0, options.signal, open);
}

/** The attempt loop shared by every retried call: per-attempt timeout, backoff, deadline, abort. */
class Attempts {
  readonly clock: Clock;
  readonly #policy: RetryPolicy;
  readonly #stats: RetryStats;
  readonly #location: () => string;
  readonly #onRetry: ((event: RetryEvent) => void) | undefined;
  readonly #random: () => number;

  constructor(policy: RetryPolicy, options: RetryOptions, stats: RetryStats, location: () => string) {
    this.#policy = policy;
    this.#stats = stats;
    this.#location = location;
    this.clock = options.clock ?? systemClock;
    this.#onRetry = options.onRetry;
    this.#random = options.random ?? Math.random;
  }

  async run<T>(
    operation: RetryEvent['operation'],
    name: string,
    bytes: number,
    signal: AbortSignal | undefined,
    call: (signal: AbortSignal, attempt: number) => Promise<T>,
  ): Promise<T> {
    const started = this.clock.now();
    let failures = 0;
    for (let attempt = 1; ; attempt++) {
      throwIfAborted(signal);
      this.#stats.attempts++;
      const attemptSignal = new AbortController();
      const onAbort = (): void => attemptSignal.abort(signal?.reason);
      signal?.addEventListener('abort', onAbort, { once: true });
      let timedOut = false;
      const timer = this.clock.sleep(this.#policy.attemptTimeoutMs, attemptSignal.signal).then(
        () => {
          timedOut = true;
          attemptSignal.abort(new VaultpathError('VP_STORE_IO', `An attempt to ${operation} ${name} took longer than ${this.#policy.attemptTimeoutMs} ms.`));
        },
        () => undefined,
      );
      try {
        return await call(attemptSignal.signal, attempt);
      } catch (e) {
        const failure = timedOut
          ? new VaultpathError('VP_STORE_IO', `An attempt to ${operation} ${name} in ${this.#location()} took longer than ${this.#policy.attemptTimeoutMs} ms.`, { cause: e, retryable: true })
          : e;
        // An attempt that moved the operation forward (blocks acknowledged) is not counted against the limit.
        if (!madeProgress(failure)) failures++;
        await this.backoff(operation, name, attempt, Math.max(1, failures), bytes, started, failure, signal);
      } finally {
        signal?.removeEventListener('abort', onAbort);
        if (!attemptSignal.signal.aborted) attemptSignal.abort();
        await timer;
      }
    }
  }

  /** Waits before attempt `attempt + 1` (after `failures` counted failures), or throws `e` when there is to be none. */
  async backoff(
    operation: RetryEvent['operation'],
    name: string,
    attempt: number,
    failures: number,
    bytes: number,
    started: number,
    e: unknown,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    throwIfAborted(signal);
    if (failures >= this.#policy.maxAttempts || !isRetryable(e, this.#policy)) throw e;
    const cap = Math.min(this.#policy.maxDelayMs, this.#policy.baseDelayMs * 2 ** (failures - 1));
    const retryAfter = e instanceof VaultpathError ? (e.retryAfterMs ?? 0) : 0;
    const delayMs = Math.max(Math.floor(this.#random() * cap), Math.min(retryAfter, this.#policy.maxDelayMs));
    if (this.clock.now() + delayMs - started > this.#policy.deadlineMs) throw e;
    this.#stats.retries++;
    this.#stats.bytesResent += bytes;
    this.#onRetry?.({ operation, name, attempt: attempt + 1, delayMs, error: e, bytesResent: bytes });
    await this.clock.sleep(delayMs, signal);
  }
}

/** Wraps `store` so failures that another attempt can cure are retried under `options.policy`. */
export function withRetry(store: Store, options: RetryOptions = {}): RetryStore {
  return new RetryStore(store, options);
}
