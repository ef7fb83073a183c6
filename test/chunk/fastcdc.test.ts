import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { type Chunk, type ChunkerParams, DEFAULT_CHUNKER_PARAMS, checkChunkerParams, chunkStream, gearScanPortable } from '../../src/chunk/fastcdc.js';
import { nativeFunction } from '../../src/native/addon.js';
import { VaultKeys, generateMasterKey } from '../../src/crypto/keys.js';
import { ChunkIdentifier } from '../../src/crypto/chunk-id.js';
import { concatParts } from '../../src/bytes.js';
import { referenceBoundaries } from '../support/reference-chunker.js';
import { seededBytes, splitInto } from '../support/seeded.js';

const SMALL: ChunkerParams = { minSize: 2048, avgSize: 8192, maxSize: 65_536 };
const keys = VaultKeys.fromMasterKey(generateMasterKey());

async function collect(source: Iterable<Uint8Array> | AsyncIterable<Uint8Array>, gear = keys.gearTable, p = SMALL): Promise<Chunk[]> {
  const out: Chunk[] = [];
  for await (const c of chunkStream(source, gear, p)) out.push({ ...c, parts: c.parts.map((x) => Buffer.from(x)) });
  return out;
}
const lengths = (chunks: Chunk[]): number[] => chunks.map((c) => c.length);

describe('the chunker', () => {
  const data = seededBytes(4 * 1024 * 1024, 5);

  it('yields chunks that concatenate to the input, at increasing offsets', async () => {
    const chunks = await collect([data]);
    expect(Buffer.concat(chunks.map((c) => concatParts(c.parts))).equals(data)).toBe(true);
    let offset = 0;
    for (const c of chunks) {
      expect(c.offset).toBe(offset);
      offset += c.length;
    }
  });

  it('keeps every chunk within min and max, except a shorter last one', async () => {
    const chunks = await collect([data]);
    for (const c of chunks.slice(0, -1)) {
      expect(c.length).toBeGreaterThanOrEqual(SMALL.minSize);
      expect(c.length).toBeLessThanOrEqual(SMALL.maxSize);
    }
    expect(chunks.at(-1)!.length).toBeLessThanOrEqual(SMALL.maxSize);
  });

  it('averages near the target size on random data', async () => {
    const chunks = await collect([data]);
    const mean = data.length / chunks.length;
    expect(mean).toBeGreaterThan(SMALL.avgSize * 0.75);
    expect(mean).toBeLessThan(SMALL.avgSize * 1.5);
  });

  it.each([
    ['1-byte reads', [1]],
    ['7- and 13-byte reads', [7, 13]],
    ['64 KiB reads', [65_536]],
    ['reads of 1 MiB + 1', [1024 * 1024 + 1]],
    ['irregular reads', [3, 65_536, 100_000, 1, 2047, 2048, 2049, 8191, 8192]],
  ])('cuts in the same places whatever the read size: %s', async (_, sizes) => {
    const source = data.subarray(0, sizes[0] === 1 ? 300_000 : data.length);
    const expected = lengths(await collect([source]));
    expect(lengths(await collect(splitInto(source, sizes)))).toEqual(expected);
  });

  it('cuts exactly where the plain reference implementation of the rule cuts', async () => {
    expect(lengths(await collect([data]))).toEqual(referenceBoundaries(data, keys.gearTable, SMALL));
  });

  it('changes only the chunks near an inserted byte', async () => {
    const ids = new ChunkIdentifier(keys);
    const before = new Set((await collect([data])).map((c) => ids.id(c.parts).toString('hex')));
    const edited = Buffer.concat([data.subarray(0, 1000), Buffer.of(0x42), data.subarray(1000)]);
    const after = (await collect([edited])).map((c) => ids.id(c.parts).toString('hex'));
    const changed = after.filter((id) => !before.has(id));
    expect(after.length).toBeGreaterThan(300);
    expect(changed.length).toBeLessThanOrEqual(2);
  });

  it('cuts differently under another vault key (boundaries are keyed)', async () => {
    const other = VaultKeys.fromMasterKey(generateMasterKey());
    const a = lengths(await collect([data]));
    const b = lengths(await collect([data], other.gearTable));
    expect(b).not.toEqual(a);
    // Not merely shifted: few boundaries coincide.
    const cutsA = new Set(a.map((_, i) => a.slice(0, i + 1).reduce((x, y) => x + y, 0)));
    const common = b.map((_, i) => b.slice(0, i + 1).reduce((x, y) => x + y, 0)).filter((o) => cutsA.has(o));
    expect(common.length).toBeLessThan(a.length / 10);
  });

  it('yields nothing for an empty stream and one chunk for a tiny one', async () => {
    expect(await collect([])).toEqual([]);
    expect(await collect([Buffer.alloc(0), Buffer.alloc(0)])).toEqual([]);
    expect(lengths(await collect([Buffer.from('hello')]))).toEqual([5]);
  });

  it('holds at most one chunk of input: a chunk never spans more input than max size', async () => {
    // Reads of 1 byte: every part is one input buffer, so a chunk's parts count what it holds.
    for (const c of await collect(splitInto(data.subarray(0, 200_000), [1]))) {
      expect(c.parts.length).toBe(c.length);
      expect(c.length).toBeLessThanOrEqual(SMALL.maxSize);
    }
  });

  it('stops when aborted', async () => {
    const controller = new AbortController();
    async function* endless(): AsyncGenerator<Buffer> {
      for (;;) yield randomBytes(65_536);
    }
    let n = 0;
    const run = async (): Promise<void> => {
      for await (const _ of chunkStream(endless(), keys.gearTable, SMALL, { signal: controller.signal })) {
        if (++n === 10) controller.abort();
      }
    };
    await expect(run()).rejects.toMatchObject({ code: 'VP_ABORTED' });
    expect(n).toBe(10);
  });
});

describe('zero runs (sparse files)', () => {
  const zeroHeavy = Buffer.concat([
    seededBytes(100_000, 1),
    Buffer.alloc(1_000_000),
    seededBytes(50_000, 2),
    Buffer.alloc(70), // shorter than the skip threshold
    seededBytes(10_000, 3),
    Buffer.alloc(300_001),
  ]);

  it('are cut exactly as the reference rule cuts them', async () => {
    expect(lengths(await collect([zeroHeavy]))).toEqual(referenceBoundaries(zeroHeavy, keys.gearTable, SMALL));
    expect(lengths(await collect(splitInto(zeroHeavy, [4096, 33, 70_000])))).toEqual(
      referenceBoundaries(zeroHeavy, keys.gearTable, SMALL),
    );
  });

  it('are cut exactly as the reference rule cuts them even under a key whose zero fixed point is a cut', async () => {
    // With avg 256 the large-region mask has 6 bits, so about one key in 64 cuts inside zero runs.
    const p = { minSize: 64, avgSize: 256, maxSize: 4096 };
    let found = 0;
    for (let i = 0; i < 2000 && found < 3; i++) {
      const k = VaultKeys.fromMasterKey(generateMasterKey());
      const fix = -(k.gearTable[0]! | 0) | 0;
      if ((fix & (~0 << 26)) !== 0) continue;
      found++;
      const input = zeroHeavy.subarray(0, 400_000);
      expect(lengths(await collect([input], k.gearTable, p))).toEqual(referenceBoundaries(input, k.gearTable, p));
    }
    expect(found).toBeGreaterThan(0);
  });

  it('become max-size chunks with one id, hashed once', async () => {
    const chunks = await collect([Buffer.alloc(20 * SMALL.maxSize)]);
    const ids = new ChunkIdentifier(keys);
    const unique = new Set(chunks.map((c) => ids.id(c.parts).toString('hex')));
    expect(unique.size).toBeLessThanOrEqual(2);
  });
});

describe('chunker parameters', () => {
  it.each([
    ['min below 64', { minSize: 32, avgSize: 256, maxSize: 1024 }],
    ['avg not a power of two', { minSize: 1000, avgSize: 3000, maxSize: 9000 }],
    ['min above avg', { minSize: 9000, avgSize: 8192, maxSize: 65_536 }],
    ['max above 64 MiB', { minSize: 1 << 20, avgSize: 1 << 22, maxSize: 1 << 27 }],
  ])('are refused: %s', (_, p) => {
    expect(() => checkChunkerParams(p)).toThrow(expect.objectContaining({ code: 'VP_CHUNKER_PARAMS' }));
  });

  it('default to 512 KiB / 1 MiB / 8 MiB', () => {
    expect(DEFAULT_CHUNKER_PARAMS).toEqual({ minSize: 524_288, avgSize: 1_048_576, maxSize: 8_388_608 });
  });
});

describe('the scan in the addon', () => {
  const native = nativeFunction('gearScan');
  const gear = new Int32Array(keys.gearTable.buffer.slice(keys.gearTable.byteOffset, keys.gearTable.byteOffset + 1024));
  const zeroFix = -gear[0]! | 0;

  it.runIf(process.platform === 'linux')('is built and loads on Linux (the backup chunks through it)', () => {
    expect(native, 'the native addon did not build or load: see the output of scripts/build-native.mjs').not.toBeNull();
  });

  it.runIf(native !== null)('finds the cuts, and leaves the hash, that the portable scan finds and leaves', () => {
    const input = Buffer.concat([seededBytes(300_000, 7), Buffer.alloc(5000), seededBytes(999, 8), Buffer.alloc(63), seededBytes(200_000, 9), Buffer.alloc(100_000)]);
    let compared = 0;
    for (const bits of [4, 9, 13, 16, 22]) {
      for (const skippable of [0, 1]) {
        const mask = (~0 << (32 - bits)) | 0;
        let i = 0;
        let h = 12345;
        while (i < input.length) {
          const limit = Math.min(input.length, i + 1 + ((i * 7919) % 70_001));
          const a = Int32Array.of(h, mask, zeroFix, skippable);
          const b = Int32Array.of(h, mask, zeroFix, skippable);
          const cut = native!(input, i, limit, a, gear);
          expect(cut).toBe(gearScanPortable(input, i, limit, b, gear));
          if (cut < 0) expect(a[0]).toBe(b[0]);
          compared++;
          h = cut < 0 ? a[0]! : 0;
          i = cut < 0 ? limit : cut;
        }
      }
    }
    expect(compared).toBeGreaterThan(100);
  });

  it.runIf(native !== null)('throws before reading anything when an argument is of the wrong type or range', () => {
    const buf = Buffer.alloc(100);
    const state = new Int32Array(4);
    const usage = /gearScan\(buf/;
    expect(() => native!(buf, 0, 101, state, gear)).toThrow(usage);
    expect(() => native!(buf, 50, 40, state, gear)).toThrow(usage);
    expect(() => native!(buf, -1, 40, state, gear)).toThrow(usage);
    expect(() => native!(buf, 0, 10, new Int32Array(3), gear)).toThrow(usage);
    expect(() => native!(buf, 0, 10, state, new Int32Array(255))).toThrow(usage);
    expect(() => native!(new Uint16Array(50) as unknown as Uint8Array, 0, 10, state, gear)).toThrow(usage);
    expect(native!(buf, 100, 100, state, gear)).toBe(-1); // an empty range is no cut
  });
});
