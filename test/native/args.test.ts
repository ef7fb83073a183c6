// The addon's backup and scan functions check their arguments whole, before any conversion or system call: a number
// that is not whole or out of range is refused (never truncated to another), a path with a NUL or too long is
// refused (never cut to name another file), and a file is opened without following a link and checked to be the
// one expected.
import { spawnSync } from 'node:child_process';
import { closeSync, constants, openSync, statSync } from 'node:fs';
import { mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addon } from '../../src/native/addon.js';
import { aadPrefix, objectKeyLabel } from '../../src/crypto/envelope.js';
import { rawFunction } from './raw.js';
import { tempDir } from '../support/trees.js';

const linux = process.platform === 'linux';
let dir: string;
beforeAll(async () => {
  dir = await tempDir('vaultpath-native-args-');
});
afterAll(() => rm(dir, { recursive: true, force: true }));

const k = Buffer.alloc(32, 7);
/** The format the kernels are given: the object-key label, and an associated-data prefix. */
const L = objectKeyLabel();
const P = aadPrefix(3);

describe.runIf(linux)('the addon\'s arguments', () => {
  it('sealFiles: sizes must be whole numbers in range, a fraction refused, not truncated; the label and prefix bytes of bounded length', () => {
    const sealFiles = rawFunction('sealFiles');
    expect(() => sealFiles(['p'], [1.5], k, k, L, P, k)).toThrow(TypeError);
    expect(() => sealFiles(['p'], [Number.NaN], k, k, L, P, k)).toThrow(TypeError);
    expect(() => sealFiles(['p'], [2 ** 31], k, k, L, P, k)).toThrow(TypeError);
    expect(() => sealFiles(['p'], ['4'], k, k, L, P, k)).toThrow(TypeError);
    expect(() => sealFiles(['p'], [4], k, k, L, 3, k)).toThrow(TypeError); // the prefix is bytes, not a type number
    expect(() => sealFiles(['p'], [4], k, k, L, Buffer.alloc(17), k)).toThrow(TypeError);
    expect(() => sealFiles(['p'], [4], k, k, Buffer.alloc(0), P, k)).toThrow(TypeError);
    expect(() => sealFiles(['p'], [4], k, k, Buffer.alloc(65), P, k)).toThrow(TypeError);
    expect(() => sealFiles(['p'], [4], k, k, L, P, k, null, new BigUint64Array(1))).toThrow(TypeError); // two per path
  });

  it('sealFiles: opens a path given as bytes, never through a link, and only the file of the device and inode expected', async () => {
    const sealFiles = rawFunction<(...args: unknown[]) => Promise<{ errno: number; step?: string; bytes?: number }[]>>('sealFiles');
    const file = join(dir, 'file');
    await writeFile(file, 'data');
    const raw = Buffer.concat([Buffer.from(`${dir}/`), Buffer.from([0x66, 0xff])]);
    await writeFile(raw, 'bytes');
    await symlink(file, join(dir, 'link'));
    const st = statSync(file, { bigint: true });
    const expect2 = (dev: bigint, ino: bigint) => new BigUint64Array([dev, ino, 0n, 0n, st.dev, st.ino, 0n, 0n]);
    const results = await sealFiles([file, raw, file, join(dir, 'link')], [4, 5, 4, 4], k, k, L, P, Buffer.alloc(128), null, expect2(st.dev, st.ino + 1n));
    expect(results.map((r) => (r.errno === 0 ? { bytes: r.bytes } : r))).toEqual([
      { errno: 116, step: 'open' }, // ESTALE: not the file expected
      { bytes: 5 }, // inode 0: not checked
      { bytes: 4 },
      { errno: 40, step: 'open' }, // ELOOP: a link is not followed
    ]);
    expect(() => sealFiles([Buffer.alloc(0)], [1], k, k, L, P, k)).not.toThrow(); // empty bytes: refused per file (EINVAL)
  });

  it('sealParts: the label and the prefix must be bytes of bounded length, not numbers', () => {
    const sealParts = rawFunction('sealParts');
    expect(() => sealParts([Buffer.alloc(1)], k, k, L, 1.5, null, null)).toThrow(TypeError);
    expect(() => sealParts([Buffer.alloc(1)], k, k, L, -1, null, null)).toThrow(TypeError);
    expect(() => sealParts([Buffer.alloc(1)], k, k, 1, P, null, null)).toThrow(TypeError);
  });

  it('statxBatch: a path holding a NUL is EINVAL, never the shorter path before it; a path may be bytes', async () => {
    const statxBatch = rawFunction<(paths: unknown[], out: Float64Array) => void>('statxBatch');
    const fields = addon()!['FIELDS'] as number;
    await writeFile(join(dir, 'ok'), 'fine');
    const raw = Buffer.concat([Buffer.from(`${dir}/`), Buffer.from([0x66, 0xff])]);
    await writeFile(raw, 'bytes');
    const out = new Float64Array(fields * 4);
    statxBatch([join(dir, 'ok'), `${join(dir, 'ok')}\0tail`, raw, `${dir}/${'x'.repeat(5000)}`], out);
    expect([0, 1, 2, 3].map((i) => out[i * fields])).toEqual([0, 22, 0, 36]); // ok, EINVAL, ok, ENAMETOOLONG
    expect(out[2 * fields + 3]).toBe(5); // the size of the file named by bytes
  });

  it('dataExtents: takes the descriptor being read, not a path, and does not block on a FIFO', async () => {
    const dataExtents = rawFunction('dataExtents');
    expect(() => dataExtents(join(dir, 'ok'))).toThrow(TypeError);
    expect(() => dataExtents(1.5)).toThrow(TypeError);
    expect(() => dataExtents(-1)).toThrow(TypeError);
    const fifo = join(dir, 'fifo');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    const fd = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
    try {
      expect(dataExtents(fd)).toBeNull();
    } finally {
      closeSync(fd);
    }
    await mkdir(join(dir, 'sparse'));
    const file = join(dir, 'sparse', 'f');
    await writeFile(file, 'abc');
    const fd2 = openSync(file, 'r');
    try {
      expect([...(dataExtents(fd2) as Float64Array)]).toEqual([0, 3]);
    } finally {
      closeSync(fd2);
    }
  });

  it('setTimes: seconds and nanoseconds must be whole and in range; a path with a NUL is EINVAL', async () => {
    const setTimes = rawFunction('setTimes');
    await writeFile(join(dir, 't'), '');
    expect(() => setTimes(join(dir, 't'), 1.5, 0)).toThrow(TypeError);
    expect(() => setTimes(join(dir, 't'), 1, 1e9)).toThrow(TypeError);
    expect(() => setTimes(join(dir, 't'), 1, -1)).toThrow(TypeError);
    expect(setTimes(`${join(dir, 't')}\0x`, 1, 0)).toBe(22);
    expect(setTimes(join(dir, 't'), -1, 5)).toBe(0); // before 1970
  });

  it('openBlobsInto: targets out of range are refused before any is converted', () => {
    const openBlobsInto = rawFunction('openBlobsInto');
    const specs = new Float64Array([0, 0, 64, 1]);
    const ids = Buffer.alloc(32);
    expect(() => openBlobsInto(specs, ids, P, k, k, L, new Float64Array([2 ** 40, -1, 0]))).toThrow(TypeError);
    expect(() => openBlobsInto(specs, ids, P, k, k, L, new Float64Array([3, -1, 0.5]))).toThrow(TypeError);
    expect(() => openBlobsInto(specs, ids, P, k, k, L, new Float64Array([3, Number.NaN, 0]))).toThrow(TypeError);
  });
});
