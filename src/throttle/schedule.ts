/**
 * Work hours and non-work hours: which rate applies when, in a named time zone.
 *
 * A {@link Timetable} lists windows (weekdays, a start and an end in local wall-clock time, a rate) and a rate for
 * all other times. The agent's setting, "work days, work hours, work rate, non-work rate", is the timetable with
 * one window per work day ({@link workHours}); rclone-style timetables with several windows per day are the
 * general case. A window whose end is not after its start crosses midnight: it runs from its start on each of its
 * days to its end on the next day. When windows overlap, the first listed wins.
 *
 * Local time is read through `Intl` in the timetable's IANA zone, never assumed from an offset, so midnight, the
 * week's rollover and daylight-saving changes fall where the wall clock says (rclone #1268 switched at the wrong
 * time at the day change). Edges are found exactly: every zone's offset is a whole number of minutes, so the rate
 * can only change on a UTC minute boundary, and {@link nextChange} finds the first one where it does.
 *
 * {@link Schedule} applies a timetable to token buckets: it sets the limit, sleeps on the Clock until the next
 * edge, and sets it again. It never polls.
 *
 * @module
 */
import { VaultpathError, throwIfAborted } from '../errors.js';
import type { Clock } from './clock.js';
import type { RateLimit } from './rate.js';

/** 0 = Sunday … 6 = Saturday. */
export type Weekday = 0 | 1 | 2 | 3 | 4 | 5 | 6;

export interface TimeWindow {
  readonly days: readonly Weekday[];
  /** Minutes after local midnight, 0–1439. */
  readonly start: number;
  /** Minutes after local midnight, 0–1440; not after `start` means the window crosses midnight. */
  readonly end: number;
  readonly rate: RateLimit;
}

export interface Timetable {
  /** IANA zone, e.g. `Europe/Berlin`. */
  readonly timeZone: string;
  readonly windows: readonly TimeWindow[];
  /** The rate outside every window. */
  readonly otherwise: RateLimit;
}

const MINUTE = 60_000;
const DAY_NAMES = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] as const;

/** The system's time zone. */
export function systemTimeZone(): string {
  return new Intl.DateTimeFormat().resolvedOptions().timeZone;
}

/**
 * The agent's work-hours setting as a timetable.
 * @example
 * ```ts
 * workHours({ days: parseWeekdays('mon-fri'), hours: parseHours('09:00-18:00'), workRate: parseRate('4Mbps'),
 *   offRate: parseRate('50MB/s'), timeZone: 'Europe/Berlin' });
 * ```
 */
export function workHours(o: {
  days: readonly Weekday[];
  hours: { start: number; end: number };
  workRate: RateLimit;
  offRate: RateLimit;
  timeZone?: string;
}): Timetable {
  const timeZone = checkTimeZone(o.timeZone ?? systemTimeZone());
  return { timeZone, windows: [{ days: [...o.days], start: o.hours.start, end: o.hours.end, rate: o.workRate }], otherwise: o.offRate };
}

/** Parses `mon-fri`, `sat,sun`, `mon,wed-fri` (ranges may wrap: `fri-mon`). @throws {RangeError} */
export function parseWeekdays(text: string): Weekday[] {
  const days = new Set<Weekday>();
  const index = (name: string): Weekday => {
    const i = DAY_NAMES.indexOf(name.trim().toLowerCase().slice(0, 3) as (typeof DAY_NAMES)[number]);
    if (i < 0 || name.trim().length < 3) throw new RangeError(`"${name.trim()}" is not a weekday: use mon, tue, wed, thu, fri, sat, sun`);
    return i as Weekday;
  };
  for (const part of text.split(',')) {
    const [a, b] = part.split('-');
    if (b === undefined) days.add(index(a!));
    else for (let d = index(a!), end = index(b); ; d = ((d + 1) % 7) as Weekday) {
      days.add(d);
      if (d === end) break;
    }
  }
  return [...days].sort();
}

/** Parses `09:00-18:00` (or `22:00-06:00`, across midnight) into minutes after midnight. @throws {RangeError} */
export function parseHours(text: string): { start: number; end: number } {
  const m = /^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$/.exec(text);
  const minutes = (h: string, mm: string): number => Number(h) * 60 + Number(mm);
  if (!m || Number(m[1]) > 23 || Number(m[2]) > 59 || Number(m[3]) > 24 || Number(m[4]) > 59 || (Number(m[3]) === 24 && Number(m[4]) !== 0)) {
    throw new RangeError(`"${text}" is not a span of hours: write HH:MM-HH:MM, e.g. 09:00-18:00 or 22:00-06:00`);
  }
  const start = minutes(m[1]!, m[2]!);
  const end = minutes(m[3]!, m[4]!);
  if (start === end) throw new RangeError(`"${text}" starts and ends at the same time`);
  return { start, end };
}

/** The agent's documented range for throttled rates: 512 Kbps to 1,023 MBps. */
export const AGENT_RATE_RANGE = Object.freeze({ min: 512_000 / 8, max: 1_023_000_000 });

/**
 * Checks a timetable: a known zone, sane windows, and, with the `agent` profile, every numeric rate within the
 * agent's range.
 * @throws {VaultpathError} `VP_SCHEDULE`.
 */
export function checkTimetable(t: Timetable, profile: 'agent' | 'any' = 'agent'): Timetable {
  checkTimeZone(t.timeZone);
  for (const w of t.windows) {
    if (w.days.length === 0 || w.days.some((d) => !Number.isInteger(d) || d < 0 || d > 6)) throw scheduleError('a window has no valid weekdays');
    if (!(w.start >= 0 && w.start < 1440 && w.end > 0 && w.end <= 1440)) throw scheduleError('a window has hours outside 00:00-24:00');
  }
  if (profile === 'agent') {
    for (const rate of [t.otherwise, ...t.windows.map((w) => w.rate)]) {
      if (typeof rate === 'number' && (rate < AGENT_RATE_RANGE.min || rate > AGENT_RATE_RANGE.max)) {
        throw scheduleError(
          `a rate of ${Math.round(rate * 8)} bits/s is outside the agent's range of 512 Kbps to 1,023 MBps; choose one inside it, ` +
            'or turn the agent profile off',
        );
      }
    }
  }
  return t;
}

// ---- evaluation --------------------------------------------------------------------------------------------

const formatters = new Map<string, Intl.DateTimeFormat>();

/** Local weekday and minute of the day at instant `t` in `zone`. */
function localTime(zone: string, t: number): { weekday: Weekday; minute: number } {
  let f = formatters.get(zone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', { timeZone: zone, weekday: 'short', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
    formatters.set(zone, f);
  }
  let weekday = 0;
  let hour = 0;
  let minute = 0;
  for (const p of f.formatToParts(t)) {
    if (p.type === 'weekday') weekday = DAY_NAMES.indexOf(p.value.toLowerCase() as (typeof DAY_NAMES)[number]);
    else if (p.type === 'hour') hour = Number(p.value);
    else if (p.type === 'minute') minute = Number(p.value);
  }
  return { weekday: weekday as Weekday, minute: hour * 60 + minute };
}

/** The rate in force at instant `t` (ms since the epoch). */
export function rateAt(t: Timetable, at: number): RateLimit {
  const { weekday, minute } = localTime(t.timeZone, at);
  const yesterday = ((weekday + 6) % 7) as Weekday;
  for (const w of t.windows) {
    const crosses = w.end <= w.start;
    if (!crosses) {
      if (w.days.includes(weekday) && minute >= w.start && minute < w.end) return w.rate;
    } else if ((w.days.includes(weekday) && minute >= w.start) || (w.days.includes(yesterday) && minute < w.end)) {
      return w.rate;
    }
  }
  return t.otherwise;
}

/**
 * The first instant after `from` when the rate changes, or `undefined` when it never changes within 8 days (a
 * timetable with a single rate). Exact: rates change only on minute boundaries.
 */
export function nextChange(t: Timetable, from: number): number | undefined {
  const current = rateAt(t, from);
  let at = Math.floor(from / MINUTE) * MINUTE + MINUTE;
  for (const horizon = from + 8 * 1440 * MINUTE; at <= horizon; at += MINUTE) {
    if (rateAt(t, at) !== current) return at;
  }
  return undefined;
}

/**
 * When a transfer of `bytes` starting at `from` will finish under the timetable, moving at full rate throughout;
 * `undefined` when it never will (paused with no change ahead).
 */
export function estimateCompletion(bytes: number, t: Timetable, from: number): number | undefined {
  let at = from;
  let left = bytes;
  for (let edges = 0; edges < 10_000; edges++) {
    const rate = rateAt(t, at);
    const next = nextChange(t, at);
    if (rate === 'unlimited') return at;
    if (rate !== 'paused') {
      const until = next ?? Infinity;
      const capacity = (rate * (until - at)) / 1000;
      if (left <= capacity) return at + Math.ceil((left / rate) * 1000);
      left -= capacity;
    }
    if (next === undefined) return undefined;
    at = next;
  }
  return undefined;
}

/** Something whose rate the schedule sets (a TokenBucket). */
export interface RateTarget {
  setLimit(limit: RateLimit): void;
}

/**
 * Applies a timetable to rate targets: sets the limit for now, sleeps until the next edge, sets it again.
 * `run` resolves when `signal` aborts.
 */
export class Schedule {
  readonly timetable: Timetable;
  readonly #clock: Clock;
  readonly #targets: readonly RateTarget[];

  constructor(timetable: Timetable, targets: readonly RateTarget[], clock: Clock) {
    this.timetable = checkTimetable(timetable, 'any');
    this.#targets = targets;
    this.#clock = clock;
  }

  /** Sets the current limit, then follows every edge until aborted. Never polls: one sleep per edge. */
  async run(signal: AbortSignal): Promise<void> {
    try {
      for (;;) {
        throwIfAborted(signal);
        const now = this.#clock.now();
        const rate = rateAt(this.timetable, now);
        for (const target of this.#targets) target.setLimit(rate);
        const next = nextChange(this.timetable, now);
        // With no change in 8 days, look again in a day (a calendar with one rate still lives across DST).
        await this.#clock.sleep((next ?? now + 1440 * MINUTE) - now, signal);
      }
    } catch (e) {
      if ((e as VaultpathError).code !== 'VP_ABORTED') throw e;
    }
  }
}

function checkTimeZone(zone: string): string {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return zone;
  } catch {
    throw scheduleError(`"${zone}" is not a time zone this system knows: use an IANA name such as Europe/Berlin or America/New_York`);
  }
}

function scheduleError(message: string): VaultpathError {
  return new VaultpathError('VP_SCHEDULE', `The bandwidth schedule is not usable: ${message}.`);
}
