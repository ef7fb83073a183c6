import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { BlobIndex, PENDING_CHUNK } from '../../src/repo/blob-index.js';
import { VaultIndex } from '../../src/repo/vault.js';
import { encodeIndex, readIndex } from '../../src/repo/index-file.js';
import { ObjectType } from '../../src/crypto/object-type.js';
import { writeIndexObject } from '../../src/repo/index-writer.js';
import { makeVault } from '../support/vaults.js';

interface Loc {
  packId: Buffer;
  type: 0x03 | 0x04;
  codec: number;
  offset: number;
  length: number;
  plaintextLength: number;
}

const randomLoc = (packs: Buffer[]): Loc => ({
  packId: packs[Math.floor(Math.random() * packs.length)]!,
  type: Math.random() < 0.5 ? ObjectType.data : ObjectType.tree,
  codec: Math.floor(Math.random() * 256),
  offset: Math.floor(Math.random() * 2 ** 32),
  length: Math.floor(Math.random() * 2 ** 32),
  plaintextLength: Math.floor(Math.random() * 2 ** 32),
});

const same = (a: Loc | undefined, b: Loc): boolean =>
  a !== undefined &&
  a.packId.equals(b.packId) &&
  a.type === b.type &&
  a.codec === b.codec &&
  a.offset === b.offset &&
  a.length === b.length &&
  a.plaintextLength === b.plaintextLength;

/** Adds to the index and to a reference map (first location wins), keyed as the index keys. */
function addBoth(index: BlobIndex, ref: Map<string, Loc>, id: Buffer, loc: Loc): void {
  index.add(id, 0, index.internPack(loc.packId), loc.type, loc.codec, loc.offset, loc.length, loc.plaintextLength);
  const key = id.toString('hex');
  if (!ref.has(key)) ref.set(key, loc);
}

function expectSame(index: BlobIndex, ref: Map<string, Loc>, misses = 1000): void {
  expect(index.size).toBe(ref.size);
  const wrong: string[] = [];
  for (const [key, loc] of ref) if (!same(index.get(Buffer.from(key, 'hex')), loc)) wrong.push(key);
  expect(wrong).toEqual([]);
  for (let i = 0; i < misses; i++) {
    const id = randomBytes(32);
    if (index.has(id) || index.get(id) !== undefined) wrong.push(id.toString('hex'));
  }
  expect(wrong).toEqual([]);
}

describe('blob index', () => {
  const packs = Array.from({ length: 300 }, () => randomBytes(32));

  for (const fullIds of [false, true]) {
    it(`answers as a reference map, inserts and lookups interleaved, past one pending chunk (${fullIds ? 'full ids' : 'prefixes'})`, () => {
      const index = new BlobIndex({ fullIds });
      const ref = new Map<string, Loc>();
      const ids: Buffer[] = [];
      const total = PENDING_CHUNK + 20_000;
      for (let i = 0; i < total; i++) {
        // One id in ten repeats an earlier one with another location: the first must stay.
        const id = i % 10 === 9 ? ids[Math.floor(Math.random() * ids.length)]! : randomBytes(32);
        ids.push(id);
        addBoth(index, ref, id, randomLoc(packs));
        if (i % 9_973 === 0) {
          // A lookup settles the pending area into a run: growth goes through sorted runs and their merges.
          const probe = ids[Math.floor(Math.random() * ids.length)]!;
          expect(index.get(probe)).toEqual(ref.get(probe.toString('hex')));
        }
      }
      expectSame(index, ref);
      // Geometric merging keeps few runs.
      expect(index.runCount).toBeLessThanOrEqual(Math.ceil(Math.log2(total)) + 1);
      for (const p of packs) expect(index.hasPack(p)).toBe(true);
      expect(index.hasPack(randomBytes(32))).toBe(false);
    });
  }

  it('keeps the first location of ids added one at a time with lookups between (many small runs merged)', () => {
    const index = new BlobIndex({ fullIds: true });
    const ref = new Map<string, Loc>();
    const ids: Buffer[] = [];
    for (let i = 0; i < 5_000; i++) {
      const id = i % 3 === 2 ? ids[i - 1]! : randomBytes(32);
      ids.push(id);
      addBoth(index, ref, id, randomLoc(packs));
      if (!index.has(id)) throw new Error(`id ${i} not found after its add`);
    }
    expectSame(index, ref);
    expect(index.runCount).toBeLessThanOrEqual(14);
  });

  it('orders ids that share their first word by the rest (ties left by the radix sort)', () => {
    const index = new BlobIndex();
    const ref = new Map<string, Loc>();
    for (let i = 0; i < 3_000; i++) {
      const id = randomBytes(32);
      id.writeUInt32BE(i % 7, 0); // seven first words only
      addBoth(index, ref, id, randomLoc(packs));
    }
    expectSame(index, ref);
  });

  it('lists every entry with its whole id when built with full ids, and refuses to list prefixes', () => {
    const index = new BlobIndex({ fullIds: true });
    const ref = new Map<string, Loc>();
    for (let i = 0; i < 10_000; i++) {
      addBoth(index, ref, randomBytes(32), randomLoc(packs));
      if (i === 4_000) index.has(randomBytes(32)); // two runs
    }
    const seen = new Map<string, Loc>();
    for (const [id, loc] of index.entries()) seen.set(id.toString('hex'), loc);
    expect(seen).toEqual(ref);
    expect(() => [...new BlobIndex().entries()]).toThrow(/fullIds/);
  });

  it('interns many packs, each found by its id', () => {
    const index = new BlobIndex();
    const many = Array.from({ length: 20_000 }, () => randomBytes(32));
    const ordinals = many.map((p) => index.internPack(p));
    expect(new Set(ordinals).size).toBe(many.length);
    expect(many.every((p, i) => index.internPack(p) === ordinals[i])).toBe(true);
    const ref = new Map<string, Loc>();
    for (let i = 0; i < 40_000; i++) addBoth(index, ref, randomBytes(32), randomLoc(many));
    expectSame(index, ref, 10);
    expect(many.every((p) => index.hasPack(p))).toBe(true);
  });

  it('stays within 32 bytes a blob with prefixes: 29 a record, the pack ids once, a table of ordinals', () => {
    const index = new BlobIndex();
    const n = 200_000;
    const packs = n / 16;
    let ordinal = 0;
    for (let i = 0; i < n; i++) {
      if (i % 16 === 0) ordinal = index.internPack(randomBytes(32));
      index.add(randomBytes(32), 0, ordinal, ObjectType.data, 0, i, 1000, 952);
    }
    expect(index.size).toBe(n);
    // The ordinal table is at most 3/8 full after it doubles (4 bytes a slot): under 11 bytes a pack.
    expect(index.bytes).toBeLessThanOrEqual(29 * n + 32 * packs + 11 * packs);
    expect(index.bytes / n).toBeLessThanOrEqual(32);
  });
});

describe('blob index lookups by hex', () => {
  for (const fullIds of [false, true]) {
    it(`answer as lookups by bytes, and refuse what is not 64 hex digits (${fullIds ? 'full ids' : 'prefixes'})`, () => {
      const index = new BlobIndex({ fullIds });
      const pack = index.internPack(randomBytes(32));
      const ids = Array.from({ length: 5_000 }, () => randomBytes(32));
      for (const id of ids) index.add(id, 0, pack, ObjectType.data, 0, 0, 100, 52);
      for (const id of ids) {
        expect(index.hasHex(id.toString('hex'))).toBe(true);
        expect(index.hasHex(id.toString('hex').toUpperCase())).toBe(true);
      }
      for (let i = 0; i < 5_000; i++) expect(index.hasHex(randomBytes(32).toString('hex'))).toBe(false);
      const some = ids[17]!.toString('hex');
      for (const bad of ['', '00', some.slice(1), `${some}0`, `${some.slice(0, 63)}g`, `z${some.slice(1)}`]) expect(index.hasHex(bad)).toBe(false);
      // One run read from a snapshot: positions by hex are the positions by bytes.
      const one = BlobIndex.fromSnapshot(index.snapshot());
      for (const id of ids.slice(0, 200)) expect(one.positionOfHex(id.toString('hex'))).toBe(one.positionOf(id));
      expect(one.positionOfHex(randomBytes(32).toString('hex'))).toBe(-1);
    });
  }
});

describe('vault index on the blob index', () => {
  it('loads index objects as the reference map would, first location winning across objects and pending chunks', () => {
    const packs = Array.from({ length: 40 }, () => randomBytes(32));
    const index = new VaultIndex();
    const ref = new Map<string, Loc>();
    const ids: Buffer[] = [];
    for (let o = 0; o < 5; o++) {
      // The third object starts inside the first pending chunk and runs past its end.
      const entries = Array.from({ length: o === 2 ? PENDING_CHUNK + 3_000 : 3_000 }, (_, i) => {
        const id = o > 0 && i % 5 === 0 ? ids[Math.floor(Math.random() * ids.length)]! : randomBytes(32);
        ids.push(id);
        // Offsets that leave room for the length: an entry ending past the largest pack is refused.
        return { id, ...randomLoc(packs), codec: 0, offset: Math.floor(Math.random() * 2 ** 31), length: 100 + i, plaintextLength: 100 + i - 48 };
      });
      index.addAll(readIndex(encodeIndex({ entries, supersedes: [] })));
      for (const { id, ...loc } of entries) if (!ref.has(id.toString('hex'))) ref.set(id.toString('hex'), loc);
    }
    expect(index.size).toBe(ref.size);
    expect([...ref].filter(([key, loc]) => !same(index.get(Buffer.from(key, 'hex')), loc) || !index.hasHex(key))).toEqual([]);
    expect(index.hasHex('00')).toBe(false);
    expect(new Map([...index.entries()].map(([id, loc]) => [id.toString('hex'), loc]))).toEqual(ref);
    for (const p of packs) expect(index.hasPack(p)).toBe(true);
  });
});

describe('vault.loadIndex with id prefixes', () => {
  it('finds every blob of the vault where the whole-id index does, and lists none', async () => {
    const f = await makeVault();
    try {
      const packs = Array.from({ length: 8 }, () => randomBytes(32));
      for (let o = 0; o < 3; o++) {
        const entries = Array.from({ length: 500 }, (_, i) => ({ id: randomBytes(32), ...randomLoc(packs), codec: 0, offset: i, length: 148, plaintextLength: 100 }));
        await writeIndexObject(f.vault.store, f.vault.keys, entries);
      }
      const whole = await f.vault.loadIndex();
      const prefixes = await f.vault.loadIndex({ prefixIds: true });
      expect(prefixes.size).toBe(1_500);
      const wrong = [...whole.entries()].filter(([id, loc]) => !same(prefixes.get(id), loc as Loc));
      expect(wrong).toEqual([]);
      expect(packs.every((p) => prefixes.hasPack(p))).toBe(true);
      expect(() => [...prefixes.entries()]).toThrow(/fullIds/);
    } finally {
      await f.cleanup();
    }
  });
});
