/**
 * A limit on tasks running at once, and optionally on the sum of their weights (the bytes they hold). Used to keep
 * several files in flight (so one file's open, read and close latency overlaps the next file's hashing), while
 * bounding the memory the running tasks may hold.
 *
 * A task starts when fewer than `max` run and its weight fits beside theirs (a task alone always starts, however
 * heavy). Waiters run in arrival order: a finishing task starts the waiters at the head of the queue that fit, and a
 * newcomer never slips in ahead of a waiter, so neither limit is ever exceeded and a heavy task is not starved.
 *
 * @module
 */
export interface LimiterOptions {
  /** The most the running tasks' weights may add up to. @default Infinity */
  readonly maxWeight?: number;
}

export class Limiter {
  readonly #max: number;
  readonly #maxWeight: number;
  #running = 0;
  #weight = 0;
  readonly #queue: { readonly weight: number; readonly start: () => void }[] = [];

  constructor(max: number, options: LimiterOptions = {}) {
    if (!Number.isInteger(max) || max < 1) throw new RangeError(`"max" expected a whole number ≥ 1, got ${max}`);
    const maxWeight = options.maxWeight ?? Number.POSITIVE_INFINITY;
    if (!(maxWeight > 0)) throw new RangeError(`"maxWeight" expected a number > 0, got ${maxWeight}`);
    this.#max = max;
    this.#maxWeight = maxWeight;
  }

  /** Tasks running now. */
  get running(): number {
    return this.#running;
  }

  /** The sum of the running tasks' weights. */
  get weight(): number {
    return this.#weight;
  }

  /** Waits until `task` may start (see the module comment), runs it, then lets the next ones start. */
  async run<T>(task: () => Promise<T>, weight = 0): Promise<T> {
    const release = await this.acquire(weight);
    try {
      return await task();
    } finally {
      release();
    }
  }

  /**
   * Waits until a task of `weight` may start, as {@link run} does, and resolves to the function that ends it: for a
   * task that is not one function call (it starts here and ends in a callback elsewhere). Call it exactly once.
   */
  async acquire(weight = 0): Promise<() => void> {
    if (this.#queue.length === 0 && this.#fits(weight)) this.#take(weight);
    else await new Promise<void>((start) => this.#queue.push({ weight, start })); // taken for it before it starts
    return () => {
      this.#running--;
      this.#weight -= weight;
      while (this.#queue.length > 0 && this.#fits(this.#queue[0]!.weight)) {
        const next = this.#queue.shift()!;
        this.#take(next.weight);
        next.start();
      }
    };
  }

  #fits(weight: number): boolean {
    return this.#running < this.#max && (this.#running === 0 || this.#weight + weight <= this.#maxWeight);
  }

  #take(weight: number): void {
    this.#running++;
    this.#weight += weight;
  }
}
