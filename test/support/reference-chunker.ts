/**
 * The cut rule of FORMAT.md, written as plainly as possible: one contiguous buffer, one byte at a time, no zero-run
 * shortcut, no state carried between buffers. The fast chunker must give the same boundaries on every input.
 */
export function referenceBoundaries(
  data: Uint8Array,
  gear: Uint32Array,
  p: { minSize: number; avgSize: number; maxSize: number },
): number[] {
  const bits = Math.log2(p.avgSize);
  const maskS = 2 ** 32 - 2 ** (32 - (bits + 2)); // top bits+2 bits set
  const maskL = 2 ** 32 - 2 ** (32 - (bits - 2));
  const lengths: number[] = [];
  let start = 0;
  while (start < data.length) {
    const remaining = data.length - start;
    let length = Math.min(remaining, p.maxSize);
    let h = 0;
    for (let i = p.minSize; i < Math.min(remaining, p.maxSize); i++) {
      h = (h * 2 + gear[data[start + i]!]!) % 2 ** 32;
      const mask = i < p.avgSize ? maskS : maskL;
      if ((h & mask) >>> 0 === 0) {
        length = i + 1;
        break;
      }
    }
    lengths.push(length);
    start += length;
  }
  return lengths;
}
