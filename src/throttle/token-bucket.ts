/**
 * A byte token bucket: one budget shared by every transfer of a process.
 *
 * Tokens (bytes) accrue at the rate, up to a burst of {@link BURST_SECONDS} of the rate (at least
 * {@link MIN_BURST} bytes), so the link is never hit by a spike of a whole second's worth (kopia #2665,
 * restic #1506). A request for more than the burst is paid in slices of at most the burst. Requests are served in
 * arrival order, slice by slice, so concurrent transfers share the rate fairly.
 *
 * A waiter never sleeps longer than {@link MAX_WAIT_MS}: a new limit from {@link TokenBucket.setLimit} reaches
 * transfers in flight within that time. `unlimited` passes everything at once; `paused` passes nothing until the
 * limit changes (it is not a rate of zero). Every wait takes a signal and ends with `VP_ABORTED` when it aborts.
 * Time comes from the {@link Clock} port only, so tests move a fake clock and assert exact waits.
 *
 * @module
 */
import { throwIfAborted } from '../errors.js';
import type { Clock } from './clock.js';
import type { RateLimit } from './rate.js';

/** The burst, in seconds of the rate. */
export const BURST_SECONDS = 0.05;
/** The smallest burst, so a slow rate still moves reasonably sized writes. */
export const MIN_BURST = 16 * 1024;
/** The longest single sleep of a waiter: the latency of a limit change. */
export const MAX_WAIT_MS = 100;

export interface TokenBucketOptions {
  /** The burst, in seconds of the rate. @default BURST_SECONDS */
  readonly burstSeconds?: number;
  /** The longest single sleep of a waiter (the latency of a limit change). @default MAX_WAIT_MS */
  readonly maxWaitMs?: number;
}

export class TokenBucket {
  readonly #clock: Clock;
  readonly #burstSeconds: number;
  readonly #maxWaitMs: number;
  #limit: RateLimit;
  #tokens: number;
  #last: number;
  /** The tail of the queue of takers: each taker waits for the one before it. */
  #tail: Promise<void> = Promise.resolve();
  #waiting = 0;
  /** Bytes granted, for tests and reports. */
  granted = 0;

  constructor(clock: Clock, limit: RateLimit, options: TokenBucketOptions = {}) {
    this.#clock = clock;
    this.#burstSeconds = options.burstSeconds ?? BURST_SECONDS;
    this.#maxWaitMs = options.maxWaitMs ?? MAX_WAIT_MS;
    this.#limit = checkLimit(limit);
    this.#last = clock.now();
    this.#tokens = this.burst;
  }

  get limit(): RateLimit {
    return this.#limit;
  }

  /** The most bytes that can pass at once. */
  get burst(): number {
    return typeof this.#limit === 'number' ? Math.max(MIN_BURST, Math.round(this.#limit * this.#burstSeconds)) : MIN_BURST;
  }

  /** Changes the limit; transfers in flight follow within {@link MAX_WAIT_MS}. */
  setLimit(limit: RateLimit): void {
    this.#refill();
    this.#limit = checkLimit(limit);
    this.#tokens = Math.min(this.#tokens, this.burst);
  }

  /**
   * Passes `bytes` at once when nothing limits them (the limit is `unlimited` and no one is waiting); false
   * otherwise, and the caller then uses {@link take}. Spares the unlimited case a promise per write.
   */
  passIfUnlimited(bytes: number): boolean {
    if (this.#limit !== 'unlimited' || this.#waiting > 0) return false;
    this.granted += bytes;
    return true;
  }

  /**
   * Waits until `bytes` may pass, paying in slices of at most the burst.
   * @throws {VaultpathError} `VP_ABORTED` when `signal` aborts while waiting.
   */
  take(bytes: number, signal?: AbortSignal): Promise<void> {
    throwIfAborted(signal);
    const previous = this.#tail;
    this.#waiting++;
    const mine = previous.then(() => this.#pay(bytes, signal)).finally(() => this.#waiting--);
    // The next taker waits for this one whatever happens to it (an abort must not stall the queue).
    this.#tail = mine.catch(() => undefined);
    return mine;
  }

  async #pay(bytes: number, signal: AbortSignal | undefined): Promise<void> {
    let left = bytes;
    while (left > 0) {
      throwIfAborted(signal);
      if (this.#limit === 'unlimited') {
        this.granted += left;
        return;
      }
      this.#refill();
      if (this.#limit === 'paused') {
        await this.#clock.sleep(this.#maxWaitMs, signal);
        continue;
      }
      const slice = Math.min(left, this.burst);
      if (this.#tokens >= slice) {
        this.#tokens -= slice;
        this.granted += slice;
        left -= slice;
        continue;
      }
      const waitMs = Math.ceil(((slice - this.#tokens) / this.#limit) * 1000);
      await this.#clock.sleep(Math.min(waitMs, this.#maxWaitMs), signal);
    }
  }

  #refill(): void {
    const now = this.#clock.now();
    const elapsed = Math.max(0, now - this.#last);
    this.#last = now;
    if (typeof this.#limit === 'number') this.#tokens = Math.min(this.burst, this.#tokens + (elapsed / 1000) * this.#limit);
  }
}

function checkLimit(limit: RateLimit): RateLimit {
  if (limit === 'unlimited' || limit === 'paused') return limit;
  if (typeof limit !== 'number' || !(limit > 0) || !Number.isFinite(limit)) {
    throw new RangeError(`"limit" expected a positive number of bytes per second, "unlimited" or "paused", got ${String(limit)}`);
  }
  return limit;
}
