/**
 * A fake Clock: time moves only when the test advances it, firing due sleeps in order and letting the code under
 * test run (microtasks and immediates) between them. Tests then assert exact waits in simulated time.
 */
import { VaultpathError } from '../../src/errors.js';
import type { Clock } from '../../src/throttle/clock.js';

interface Timer {
  readonly at: number;
  readonly seq: number;
  readonly resolve: () => void;
}

const settle = (): Promise<void> => new Promise((r) => setImmediate(r));
/** Lets promise chains run without waiting for I/O: enough for pure code such as the bucket and the schedule. */
const settleMicrotasks = async (): Promise<void> => {
  for (let i = 0; i < 20; i++) await Promise.resolve();
};

export class FakeClock implements Clock {
  #now: number;
  #seq = 0;
  readonly #timers: Timer[] = [];

  constructor(start = Date.UTC(2026, 10, 23, 0, 0, 0)) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(new VaultpathError('VP_ABORTED', 'aborted', { cause: signal.reason }));
    return new Promise((resolve, reject) => {
      const timer: Timer = {
        at: this.#now + Math.max(0, ms),
        seq: this.#seq++,
        resolve: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
      };
      const onAbort = (): void => {
        const i = this.#timers.indexOf(timer);
        if (i >= 0) this.#timers.splice(i, 1);
        reject(new VaultpathError('VP_ABORTED', 'aborted', { cause: signal?.reason }));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#timers.push(timer);
    });
  }

  /** Pending sleeps. */
  get pending(): number {
    return this.#timers.length;
  }

  /**
   * Advances simulated time by `ms`, firing every sleep that falls due, in order. With `microtasksOnly`, code runs
   * between timers only through promise chains (fast; for code under test that does no I/O).
   */
  async advance(ms: number, options: { microtasksOnly?: boolean } = {}): Promise<void> {
    const target = this.#now + ms;
    const wait = options.microtasksOnly ? settleMicrotasks : settle;
    for (;;) {
      await wait();
      this.#timers.sort((a, b) => a.at - b.at || a.seq - b.seq);
      const next = this.#timers[0];
      if (!next || next.at > target) break;
      this.#timers.shift();
      this.#now = next.at;
      next.resolve();
    }
    this.#now = target;
    await settle();
  }
}
