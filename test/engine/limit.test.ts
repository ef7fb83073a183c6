import { describe, expect, it } from 'vitest';
import { Limiter } from '../../src/engine/limit.js';

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
