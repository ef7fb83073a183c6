/**
 * Small byte helpers shared by the stages: views, little-endian integers, zero detection, hex.
 *
 * Hot-path data travels as `readonly Uint8Array[]` ("parts"): a chunk that spans two read buffers is two slices,
 * never a copy. {@link concatParts} exists for the few places that need one contiguous buffer.
 *
 * @module
 */

/** One contiguous byte range, or the same bytes as several slices in order. */
export type ByteParts = Uint8Array | readonly Uint8Array[];

/** The parts of `data` as an array (a single buffer becomes a one-element list). */
export function asParts(data: ByteParts): readonly Uint8Array[] {
  return data instanceof Uint8Array ? [data] : data;
}

/** The total length of `data`. */
export function partsLength(data: ByteParts): number {
  if (data instanceof Uint8Array) return data.length;
  let n = 0;
  for (const p of data) n += p.length;
  return n;
}

/** `data` as one Buffer; copies only when there is more than one part. */
export function concatParts(data: ByteParts): Buffer {
  const parts = asParts(data);
  if (parts.length === 1) return asBuffer(parts[0]!);
  return Buffer.concat(parts as Uint8Array[]);
}

/** A Buffer view of the same memory as `u` (no copy). */
export function asBuffer(u: Uint8Array): Buffer {
  return Buffer.isBuffer(u) ? u : Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}

// A page of zeros to memcmp against: comparing is ~10x faster than looking at bytes one by one in JS.
const ZERO_PAGE = Buffer.alloc(64 * 1024);

/** Length of the run of zero bytes in `buf` starting at `from`, looking no further than `limit`. */
export function zeroRunLength(buf: Buffer, from: number, limit: number): number {
  let i = from;
  while (i < limit) {
    const n = Math.min(ZERO_PAGE.length, limit - i);
    if (buf.compare(ZERO_PAGE, 0, n, i, i + n) === 0) {
      i += n;
      continue;
    }
    // Somewhere in this page: find the first non-zero byte.
    while (i < limit && buf[i] === 0) i++;
    return i - from;
  }
  return i - from;
}

/** True when every byte of `data` is zero (an empty input is all zero). */
export function isAllZero(data: ByteParts): boolean {
  for (const p of asParts(data)) {
    const b = asBuffer(p);
    if (zeroRunLength(b, 0, b.length) !== b.length) return false;
  }
  return true;
}

/** Lower-case hex of `u`. */
export function toHex(u: Uint8Array): string {
  return asBuffer(u).toString('hex');
}

/** Bytes of a lower-case or upper-case hex string; throws `TypeError` on anything else. */
export function fromHex(hex: string, label = 'hex'): Buffer {
  if (hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) {
    throw new TypeError(`"${label}" expected a hex string, got ${JSON.stringify(hex.slice(0, 80))}`);
  }
  return Buffer.from(hex, 'hex');
}

/** Throws a labelled `TypeError`/`RangeError` unless `u` is a Uint8Array of `length` bytes. */
export function checkBytes(u: unknown, length: number | undefined, label: string): asserts u is Uint8Array {
  if (!(u instanceof Uint8Array)) throw new TypeError(`"${label}" expected Uint8Array, got ${typeof u}`);
  if (length !== undefined && u.length !== length) {
    throw new RangeError(`"${label}" expected Uint8Array of length ${length}, got length=${u.length}`);
  }
}
