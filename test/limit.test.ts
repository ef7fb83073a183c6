import { describe, expect, it } from 'vitest';
import { Limiter } from '../src/limit.js';

describe('Limiter', () => {
  it('never runs more than its limit, even when newcomers arrive as slots free up', async () => {
    const limiter = new Limiter(3);
    let running = 0;
    let peak = 0;
    const task = async (ms: number): Promise<void> => {
      running++;
      peak = Math.max(peak, running);
      await new Promise((r) => setTimeout(r, ms));
      running--;
    };
    const all: Promise<void>[] = [];
    for (let i = 0; i < 30; i++) {
      all.push(limiter.run(() => task(i % 5)));
      if (i % 7 === 0) await new Promise((r) => setTimeout(r, 1));
    }
    await Promise.all(all);
    expect(peak).toBe(3);
    expect(limiter.running).toBe(0);
  });

  it('runs waiters in arrival order and passes on errors without losing the slot', async () => {
    const limiter = new Limiter(1);
    const order: number[] = [];
    const failing = limiter.run(async () => {
      throw new Error('boom');
    });
    const rest = [1, 2, 3].map((n) => limiter.run(async () => void order.push(n)));
    await expect(failing).rejects.toThrow('boom');
    await Promise.all(rest);
    expect(order).toEqual([1, 2, 3]);
    expect(limiter.running).toBe(0);
  });
});

describe('Limiter with weights', () => {
  it('keeps the running weights within the limit, starts a heavy task alone, and keeps arrival order', async () => {
    const limiter = new Limiter(10, { maxWeight: 100 });
    let weight = 0;
    let peak = 0;
    const started: number[] = [];
    const task = (n: number, w: number) => async (): Promise<void> => {
      started.push(n);
      weight += w;
      peak = Math.max(peak, weight);
      if (limiter.running > 1) expect(Math.max(weight, limiter.weight)).toBeLessThanOrEqual(100);
      await new Promise((r) => setTimeout(r, 1 + (n % 3)));
      weight -= w;
    };
    const weights = [30, 30, 30, 250, 10, 60, 50, 5, 5, 5, 90, 40];
    await Promise.all(weights.map((w, n) => limiter.run(task(n, w), w)));
    expect(started).toEqual(weights.map((_, n) => n)); // the 250 waited for the room to empty, and nothing passed it
    expect(peak).toBe(250); // alone: every other moment stayed within 100
    expect(limiter.running).toBe(0);
    expect(limiter.weight).toBe(0);
  });

  it('still caps the number of tasks when their weights are small', async () => {
    const limiter = new Limiter(2, { maxWeight: 1000 });
    let running = 0;
    let peak = 0;
    await Promise.all(
      Array.from({ length: 8 }, () =>
        limiter.run(async () => {
          peak = Math.max(peak, ++running);
          await new Promise((r) => setTimeout(r, 1));
          running--;
        }, 1),
      ),
    );
    expect(peak).toBe(2);
  });
});
