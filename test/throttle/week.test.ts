/**
 * A simulated week with a backlog: the bucket follows the schedule, and in every span between two rate changes
 * the bytes moved equal rate × duration within 1%. Slices of 5 s keep the week to about 120,000 simulated wake-ups;
 * the 50 ms burst bound itself is tested in token-bucket.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { Schedule, type Timetable } from '../../src/throttle/schedule.js';
import { TokenBucket } from '../../src/throttle/token-bucket.js';
import type { RateLimit } from '../../src/throttle/rate.js';
import { FakeClock } from '../support/fake-clock.js';

const MiB = 2 ** 20;
const utc = (iso: string): number => Date.parse(`${iso}Z`);

describe('a simulated week with a backlog', () => {
  it('moves rate × duration in every span, switching exactly at each edge, across midnight and a DST change', async () => {
    const timetable: Timetable = {
      timeZone: 'Europe/Berlin',
      otherwise: 4 * MiB,
      windows: [
        { days: [1, 2, 3, 4, 5], start: 9 * 60, end: 18 * 60, rate: MiB }, // work hours
        { days: [5], start: 22 * 60, end: 2 * 60, rate: 2 * MiB }, // Friday night, across midnight
      ],
    };
    const clock = new FakeClock(utc('2026-03-27T00:00:00')); // Friday; Berlin springs forward on Sunday
    const bucket = new TokenBucket(clock, 'unlimited', { burstSeconds: 5, maxWaitMs: 5000 });
    const changes: { at: number; rate: RateLimit; granted: number }[] = [];
    const target = {
      setLimit(rate: RateLimit): void {
        if (changes.at(-1)?.rate !== rate) changes.push({ at: clock.now(), rate, granted: bucket.granted });
        bucket.setLimit(rate);
      },
    };
    const controller = new AbortController();
    const schedule = new Schedule(timetable, [target], clock).run(controller.signal);
    const backlog = (async () => {
      for (;;) await bucket.take(64 * MiB, controller.signal);
    })().catch(() => undefined);
    for (let hour = 0; hour < 7 * 24; hour++) await clock.advance(3_600_000, { microtasksOnly: true });
    controller.abort();
    await schedule;
    await backlog;

    expect(changes.map((c) => [new Date(c.at).toISOString(), (c.rate as number) / MiB])).toEqual([
      ['2026-03-27T00:00:00.000Z', 4], // Friday 01:00 CET
      ['2026-03-27T08:00:00.000Z', 1], // 09:00 CET, work hours
      ['2026-03-27T17:00:00.000Z', 4], // 18:00
      ['2026-03-27T21:00:00.000Z', 2], // 22:00, Friday night
      ['2026-03-28T01:00:00.000Z', 4], // Saturday 02:00 CET, after midnight
      ['2026-03-30T07:00:00.000Z', 1], // Monday 09:00 CEST, after the DST change
      ['2026-03-30T16:00:00.000Z', 4],
      ['2026-03-31T07:00:00.000Z', 1],
      ['2026-03-31T16:00:00.000Z', 4],
      ['2026-04-01T07:00:00.000Z', 1],
      ['2026-04-01T16:00:00.000Z', 4],
      ['2026-04-02T07:00:00.000Z', 1],
      ['2026-04-02T16:00:00.000Z', 4],
    ]);
    for (let i = 0; i + 1 < changes.length; i++) {
      const span = changes[i]!;
      const next = changes[i + 1]!;
      const expected = ((span.rate as number) * (next.at - span.at)) / 1000;
      const moved = next.granted - span.granted;
      expect(Math.abs(moved - expected) / expected, `${new Date(span.at).toISOString()} at ${(span.rate as number) / MiB} MiB/s`).toBeLessThan(0.01);
    }
  }, 60_000);
});
