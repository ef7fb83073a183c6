/**
 * Sizes with explicit units, parsed and printed the same way everywhere.
 *
 * Decimal units (KB, MB, GB, TB, PB = powers of 1000) and binary units (KiB, MiB, GiB, TiB, PiB = powers of 1024)
 * are both accepted; a plain number is a count of bytes.
 *
 * @module
 */

const UNITS: Record<string, number> = {
  b: 1,
  kb: 1e3, mb: 1e6, gb: 1e9, tb: 1e12, pb: 1e15,
  kib: 2 ** 10, mib: 2 ** 20, gib: 2 ** 30, tib: 2 ** 40, pib: 2 ** 50,
};

/**
 * Parses `54400GB`, `1.5 TiB`, `4096` (bytes) into a number of bytes.
 * @throws {RangeError} naming the text and the accepted units.
 */
export function parseSize(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(text);
  const factor = m ? UNITS[(m[2] || 'b').toLowerCase()] : undefined;
  if (!m || factor === undefined) {
    throw new RangeError(`"${text}" is not a size: write a number with a unit, e.g. 500MB, 54400GB or 2TiB (B, KB, MB, GB, TB, PB, KiB, MiB, GiB, TiB, PiB)`);
  }
  return Math.round(Number(m[1]) * factor);
}

/** Bytes as a short figure in decimal units: `48.5 MB`, `54400 GB` → `54.4 TB`. */
export function formatBytes(n: number): string {
  const units = ['B', 'KB', 'MB', 'GB', 'TB', 'PB'];
  let i = 0;
  let v = n;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return i === 0 ? `${n} B` : `${v.toFixed(v >= 100 ? 0 : v >= 10 ? 1 : 2)} ${units[i]}`;
}

const DURATION_UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * Parses a duration with its unit: `90s`, `30m`, `48h`, `365d` (a whole or decimal number). A bare number is refused,
 * since it could mean seconds or hours.
 * @returns milliseconds
 */
export function parseDuration(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$/i.exec(text);
  if (!m) throw new RangeError(`"${text}" is not a duration: write a number with a unit, s, m, h or d (e.g. 48h)`);
  const ms = Number(m[1]) * DURATION_UNITS[m[2]!.toLowerCase()]!;
  if (ms <= 0) throw new RangeError(`"${text}": a duration must be more than zero`);
  return ms;
}
