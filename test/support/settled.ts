/**
 * Whether a promise settled at once: before the event loop's next I/O phase (`setImmediate`). Work done on a thread
 * or a worker reports back through the loop, so only a call that refused, or stopped waiting for such work,
 * settles that early. This orders events instead of timing them.
 */

/** What `p` rejected with, when it rejects before the next I/O phase; throws when it resolves or is still pending then. */
export async function settledBeforeIo(p: Promise<unknown>): Promise<unknown> {
  const pending = Symbol('pending');
  const first = await Promise.race([
    p.then(
      () => {
        throw new Error('expected a rejection, but it resolved');
      },
      (e: unknown) => e,
    ),
    new Promise<symbol>((r) => setImmediate(() => r(pending))),
  ]);
  if (first === pending) {
    p.catch(() => undefined);
    throw new Error('not rejected at once: the call went on past the first I/O phase');
  }
  return first;
}
