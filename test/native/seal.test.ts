// The addon's file and chunk sealing and pack writing must give exactly the bytes of the portable code (crypto/envelope.ts,
// crypto/chunk-id.ts, node:crypto's SHA-256): packs written either way are one format.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SEAL_BATCH_BYTES, nativeChunkSealer, nativeFileSealer, nativePackWriter } from '../../src/native/seal.js';
import { nativeFunction } from '../../src/native/addon.js';
import { rawFunction } from './raw.js';
import { SealBuffers } from '../../src/repo/seal-buffers.js';
import { VaultKeys } from '../../src/crypto/keys.js';
import { ChunkIdentifier } from '../../src/crypto/chunk-id.js';
import { ObjectType } from '../../src/crypto/object-type.js';
import { aadPrefix, joinSealed, objectKeyLabel, openBlob, seal } from '../../src/crypto/envelope.js';
import { FIXED_MASTER_KEY, seededBytes } from '../support/seeded.js';
import { isRoot, mountRamfs, mountTmpfs, unmount } from '../support/trees.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vaultpath-native-seal-'));
});
afterEach(() => rm(dir, { recursive: true, force: true }));

const linux = process.platform === 'linux';
const keys = VaultKeys.fromMasterKey(FIXED_MASTER_KEY);
const ids = new ChunkIdentifier(keys);
/** The format the kernels are given: the object-key label, and a data blob's associated-data prefix. */
const L = objectKeyLabel();
const P = aadPrefix(ObjectType.data);

describe('the native file and chunk sealers and pack writer', () => {
  it.runIf(linux)('are built and load on Linux (the backup seals small files and chunks and writes packs through them)', () => {
    expect(nativeFileSealer(keys), 'the native addon did not build or load: see the output of scripts/build-native.mjs').not.toBeNull();
    expect(nativeChunkSealer(keys)).not.toBeNull();
    expect(nativePackWriter()).not.toBeNull();
  });

  describe.runIf(linux)('on Linux', () => {
    it('gives the portable envelope byte for byte under the same salt, and the portable chunk id, file by file in a batch', async () => {
      const raw = nativeFunction('sealFiles')!;
      const cases = [
        [1, ObjectType.data],
        [4096, ObjectType.data],
        [300_000, ObjectType.tree],
        [524_287, ObjectType.data],
      ] as const;
      for (const [length, type] of cases) {
        const data = seededBytes(length, length);
        const path = join(dir, `f${length}`);
        await writeFile(path, data);
        const salt = seededBytes(32, length + 1);
        const [r] = await raw([path], [length], keys.sealKey, keys.chunkIdKey, L, aadPrefix(type), salt);
        if (!r || !('id' in r)) throw new Error(`sealFiles failed: errno ${r?.errno}`);
        expect(r.bytes).toBe(length);
        expect(r.id).toEqual(ids.id(data));
        expect(r.sealed!.equals(joinSealed(seal(keys, type, ids.id(data), data, salt, false)))).toBe(true);
      }
      // Several files in one job, each under its own salt, a failure among them reported in its place.
      const paths = [join(dir, 'f1'), join(dir, 'missing'), join(dir, 'f4096')];
      const salts = Buffer.concat([seededBytes(32, 1), seededBytes(32, 2), seededBytes(32, 3)]);
      const results = await raw(paths, [1, 10, 4096], keys.sealKey, keys.chunkIdKey, L, P, salts);
      expect(results).toHaveLength(3);
      expect(results[1]).toEqual({ errno: 2, step: 'open' });
      const [first, , third] = results as { sealed: Buffer }[];
      expect(first!.sealed.subarray(0, 32)).toEqual(seededBytes(32, 1));
      expect(third!.sealed.equals(joinSealed(seal(keys, ObjectType.data, ids.id(seededBytes(4096, 4096)), seededBytes(4096, 4096), seededBytes(32, 3), false)))).toBe(true);
    });

    it('fails alone, without a system call that could block or name another file, a path too long, with a NUL, or of a FIFO', async () => {
      const raw = nativeFunction('sealFiles')!;
      const fifo = join(dir, 'fifo');
      expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
      await writeFile(join(dir, 'ok'), 'fine');
      // Longer than PATH_MAX, with a character of three bytes where a cut to fit the buffer would fall: it must not
      // become the shorter path of another file.
      const long = `${dir}/${'./'.repeat(2040)}ok€`;
      const paths = [long, `${join(dir, 'ok')}\0tail`, fifo, join(dir, 'ok')];
      const results = await raw(paths, [4, 4, 4, 4], keys.sealKey, keys.chunkIdKey, L, P, Buffer.alloc(32 * 4, 1));
      expect(results.slice(0, 3)).toEqual([
        { errno: 36, step: 'open' }, // ENAMETOOLONG
        { errno: 22, step: 'open' }, // EINVAL
        { errno: 22, step: 'open' }, // a FIFO: opened without blocking, and refused
      ]);
      expect(results[3]).toMatchObject({ errno: 0, bytes: 4 });
    });

    it('seals a batch into the caller\'s buffer, file i at the sum of (size + 48) before it; a failed file\'s place untouched', async () => {
      const raw = nativeFunction('sealFiles')!;
      const sizes = [1000, 10, 4096];
      const data = sizes.map((n, i) => seededBytes(n, 40 + i));
      for (const [i, d] of data.entries()) await writeFile(join(dir, `o${i}`), d.subarray(0, i === 0 ? 600 : d.length)); // the first shrank
      const paths = [join(dir, 'o0'), join(dir, 'missing'), join(dir, 'o2')];
      const salts = Buffer.concat(sizes.map((_, i) => seededBytes(32, 50 + i)));
      const out = Buffer.alloc(sizes.reduce((n, s) => n + s + 48, 0) + 7, 0xee);
      const results = await raw(paths, sizes, keys.sealKey, keys.chunkIdKey, L, P, salts, out);
      expect(results[1]).toEqual({ errno: 2, step: 'open' });
      for (const i of [0, 2]) expect(results[i]).not.toHaveProperty('sealed');
      const first = data[0]!.subarray(0, 600);
      expect(out.subarray(0, 648).equals(joinSealed(seal(keys, ObjectType.data, ids.id(first), first, seededBytes(32, 50), false)))).toBe(true);
      expect(out.subarray(648, 1048).every((b) => b === 0xee)).toBe(true); // the shrunk file's unused tail
      expect(out.subarray(1048, 1048 + 58).every((b) => b === 0xee)).toBe(true); // the missing file's place
      const at = 1048 + 58;
      expect(out.subarray(at, at + 4096 + 48).equals(joinSealed(seal(keys, ObjectType.data, ids.id(data[2]!), data[2]!, seededBytes(32, 52), false)))).toBe(true);
      expect(out.subarray(at + 4096 + 48).every((b) => b === 0xee)).toBe(true);
    });

    it('with a buffer pool, seals a batch into one shared buffer, which comes back once every file has been given back', async () => {
      const KiB = 1024;
      const pool = new SealBuffers(16 * 1024 * KiB);
      const sealer = nativeFileSealer(keys, pool)!;
      const sizes = [200_000, 200_000, 3, 300_000, 700_000];
      const data = sizes.map((n, i) => seededBytes(n, 60 + i));
      for (const [i, d] of data.entries()) await writeFile(join(dir, `p${i}`), d);
      const calls = data.map((d, i) => [join(dir, `p${i}`), d.length] as const);
      calls.splice(2, 0, [join(dir, 'missing'), 10]);
      const results = await Promise.all(calls.map(([path, size]) => sealer(path, size, ObjectType.data)));
      expect(results[2]).toEqual({ step: 'open', code: 'ENOENT' });
      const sealed = results.filter((r): r is Exclude<typeof r, { code: string }> => !('code' in r));
      expect(sealed.map((r) => r.bytes)).toEqual(sizes);
      for (const [i, r] of sealed.entries()) expect(openBlob(keys, ObjectType.data, r.id, joinSealed(r.sealed)).equals(data[i]!)).toBe(true);
      // Jobs of at most 640 KiB of sealed bytes: the first four calls, then the fifth (it would pass 640 KiB), then
      // the 700 KB file alone.
      expect(SEAL_BATCH_BYTES).toBe(640 * KiB);
      const memory = (i: number) => sealed[i]!.sealed.parts[0]!.buffer;
      expect(new Set([0, 1, 2].map(memory)).size).toBe(1);
      expect(new Set([2, 3, 4].map(memory)).size).toBe(3);
      for (const r of sealed) if (r !== sealed[2]) for (const p of r.sealed.parts) pool.release(p);
      expect(pool.freeBytes).toBe(320 * KiB + 704 * KiB); // whole 64 KiB grains; the first job's waits for its last file
      for (const p of sealed[2]!.sealed.parts) pool.release(p); // the missing file's share went back in the sealer
      expect(pool.freeBytes).toBe(448 * KiB + 320 * KiB + 704 * KiB);
    });

    it('seals the calls of one turn together, each with its own result and salt', async () => {
      const sealer = nativeFileSealer(keys)!;
      const files = Array.from({ length: 40 }, (_, i) => seededBytes(100 + i * 37, 500 + i));
      for (const [i, data] of files.entries()) await writeFile(join(dir, `b${i}`), data);
      const results = await Promise.all(files.map((data, i) => sealer(join(dir, `b${i}`), data.length, ObjectType.data)));
      const salts = new Set<string>();
      for (const [i, r] of results.entries()) {
        if ('code' in r) throw new Error(`file ${i} failed: ${r.code}`);
        expect(r.id).toEqual(ids.id(files[i]!));
        expect(openBlob(keys, ObjectType.data, r.id, joinSealed(r.sealed)).equals(files[i]!)).toBe(true);
        salts.add(joinSealed(r.sealed).subarray(0, 32).toString('hex'));
      }
      expect(salts.size).toBe(40);
    });

    it('reads and seals a file under a fresh salt each time; the blob opens with the portable code', async () => {
      const sealer = nativeFileSealer(keys)!;
      const data = seededBytes(20_000, 5);
      const path = join(dir, 'file');
      await writeFile(path, data);
      const a = await sealer(path, data.length, ObjectType.data);
      const b = await sealer(path, data.length, ObjectType.data);
      if ('code' in a || 'code' in b) throw new Error('expected both to succeed');
      expect(a.id).toEqual(ids.id(data));
      expect(openBlob(keys, ObjectType.data, a.id, joinSealed(a.sealed))).toEqual(data);
      expect(a.sealed.length).toBe(data.length + 48);
      expect(joinSealed(a.sealed).subarray(0, 32)).not.toEqual(joinSealed(b.sealed).subarray(0, 32));
      expect(a.after.size).toBe(20_000n);
    });

    it('reads no more than asked, and reports a file shorter than expected by its count and its fstat', async () => {
      const sealer = nativeFileSealer(keys)!;
      const path = join(dir, 'short');
      await writeFile(path, seededBytes(1000, 9));
      const longer = await sealer(path, 5000, ObjectType.data);
      if ('code' in longer) throw new Error('expected success');
      expect(longer.bytes).toBe(1000);
      expect(longer.after.size).toBe(1000n);
      const prefix = await sealer(path, 10, ObjectType.data);
      if ('code' in prefix) throw new Error('expected success');
      expect(prefix.bytes).toBe(10);
      expect(prefix.id).toEqual(ids.id(seededBytes(1000, 9).subarray(0, 10)));
      await truncate(path, 0);
      const emptied = await sealer(path, 1000, ObjectType.data);
      expect('code' in emptied ? emptied : emptied.bytes).toBe(0);
    });

    it('names the failing step and the errno: a missing file, and a folder, at open', async () => {
      const sealer = nativeFileSealer(keys)!;
      await expect(sealer(join(dir, 'missing'), 10, ObjectType.data)).resolves.toEqual({ step: 'open', code: 'ENOENT' });
      await mkdir(join(dir, 'folder'));
      await expect(sealer(join(dir, 'folder'), 10, ObjectType.data)).resolves.toEqual({ step: 'open', code: 'EISDIR' });
    });

    it('refuses arguments of the wrong type or length before queuing anything', () => {
      const raw = rawFunction('sealFiles');
      const k = Buffer.alloc(32);
      expect(() => raw(['p'], [1], Buffer.alloc(16), k, L, P, k)).toThrow(TypeError);
      expect(() => raw(['p'], [-1], k, k, L, P, k)).toThrow(TypeError);
      expect(() => raw(['p'], [1], k, k, L, P)).toThrow(TypeError);
      expect(() => raw(['p', 'q'], [1], k, k, L, P, Buffer.alloc(64))).toThrow(TypeError); // a size per path
      expect(() => raw(['p', 'q'], [1, 1], k, k, L, P, k)).toThrow(TypeError); // a salt per path
      expect(() => raw([], [], k, k, L, P, Buffer.alloc(0))).toThrow(TypeError);
      expect(() => raw(['p'], [10], k, k, L, P, k, Buffer.alloc(57))).toThrow(TypeError); // out: one byte short of 10 + 48
      expect(() => raw(['p'], [10], k, k, L, P, k, 'not bytes')).toThrow(TypeError);
      const writePack = rawFunction('writePack');
      expect(() => writePack(join(dir, 'p'), [Buffer.alloc(1), 'not bytes'])).toThrow(TypeError);
      expect(() => writePack(join(dir, 'p'), Buffer.alloc(1))).toThrow(TypeError);
      expect(() => writePack(42, [Buffer.alloc(1)])).toThrow(TypeError);
    });

    it('seals a chunk given as slices of shared read buffers exactly as the portable code does under the same salt', async () => {
      const raw = nativeFunction('sealParts')!;
      const shared = Buffer.from(new SharedArrayBuffer(3 * 1024 * 1024));
      seededBytes(shared.length, 31).copy(shared);
      for (const sizes of [[0], [1], [700_000], [1000, 0, 524_288, 333], [1024 * 1024, 2 * 1024 * 1024 - 5]]) {
        let at = 0;
        const parts = sizes.map((n) => shared.subarray(at, (at += n)));
        const data = Buffer.concat(parts);
        const salt = seededBytes(32, sizes.length);
        const both = await raw(parts, keys.sealKey, keys.chunkIdKey, L, P, salt, null);
        expect(both.id, `sizes ${sizes}`).toEqual(ids.id(data));
        expect(both.sealed!.equals(joinSealed(seal(keys, ObjectType.data, ids.id(data), data, salt, false))), `sizes ${sizes}`).toBe(true);
        const idOnly = await raw(parts, keys.sealKey, keys.chunkIdKey, L, Buffer.alloc(0), null, null);
        expect(idOnly).toEqual({ id: ids.id(data) });
        // Given an id, it is not recomputed: the blob is sealed under the id given.
        const other = seededBytes(32, 77);
        const under = await raw(parts, keys.sealKey, keys.chunkIdKey, L, aadPrefix(ObjectType.tree), salt, other);
        expect(under.id).toEqual(other);
        expect(under.sealed!.equals(joinSealed(seal(keys, ObjectType.tree, other, data, salt, false))), `sizes ${sizes}`).toBe(true);
        // Into a buffer of the caller's: its first bytes are the blob, the rest untouched, and none of its own made.
        const out = Buffer.alloc(data.length + 48 + 100, 0xee);
        const into = await raw(parts, keys.sealKey, keys.chunkIdKey, L, P, salt, null, out);
        expect(into).toEqual({ id: ids.id(data) });
        expect(out.subarray(0, data.length + 48).equals(both.sealed!), `sizes ${sizes}`).toBe(true);
        expect(out.subarray(data.length + 48).every((b) => b === 0xee)).toBe(true);
      }
    });

    it('as a chunk sealer: identify, seal and process agree, each seal under a fresh salt, opening with the portable code', async () => {
      const buffers = new SealBuffers(16 * 1024 * 1024);
      const sealer = nativeChunkSealer(keys, buffers)!;
      const parts = [seededBytes(300_000, 1), seededBytes(5, 2)];
      const data = Buffer.concat(parts);
      const { id } = await sealer.identify(parts);
      expect(id).toEqual(ids.id(data));
      const a = await sealer.process(ObjectType.data, parts);
      const b = await sealer.seal(ObjectType.data, id, parts);
      expect(a.id).toEqual(id);
      expect(openBlob(keys, ObjectType.data, id, joinSealed(a.sealed)).equals(data)).toBe(true);
      expect(openBlob(keys, ObjectType.data, id, joinSealed(b)).equals(data)).toBe(true);
      expect(joinSealed(a.sealed).subarray(0, 32)).not.toEqual(joinSealed(b).subarray(0, 32));
      // Sealed into the pool's buffers, which serve again once given back.
      expect(a.sealed.parts).toHaveLength(1);
      buffers.release(a.sealed.parts[0]!);
      const c = await sealer.process(ObjectType.data, parts);
      expect(c.sealed.parts[0]!.buffer).toBe(a.sealed.parts[0]!.buffer);
      expect(openBlob(keys, ObjectType.data, id, joinSealed(c.sealed)).equals(data)).toBe(true);
    });

    it('refuses chunk arguments of the wrong type or length, and an id without a salt, before queuing anything', () => {
      const raw = rawFunction('sealParts');
      const k = Buffer.alloc(32);
      expect(() => raw([Buffer.alloc(1)], Buffer.alloc(16), k, L, P, null, null)).toThrow(TypeError);
      expect(() => raw([Buffer.alloc(1), 'x'], k, k, L, P, null, null)).toThrow(TypeError);
      expect(() => raw(Buffer.alloc(1), k, k, L, P, null, null)).toThrow(TypeError);
      expect(() => raw([Buffer.alloc(1)], k, k, L, P, Buffer.alloc(31), null)).toThrow(TypeError);
      expect(() => raw([Buffer.alloc(1)], k, k, L, P, null, k)).toThrow(TypeError);
      expect(() => raw([Buffer.alloc(1)], k, k, L, Buffer.alloc(17), k, null)).toThrow(TypeError); // a prefix of 16 bytes at most
      expect(() => raw([Buffer.alloc(1)], k, k, Buffer.alloc(0), P, k, null)).toThrow(TypeError); // a label of 1 to 64 bytes
      expect(() => raw([Buffer.alloc(1)], k, k, Buffer.alloc(65), P, k, null)).toThrow(TypeError);
      expect(() => raw([Buffer.alloc(1)], k, k, 'label', P, k, null)).toThrow(TypeError);
      expect(() => raw([Buffer.alloc(1)], k, k, L, P, k, null, Buffer.alloc(48))).toThrow(TypeError); // one byte short
      expect(() => raw([Buffer.alloc(1)], k, k, L, P, null, null, Buffer.alloc(49))).toThrow(TypeError); // nothing to seal
    });
  });
});

describe.runIf(linux)('the native pack writer', () => {
  it('writes the parts in order to a new file and returns their SHA-256, whatever their sizes and alignment', async () => {
    const write = nativePackWriter()!;
    const KiB = 1024;
    // Around the 4 KiB blocks written directly and the 2 MiB staging buffer: empty parts, odd sizes, exact
    // multiples, one part larger than the buffer, and a tail shorter than a block.
    const layouts = [[], [0], [1], [4096], [4095, 1], [2 * KiB * KiB], [2 * KiB * KiB + 1], [3000, 0, 5 * KiB * KiB + 17, 4096, 12_345], [16 * KiB * KiB - 8]];
    for (const [n, sizes] of layouts.entries()) {
      const parts = sizes.map((size, i) => Buffer.from(seededBytes(size, 100 * n + i)));
      const path = join(dir, `pack-${n}`);
      const id = await write(path, parts);
      const all = Buffer.concat(parts);
      expect((await readFile(path)).equals(all), `layout ${sizes.join('+')}`).toBe(true);
      expect(id.equals(createHash('sha256').update(all).digest()), `layout ${sizes.join('+')}`).toBe(true);
    }
  });

  it('copies byte ranges of a staged file, in the order given, before the parts, across the staging buffer', async () => {
    const write = nativePackWriter()!;
    const MiB = 1024 * 1024;
    const staged = Buffer.from(seededBytes(5 * MiB + 123, 40));
    const from = join(dir, 'pending');
    await writeFile(from, staged);
    // Out of order, repeated, empty, crossing the 2 MiB buffer, one larger than it, and the file's very end.
    const ranges = [
      [3 * MiB, 17],
      [0, 4096],
      [5 * MiB, 123],
      [4095, 1],
      [100, 0],
      [MiB - 5, 2 * MiB + 11],
      [0, 4096],
      [5 * MiB + 100, 23],
    ];
    const tail = [Buffer.from(seededBytes(777, 41)), Buffer.from('trailer')];
    const id = await write(join(dir, 'pack'), tail, { path: from, ranges: Float64Array.from(ranges.flat()) });
    const expected = Buffer.concat([...ranges.map(([at, length]) => staged.subarray(at!, at! + length!)), ...tail]);
    expect((await readFile(join(dir, 'pack'))).equals(expected)).toBe(true);
    expect(id.equals(createHash('sha256').update(expected).digest())).toBe(true);
    expect((await readFile(from)).equals(staged)).toBe(true); // the staged file is only read
  });

  it('fails with EIO for a range past the end of the staged file, and refuses ranges that are not offset, length pairs', async () => {
    const write = nativePackWriter()!;
    const from = join(dir, 'pending');
    await writeFile(from, Buffer.alloc(1000, 7));
    await expect(write(join(dir, 'p1'), [], { path: from, ranges: Float64Array.of(900, 101) })).rejects.toMatchObject({ code: 'EIO' });
    await expect(write(join(dir, 'p2'), [], { path: join(dir, 'missing'), ranges: Float64Array.of(0, 1) })).rejects.toMatchObject({ code: 'ENOENT' });
    const raw = rawFunction('writePack');
    for (const bad of [Float64Array.of(0), Float64Array.of(-1, 1), Float64Array.of(0.5, 1), Float64Array.of(0, Number.NaN), [0, 1], new Uint32Array(2)]) {
      expect(() => raw(join(dir, 'p3'), [], from, bad)).toThrow(TypeError);
    }
    expect(() => raw(join(dir, 'p3'), [], '', Float64Array.of(0, 1))).toThrow(TypeError);
    expect(() => raw(join(dir, 'p3'), [], from)).toThrow(TypeError);
  });

  it('never replaces an existing file, and reports failures by errno name as Node does', async () => {
    const write = nativePackWriter()!;
    const path = join(dir, 'taken');
    await writeFile(path, 'earlier');
    await expect(write(path, [Buffer.alloc(10)])).rejects.toMatchObject({ code: 'EEXIST', message: expect.stringContaining(path) });
    expect(await readFile(path, 'utf8')).toBe('earlier');
    await expect(write(join(dir, 'missing', 'pack'), [Buffer.alloc(10)])).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('writes the ordinary way where the file system refuses O_DIRECT', async (context) => {
    const mnt = join(dir, 'ram');
    await mkdir(mnt);
    if (!isRoot() || !mountRamfs(mnt)) context.skip(); // ramfs refuses O_DIRECT; mounting one needs root
    try {
      const parts = [Buffer.from(seededBytes(3 * 1024 * 1024 + 5, 8)), Buffer.from(seededBytes(100, 9))];
      const id = await nativePackWriter()!(join(mnt, 'pack'), parts);
      const all = Buffer.concat(parts);
      expect((await readFile(join(mnt, 'pack'))).equals(all)).toBe(true);
      expect(id.equals(createHash('sha256').update(all).digest())).toBe(true);
    } finally {
      unmount(mnt);
    }
  });

  it('reports a full disk as ENOSPC', async (context) => {
    const mnt = join(dir, 'small');
    await mkdir(mnt);
    if (!isRoot() || !mountTmpfs(mnt)) context.skip(); // a real full disk needs root to mount a small tmpfs (1 MiB)
    try {
      await expect(nativePackWriter()!(join(mnt, 'pack'), [Buffer.from(seededBytes(3 * 1024 * 1024, 7))])).rejects.toMatchObject({ code: 'ENOSPC' });
    } finally {
      unmount(mnt);
    }
  });
});
