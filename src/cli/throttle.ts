/**
 * The CLI's bandwidth options: `--bwlimit RATE` for one rate, or the agent's work hours:
 * `--work-days mon-fri --work-hours 09:00-18:00 --work-rate RATE --off-rate RATE [--tz ZONE]`.
 * One token bucket serves every transfer of the command; a work-hours schedule moves its limit at each edge.
 */
import { parseRate } from '../throttle/rate.js';
import { TokenBucket } from '../throttle/token-bucket.js';
import { Schedule, checkTimetable, estimateCompletion, parseHours, parseWeekdays, workHours } from '../throttle/schedule.js';
import { systemClock } from '../throttle/clock.js';
import { type CommandContext, UsageError, text } from './context.js';

export interface CliThrottle {
  readonly bucket: TokenBucket;
  /** When `bytes` more will have passed, from now, under the limit or schedule (ms since the epoch). */
  eta(bytes: number): number | undefined;
  /** Starts following the schedule (if any) until `signal` aborts. */
  start(signal: AbortSignal): void;
}

export function throttleFrom(ctx: CommandContext): CliThrottle | undefined {
  const bwlimit = text(ctx, 'bwlimit');
  const work = ['work-days', 'work-hours', 'work-rate', 'off-rate'].map((k) => text(ctx, k));
  const anyWork = work.some((v) => v !== undefined) || text(ctx, 'tz') !== undefined;
  const parse = <T>(flag: string, f: () => T): T => {
    try {
      return f();
    } catch (e) {
      throw new UsageError(`--${flag}: ${(e as Error).message}`);
    }
  };
  if (bwlimit !== undefined && anyWork) throw new UsageError('give either --bwlimit or the work-hours options, not both');
  if (bwlimit !== undefined) {
    const bucket = new TokenBucket(systemClock, parse('bwlimit', () => parseRate(bwlimit)));
    const rate = bucket.limit;
    const eta = (bytes: number): number | undefined =>
      rate === 'paused' ? undefined : rate === 'unlimited' ? systemClock.now() : systemClock.now() + (bytes / rate) * 1000;
    return { bucket, eta, start: () => undefined };
  }
  if (!anyWork) return undefined;
  const [days, hours, workRate, offRate] = work;
  if (!days || !hours || !workRate || !offRate) {
    throw new UsageError('work hours need all of --work-days, --work-hours, --work-rate and --off-rate (and optionally --tz)');
  }
  const timetable = checkTimetable(
    workHours({
      days: parse('work-days', () => parseWeekdays(days)),
      hours: parse('work-hours', () => parseHours(hours)),
      workRate: parse('work-rate', () => parseRate(workRate)),
      offRate: parse('off-rate', () => parseRate(offRate)),
      timeZone: text(ctx, 'tz'),
    }),
  );
  const bucket = new TokenBucket(systemClock, 'unlimited');
  const schedule = new Schedule(timetable, [bucket], systemClock);
  return { bucket, eta: (bytes) => estimateCompletion(bytes, timetable, systemClock.now()), start: (signal) => void schedule.run(signal) };
}
