/**
 * The `Clock` port: the only way vaultpath reads the time or waits.
 *
 * Token buckets, schedules, retry backoff, credential expiry and report names all take a Clock, so tests move a
 * fake one and assert exact waits. {@link systemClock} is the one place that reads the wall clock.
 *
 * @module
 */
import { VaultpathError } from '../errors.js';

export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number;
  /**
   * Resolves after `ms` milliseconds. MUST reject with `VP_ABORTED` as soon as `signal` aborts (or at once if it
   * already has), and MUST NOT keep the process alive after an abort.
   */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

/** The real clock. */
export const systemClock: Clock = Object.freeze({
  now: () => Date.now(),
  sleep: (ms: number, signal?: AbortSignal): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      const aborted = (): VaultpathError => new VaultpathError('VP_ABORTED', 'The wait was aborted.', { cause: signal?.reason });
      if (signal?.aborted) return reject(aborted());
      const onAbort = (): void => {
        clearTimeout(timer);
        reject(aborted());
      };
      const timer = setTimeout(() => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      }, Math.max(0, ms));
      signal?.addEventListener('abort', onAbort, { once: true });
    }),
});
