/**
 * A limit on tasks running at once. Used to keep several files in flight (so one file's open, read and close
 * latency overlaps the next file's hashing), while bounding the memory the running tasks may hold.
 *
 * A finishing task hands its slot straight to the first waiter, so a newcomer can never slip in between and the
 * limit is never exceeded; waiters run in arrival order.
 *
 * @module
 */
export class Limiter {
  readonly #max: number;
  #running = 0;
  readonly #queue: (() => void)[] = [];

  constructor(max: number) {
    if (!Number.isInteger(max) || max < 1) throw new RangeError(`"max" expected a whole number ≥ 1, got ${max}`);
    this.#max = max;
  }

  /** Tasks running now. */
  get running(): number {
    return this.#running;
  }

  /** Waits for a free slot, runs `task`, then hands the slot on. */
  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.#running < this.#max) this.#running++;
    else await new Promise<void>((resolve) => this.#queue.push(resolve)); // the slot is handed over, already counted
    try {
      return await task();
    } finally {
      const next = this.#queue.shift();
      if (next) next();
      else this.#running--;
    }
  }
}
