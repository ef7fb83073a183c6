/**
 * Gathers calls into batches, for the addon's jobs that take many items at once: the calls made in one turn of the
 * event loop (up to `max` of them) become one call of `run`, and each caller gets its own result.
 *
 * Why: a thread-pool job per small file costs two thread hand-offs and a promise, which for files of a few KiB is
 * more than the work itself. Callers need not know: they call once per item, as before, and several items in flight
 * at once (files run several at a time) share jobs. Batches are started at once when full, else after the current
 * turn (setImmediate), so a lone call waits no longer than that. With a `weight` per input, a batch also closes
 * before its weights would pass `maxWeight` (an input heavier than that alone is a batch of one).
 *
 * @module
 */

/** Bounds a batch by the sum of its inputs' weights, besides their count. */
export interface BatchWeight<In> {
  readonly weight: (input: In) => number;
  readonly maxWeight: number;
}

/** `run` takes the inputs of one batch and resolves to one output per input, in order. */
export function batched<In, Out>(max: number, run: (inputs: In[]) => Promise<ArrayLike<Out>>, by?: BatchWeight<In>): (input: In) => Promise<Out> {
  if (!Number.isInteger(max) || max < 1) throw new RangeError(`"max" expected a whole number ≥ 1, got ${max}`);
  type Waiter = { input: In; resolve: (out: Out) => void; reject: (e: unknown) => void };
  let waiting: Waiter[] | undefined;
  let weight = 0;
  const flush = (batch: Waiter[]): void => {
    if (waiting === batch) waiting = undefined;
    let started: Promise<ArrayLike<Out>>;
    try {
      started = run(batch.map((w) => w.input));
    } catch (e) {
      started = Promise.reject(e); // a call the addon refused outright fails every caller of the batch
    }
    started.then(
      (outs) => {
        if (outs?.length !== batch.length) batch.forEach((w) => w.reject(new Error(`internal: a batch of ${batch.length} came back with ${outs?.length} results`)));
        else batch.forEach((w, i) => w.resolve(outs[i]!));
      },
      (e: unknown) => batch.forEach((w) => w.reject(e)),
    );
  };
  return (input) =>
    new Promise<Out>((resolve, reject) => {
      const w = by ? by.weight(input) : 0;
      if (waiting && by && weight + w > by.maxWeight) flush(waiting);
      let batch = waiting;
      if (!batch) {
        weight = 0;
        const fresh: Waiter[] = [];
        waiting = batch = fresh;
        setImmediate(() => waiting === fresh && flush(fresh));
      }
      batch.push({ input, resolve, reject });
      weight += w;
      if (batch.length >= max) flush(batch);
    });
}
