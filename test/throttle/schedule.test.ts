import { describe, expect, it } from 'vitest';
import {
  type RateTarget,
  Schedule,
  type Timetable,
  checkTimetable,
  estimateCompletion,
  nextChange,
  parseHours,
  parseWeekdays,
  rateAt,
  workHours,
} from '../../src/throttle/schedule.js';
import type { RateLimit } from '../../src/throttle/rate.js';
import { FakeClock } from '../support/fake-clock.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const utc = (iso: string): number => Date.parse(`${iso}Z`);
const WORK = 512 * KiB;
const OFF = 8 * MiB;

// Berlin: CET (UTC+1) in winter, CEST (UTC+2) from 2026-03-29 02:00 local.
const officeHours = workHours({ days: parseWeekdays('mon-fri'), hours: parseHours('09:00-18:00'), workRate: WORK, offRate: OFF, timeZone: 'Europe/Berlin' });

describe('schedule syntax', () => {
  it('reads weekdays as ranges and lists, wrapping around the week', () => {
    expect(parseWeekdays('mon-fri')).toEqual([1, 2, 3, 4, 5]);
    expect(parseWeekdays('sat,sun')).toEqual([0, 6]);
    expect(parseWeekdays('fri-mon')).toEqual([0, 1, 5, 6]);
    expect(() => parseWeekdays('funday')).toThrow(/not a weekday/);
  });

  it('reads hours, including a span across midnight', () => {
    expect(parseHours('09:00-18:00')).toEqual({ start: 540, end: 1080 });
    expect(parseHours('22:00-06:00')).toEqual({ start: 1320, end: 360 });
    expect(() => parseHours('9-18')).toThrow(/HH:MM-HH:MM/);
    expect(() => parseHours('25:00-26:00')).toThrow(RangeError);
  });
});

describe('rates through the week', () => {
  it('apply the work rate in work hours on work days, and the other rate at all other times', () => {
    expect(rateAt(officeHours, utc('2026-11-23T09:00:00'))).toBe(WORK); // Monday 10:00 in Berlin
    expect(rateAt(officeHours, utc('2026-11-23T07:59:59'))).toBe(OFF); // Monday 08:59:59
    expect(rateAt(officeHours, utc('2026-11-23T17:00:00'))).toBe(OFF); // Monday 18:00: the end is exclusive
    expect(rateAt(officeHours, utc('2026-11-28T10:00:00'))).toBe(OFF); // Saturday
  });

  it('find the next edge exactly, in local time', () => {
    expect(nextChange(officeHours, utc('2026-11-23T07:30:00'))).toBe(utc('2026-11-23T08:00:00')); // 09:00 Berlin
    expect(nextChange(officeHours, utc('2026-11-23T08:00:00'))).toBe(utc('2026-11-23T17:00:00')); // 18:00 Berlin
    // Friday evening: the next edge is Monday morning, across the weekend.
    expect(nextChange(officeHours, utc('2026-11-27T17:00:00'))).toBe(utc('2026-11-30T08:00:00'));
  });

  it('run a window across midnight into the next day, and across the week rollover', () => {
    const nights: Timetable = { timeZone: 'Europe/Berlin', otherwise: OFF, windows: [{ days: [5, 6], ...parseHours('22:00-06:00'), rate: WORK }] };
    expect(rateAt(nights, utc('2026-11-27T22:30:00'))).toBe(WORK); // Friday 23:30
    expect(rateAt(nights, utc('2026-11-28T04:59:00'))).toBe(WORK); // Saturday 05:59
    expect(nextChange(nights, utc('2026-11-28T04:00:00'))).toBe(utc('2026-11-28T05:00:00')); // Saturday 06:00
    expect(rateAt(nights, utc('2026-11-29T04:00:00'))).toBe(WORK); // Sunday 05:00, from Saturday's window
    expect(rateAt(nights, utc('2026-11-30T04:00:00'))).toBe(OFF); // Monday 05:00: Sunday has no window
  });

  it('follow a daylight-saving change: 09:00 is 08:00 UTC before it and 07:00 UTC after it', () => {
    const daily = workHours({ days: parseWeekdays('sun-sat'), hours: parseHours('09:00-18:00'), workRate: WORK, offRate: OFF, timeZone: 'Europe/Berlin' });
    expect(nextChange(daily, utc('2026-03-28T01:00:00'))).toBe(utc('2026-03-28T08:00:00'));
    expect(nextChange(daily, utc('2026-03-28T23:00:00'))).toBe(utc('2026-03-29T07:00:00'));
  });

  it('start a window whose start falls in the skipped hour when the clock jumps past it', () => {
    const gap: Timetable = { timeZone: 'Europe/Berlin', otherwise: OFF, windows: [{ days: [0], start: 150, end: 240, rate: WORK }] }; // 02:30-04:00
    // 2026-03-29: local 02:00 CET jumps to 03:00 CEST (01:00 UTC); 02:30 never happens.
    expect(nextChange(gap, utc('2026-03-29T00:00:00'))).toBe(utc('2026-03-29T01:00:00'));
    expect(nextChange(gap, utc('2026-03-29T01:00:00'))).toBe(utc('2026-03-29T02:00:00')); // 04:00 CEST
  });
});

describe('estimateCompletion', () => {
  it('finishes a transfer across an edge: a minute at the off rate, then the rest at the work rate', () => {
    const from = utc('2026-11-23T07:59:00'); // Monday 08:59 Berlin
    const bytes = 60 * OFF + 60 * WORK;
    expect(estimateCompletion(bytes, officeHours, from)).toBe(utc('2026-11-23T08:01:00'));
  });

  it('says never for a transfer that stays paused', () => {
    const paused: Timetable = { timeZone: 'UTC', otherwise: 'paused', windows: [] };
    expect(estimateCompletion(1, paused, 0)).toBeUndefined();
  });
});

describe('the agent profile', () => {
  it('refuses rates outside 512 Kbps to 1,023 MBps, unless turned off, and unknown zones always', () => {
    const slow = { ...officeHours, otherwise: 100_000 / 8 };
    expect(() => checkTimetable(slow)).toThrow(expect.objectContaining({ code: 'VP_SCHEDULE', message: expect.stringMatching(/512 Kbps to 1,023 MBps/) }));
    expect(checkTimetable(slow, 'any')).toBe(slow);
    expect(() => checkTimetable({ ...officeHours, timeZone: 'Mars/Olympus_Mons' }, 'any')).toThrow(/not a time zone/);
  });
});

describe('the schedule', () => {
  it('sets each new rate exactly at its edge through a week that includes a DST change, with one sleep per edge', async () => {
    const clock = new FakeClock(utc('2026-03-27T12:00:00')); // Friday, before the spring-forward on Sunday
    const calls: [number, RateLimit][] = [];
    const target: RateTarget = { setLimit: (r) => calls.push([clock.now(), r]) };
    const controller = new AbortController();
    const running = new Schedule(officeHours, [target], clock).run(controller.signal);
    for (let h = 0; h < 7 * 24; h++) await clock.advance(60 * 60_000);
    controller.abort();
    await running;
    const changes = calls.filter((c, i) => i === 0 || c[1] !== calls[i - 1]![1]);
    expect(changes.map(([t, r]) => [new Date(t).toISOString(), r])).toEqual([
      ['2026-03-27T12:00:00.000Z', WORK], // Friday 13:00 CET
      ['2026-03-27T17:00:00.000Z', OFF], // Friday 18:00 CET
      ['2026-03-30T07:00:00.000Z', WORK], // Monday 09:00 CEST: after the change, an hour earlier in UTC
      ['2026-03-30T16:00:00.000Z', OFF],
      ['2026-03-31T07:00:00.000Z', WORK],
      ['2026-03-31T16:00:00.000Z', OFF],
      ['2026-04-01T07:00:00.000Z', WORK],
      ['2026-04-01T16:00:00.000Z', OFF],
      ['2026-04-02T07:00:00.000Z', WORK],
      ['2026-04-02T16:00:00.000Z', OFF],
      ['2026-04-03T07:00:00.000Z', WORK],
    ]);
    expect(calls.length).toBeLessThanOrEqual(changes.length + 2); // it sleeps until each edge; it does not poll
  });
});
