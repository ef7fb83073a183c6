import { describe, expect, it } from 'vitest';
import { formatRate, parseRate } from '../../src/throttle/rate.js';

describe('rates', () => {
  it.each([
    ['512Kbps', 64_000],
    ['8Mbit/s', 1_000_000],
    ['100kb/s', 12_500],
    ['4MiB/s', 4 * 2 ** 20],
    ['10MB/s', 10_000_000],
    ['1.5 GB/s', 1.5e9],
    ['1023MBps', 1_023_000_000],
    ['64KiB', 65_536],
  ])('parse %s as %d bytes per second', (text, bytes) => {
    expect(parseRate(text)).toBe(bytes);
  });

  it('tell bits (b) from bytes (B)', () => {
    expect(parseRate('8Mbps')).toBe(parseRate('1MB/s'));
    expect(parseRate('8MBps')).toBe(8 * (parseRate('8Mbps') as number));
  });

  it('refuse a bare number, saying why', () => {
    expect(() => parseRate('10')).toThrow(/has no unit.*could mean bytes, kilobytes or megabits/);
  });

  it.each(['0MB/s', '-5MB/s', 'fast', '10 parsecs/s', '10MX/s'])('refuse %j', (text) => {
    expect(() => parseRate(text)).toThrow(RangeError);
  });

  it('keep unlimited and paused apart from any number', () => {
    expect(parseRate('unlimited')).toBe('unlimited');
    expect(parseRate('paused')).toBe('paused');
  });

  it('print with explicit units', () => {
    expect(formatRate(4 * 2 ** 20)).toBe('4 MiB/s');
    expect(formatRate(64_000)).toBe('62.5 KiB/s');
    expect(formatRate('paused')).toBe('paused');
  });
});
