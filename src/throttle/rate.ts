/**
 * Transfer rates with units that cannot be misread.
 *
 * Bits and bytes are both accepted, each spelled out: `512Kbps`, `8Mbit/s`, `100kb/s` are bits; `4MiB/s`, `10MB/s`,
 * `1.5 GB/s` are bytes. A lower-case `b` alone means bits and an upper-case `B` bytes (the networking convention).
 * K, M, G are powers of 1000; Ki, Mi, Gi powers of 1024. A bare number is refused: "10" could be bytes, kilobytes or
 * megabits per second, and the cost of a guess is a saturated link or a backup that never ends.
 *
 * Rates are carried as bytes per second; `unlimited` and `paused` are distinct from every number (a zero rate is
 * refused, not taken as a pause).
 *
 * @module
 */

/** A rate limit: bytes per second, or no limit, or no transfer at all. */
export type RateLimit = number | 'unlimited' | 'paused';

const PREFIX: Record<string, number> = { '': 1, k: 1e3, m: 1e6, g: 1e9, t: 1e12, ki: 2 ** 10, mi: 2 ** 20, gi: 2 ** 30, ti: 2 ** 40 };

/**
 * Parses `512Kbps`, `8Mbit/s`, `4MiB/s`, `10MB/s`, `unlimited`, `paused` into a {@link RateLimit}.
 * @throws {RangeError} saying what was wrong and how to write it.
 * @example
 * ```ts
 * parseRate('8Mbit/s'); // 1_000_000 (bytes per second)
 * parseRate('4MiB/s');  // 4_194_304
 * ```
 */
export function parseRate(text: string): RateLimit {
  const t = text.trim();
  if (/^(unlimited|none|off)$/i.test(t)) return 'unlimited';
  if (/^paused?$/i.test(t)) return 'paused';
  if (/^\d+(\.\d+)?$/.test(t)) {
    throw new RangeError(
      `"${text}" has no unit: write bits or bytes per second explicitly, e.g. 512Kbps, 8Mbit/s, 4MiB/s or 10MB/s ` +
        '(a bare number could mean bytes, kilobytes or megabits)',
    );
  }
  const m = /^(\d+(?:\.\d+)?)\s*([kKmMgGtT]i?)?(bps|bit\/s|bits\/s|b\/s|B\/s|Bps|B)$/.exec(t);
  if (!m) {
    throw new RangeError(`"${text}" is not a rate: write e.g. 512Kbps, 8Mbit/s, 4MiB/s or 10MB/s, or "unlimited" or "paused"`);
  }
  const value = Number(m[1]);
  const prefix = PREFIX[(m[2] ?? '').toLowerCase()]!;
  const unit = m[3]!;
  const bits = unit === 'bps' || unit === 'bit/s' || unit === 'bits/s' || unit === 'b/s';
  const bytesPerSecond = (value * prefix) / (bits ? 8 : 1);
  if (!(bytesPerSecond > 0) || !Number.isFinite(bytesPerSecond)) {
    throw new RangeError(`"${text}" is not a usable rate: use a positive number, or "paused" to stop transfers`);
  }
  return bytesPerSecond;
}

/** A rate as text in the unit people read: `4 MiB/s` style for bytes (binary), `paused`, `unlimited`. */
export function formatRate(rate: RateLimit): string {
  if (rate === 'unlimited' || rate === 'paused') return rate;
  const units = ['B/s', 'KiB/s', 'MiB/s', 'GiB/s', 'TiB/s'];
  let v = rate;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  const digits = v >= 100 || Number.isInteger(v) ? 0 : v >= 10 ? 1 : 2;
  return `${v.toFixed(digits)} ${units[i]}`;
}
