import { describe, expect, it } from 'vitest';
import { formatBytes, parseSize } from '../src/units.js';

describe('sizes', () => {
  it.each([
    ['54400GB', 54_400e9],
    ['1.5 TiB', 1.5 * 2 ** 40],
    ['4096', 4096],
    ['10mb', 10e6],
    ['512KiB', 512 * 1024],
  ])('parse %s', (text, bytes) => {
    expect(parseSize(text)).toBe(bytes);
  });

  it.each(['', 'lots', '10 parsecs', '-5GB', '1e9'])('refuse %j with the units that are accepted', (text) => {
    expect(() => parseSize(text)).toThrow(/e\.g\. 500MB/);
  });

  it('print in decimal units', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(48_510_000)).toBe('48.5 MB');
    expect(formatBytes(54_400e9)).toBe('54.4 TB');
  });
});
