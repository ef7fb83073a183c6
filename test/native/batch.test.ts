// Calls made in one turn share a batch; every caller gets its own result or the batch's failure.
import { describe, expect, it } from 'vitest';
import { batched } from '../../src/native/batch.js';

describe('batched calls', () => {
  it('gather the calls of one turn into batches of at most max, each caller getting its own result', async () => {
    const batches: number[][] = [];
    const double = batched(4, async (xs: number[]) => {
      batches.push(xs);
      return xs.map((x) => x * 2);
    });
    const results = await Promise.all([1, 2, 3, 4, 5, 6].map(double));
    expect(results).toEqual([2, 4, 6, 8, 10, 12]);
    expect(batches).toEqual([[1, 2, 3, 4], [5, 6]]);
    expect(await double(7)).toBe(14); // a lone call goes after its turn
    expect(batches.at(-1)).toEqual([7]);
  });

  it('fail every caller of a batch that fails, and only those', async () => {
    let n = 0;
    const run = batched(2, async (xs: string[]) => {
      if (n++ === 0) throw new Error('the job failed');
      return xs;
    });
    const outcomes = await Promise.allSettled(['a', 'b', 'c'].map(run));
    expect(outcomes.map((o) => o.status)).toEqual(['rejected', 'rejected', 'fulfilled']);
    const thrower = batched(2, (): Promise<number[]> => {
      throw new TypeError('refused');
    });
    await expect(thrower(1)).rejects.toThrow('refused');
  });

  it('fail every caller when a batch comes back with the wrong number of results, leaving none waiting', async () => {
    const short = batched(4, async (xs: number[]) => xs.slice(1));
    const outcomes = await Promise.allSettled([1, 2, 3].map(short));
    expect(outcomes.map((o) => o.status)).toEqual(['rejected', 'rejected', 'rejected']);
  });

  it('close a batch before its weights would pass maxWeight; an input heavier than that goes alone', async () => {
    const batches: number[][] = [];
    const run = batched(
      4,
      async (xs: number[]) => {
        batches.push(xs);
        return xs;
      },
      { weight: (x) => x, maxWeight: 10 },
    );
    expect(await Promise.all([3, 4, 3, 1, 20, 5, 5, 1].map(run))).toEqual([3, 4, 3, 1, 20, 5, 5, 1]);
    expect(batches).toEqual([[3, 4, 3], [1], [20], [5, 5], [1]]);
  });

  it('refuse a batch size that is not a whole number of at least 1', () => {
    expect(() => batched(0, async () => [])).toThrow(RangeError);
    expect(() => batched(1.5, async () => [])).toThrow(RangeError);
  });
});
