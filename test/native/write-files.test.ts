import { closeSync, constants, openSync } from 'node:fs';
import { lstat, mkdir, mkdtemp, readFile, readdir, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { nativeWriter } from '../../src/native/write-files.js';
import { rawFunction } from './raw.js';

let dir: string;
let dirFd: number;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vaultpath-native-writer-'));
  dirFd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY);
});
afterEach(() => {
  closeSync(dirFd);
  return rm(dir, { recursive: true, force: true });
});

/** The writer takes a folder's descriptor and single names: these tests name files in `dir` by path for brevity. */
const inDir = (path: string): string => path.slice(dir.length + 1);

const linux = process.platform === 'linux';

describe('the native whole-file writer', () => {
  it.runIf(linux)('is built and loads on Linux (restore writes small files through it)', () => {
    // Without it restores still work (with Node's calls), but this path would go untested.
    expect(nativeWriter(), 'the native addon did not build or load: see the output of scripts/build-native.mjs').not.toBeNull();
  });

  describe.runIf(linux)('on Linux', () => {
    const write = (temp: string, path: string, chunks: readonly Uint8Array[], mode: number, mtimeNs: bigint) =>
      nativeWriter()!(dirFd, inDir(temp), inDir(path), chunks, mode, mtimeNs);

    it('writes the chunks in order under the temporary name, sets mode and nanosecond times, then renames into place', async () => {
      const temp = join(dir, '.tmp-1');
      const path = join(dir, 'file.bin');
      const chunks = [Buffer.from('hello '), new Uint8Array(0), Buffer.alloc(300_000, 7), Buffer.from('world').subarray(1)];
      const mtimeNs = 1_600_000_000_123_456_789n;
      await expect(write(temp, path, chunks, 0o100640, mtimeNs)).resolves.toBeUndefined();
      const st = await lstat(path, { bigint: true }); // before reading: a read may update the access time
      expect(Number(st.mode) & 0o7777).toBe(0o640);
      expect(st.mtimeNs).toBe(mtimeNs);
      expect(st.atimeNs).toBe(mtimeNs);
      expect(await readFile(path)).toEqual(Buffer.concat(chunks));
      expect(await readdir(dir)).toEqual(['file.bin']);
    });

    it('writes an empty file, and times before 1970', async () => {
      const path = join(dir, 'empty');
      await expect(write(join(dir, '.tmp'), path, [], 0o600, -1_500_000_001n)).resolves.toBeUndefined();
      const st = await lstat(path, { bigint: true });
      expect(st.size).toBe(0n);
      expect(st.mtimeNs).toBe(-1_500_000_001n);
    });

    it('creates exclusively: an existing file at the temporary name is left alone and reported as EEXIST', async () => {
      const temp = join(dir, '.tmp');
      await writeFile(temp, 'someone else');
      await expect(write(temp, join(dir, 'file'), [Buffer.from('new')], 0o644, 0n)).resolves.toBe('EEXIST');
      expect(await readFile(temp, 'utf8')).toBe('someone else');
      expect(await readdir(dir)).toEqual(['.tmp']);
    });

    it('never follows a symbolic link at the temporary name, dangling or not', async () => {
      const victim = join(dir, 'victim');
      await writeFile(victim, 'untouched');
      await symlink(victim, join(dir, '.tmp-a'));
      await symlink(join(dir, 'nowhere'), join(dir, '.tmp-b'));
      await expect(write(join(dir, '.tmp-a'), join(dir, 'a'), [Buffer.from('x')], 0o644, 0n)).resolves.toBe('EEXIST');
      await expect(write(join(dir, '.tmp-b'), join(dir, 'b'), [Buffer.from('x')], 0o644, 0n)).resolves.toBe('EEXIST');
      expect(await readFile(victim, 'utf8')).toBe('untouched');
      expect((await readdir(dir)).sort()).toEqual(['.tmp-a', '.tmp-b', 'victim']);
      expect(await readlink(join(dir, '.tmp-b'))).toBe(join(dir, 'nowhere'));
    });

    it('replaces a symbolic link at the final path instead of writing through it', async () => {
      const victim = join(dir, 'victim');
      await writeFile(victim, 'untouched');
      await symlink(victim, join(dir, 'file'));
      await expect(write(join(dir, '.tmp'), join(dir, 'file'), [Buffer.from('restored')], 0o644, 0n)).resolves.toBeUndefined();
      expect(await readFile(victim, 'utf8')).toBe('untouched');
      expect((await lstat(join(dir, 'file'))).isFile()).toBe(true);
      expect(await readFile(join(dir, 'file'), 'utf8')).toBe('restored');
    });

    it('refuses a folder at the final path (EISDIR) without creating anything', async () => {
      await mkdir(join(dir, 'folder'));
      await writeFile(join(dir, 'folder', 'inside'), 'kept');
      await expect(write(join(dir, '.tmp'), join(dir, 'folder'), [Buffer.from('x')], 0o644, 0n)).resolves.toBe('EISDIR');
      expect((await readdir(dir)).sort()).toEqual(['folder']);
      expect(await readFile(join(dir, 'folder', 'inside'), 'utf8')).toBe('kept');
    });

    it('reports errno by name and leaves no temporary file when a step fails', async () => {
      const closed = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY);
      closeSync(closed);
      await expect(nativeWriter()!(closed, '.tmp', 'f', [Buffer.from('x')], 0o644, 0n)).resolves.toBe('EBADF');
      expect(await readdir(dir)).toEqual([]);
    });

    it('writes the files asked for in one turn in one job, each with its own outcome', async () => {
      await mkdir(join(dir, 'folder'));
      const files = Array.from({ length: 40 }, (_, i) => Buffer.alloc(100 + i, i));
      const outcomes = await Promise.all([
        ...files.map((data, i) => write(join(dir, `.tmp-${i}`), join(dir, `f${i}`), [data], 0o600, BigInt(i) * 1_000_000_007n)),
        write(join(dir, '.tmp-x'), join(dir, 'folder'), [Buffer.from('x')], 0o644, 0n),
      ]);
      expect(outcomes).toEqual([...files.map(() => undefined), 'EISDIR']);
      for (const [i, data] of files.entries()) {
        expect(await readFile(join(dir, `f${i}`))).toEqual(data);
        expect((await lstat(join(dir, `f${i}`), { bigint: true })).mtimeNs).toBe(BigInt(i) * 1_000_000_007n);
      }
      expect((await readdir(dir)).filter((n) => n.startsWith('.tmp'))).toEqual([]);
    });

    it('throws on arguments of the wrong type before doing anything', async () => {
      const addon = { writeFiles: rawFunction<(...a: unknown[]) => Promise<Int32Array>>('writeFiles') };
      const file = (over: object) => ({ dir: dirFd, temp: '.t', name: 'f', chunks: [], mode: 0o644, seconds: 0, nanoseconds: 0, ...over });
      expect(() => addon.writeFiles([file({ chunks: ['not bytes'] })])).toThrow(TypeError);
      expect(() => addon.writeFiles([file({ nanoseconds: 1e9 })])).toThrow(TypeError);
      expect(() => addon.writeFiles([file({ dir: 'not a descriptor' })])).toThrow(TypeError);
      // Numbers are checked whole before any conversion: never a descriptor or a mode cut to something else.
      expect(() => addon.writeFiles([file({ dir: dirFd + 0.5 })])).toThrow(TypeError);
      expect(() => addon.writeFiles([file({ dir: 2 ** 32 + dirFd })])).toThrow(TypeError);
      expect(() => addon.writeFiles([file({ mode: 2 ** 32 + 0o644 })])).toThrow(TypeError);
      expect(() => addon.writeFiles([file({ seconds: 0.5 })])).toThrow(TypeError);
      expect(() => addon.writeFiles([file({}), { temp: '.u' }])).toThrow(TypeError);
      expect(() => addon.writeFiles([])).toThrow(TypeError);
      expect(await readdir(dir)).toEqual([]);
    });

    it('fails alone, before any system call, a file whose name is not one safe name: never a path', async () => {
      await mkdir(join(dir, 'sub'));
      await writeFile(join(dir, 'victim'), 'untouched');
      const w = (temp: string | Uint8Array, name: string | Uint8Array) => nativeWriter()!(dirFd, temp, name, [Buffer.from('x')], 0o644, 0n);
      const outcomes = await Promise.all([
        w('.tmp-a', '../victim'),
        w('.tmp-b', 'sub/f'),
        w('.tmp-c\0x', 'c'),
        w('.tmp-d', '..'),
        w('.tmp-e', 'x'.repeat(256)),
        w('.tmp-f', ''),
        w('.tmp-g', Buffer.from([0x66, 0xff, 0xfe])),
        w('.tmp-h', 'written'),
      ]);
      expect(outcomes).toEqual(['EINVAL', 'EINVAL', 'EINVAL', 'EINVAL', 'ENAMETOOLONG', 'EINVAL', undefined, undefined]);
      expect(await readFile(join(dir, 'victim'), 'utf8')).toBe('untouched');
      // A name that is not UTF-8 is created with its exact bytes.
      expect((await readdir(dir, { encoding: 'buffer' })).map((n) => n.toString('hex')).sort()).toEqual(
        [Buffer.from([0x66, 0xff, 0xfe]), Buffer.from('sub'), Buffer.from('victim'), Buffer.from('written')].map((n) => n.toString('hex')).sort(),
      );
    });
  });
});
