// The restore's descriptor-relative calls, both implementations: a name is one entry of an open folder, a link at
// it is never followed, and a folder swapped after it was opened keeps receiving what is written through it.
import { closeSync, constants, openSync, readFileSync, writeSync } from 'node:fs';
import { lstat, mkdir, readdir, rename, rm, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type FsAt, addonFsAt, procFsAt } from '../../src/restorer/fs-at.js';
import { tempDir } from '../support/trees.js';

let dir: string;
beforeEach(async () => {
  dir = await tempDir('vaultpath-fs-at-');
});
afterEach(() => rm(dir, { recursive: true, force: true }));

const b = (s: string): Buffer => Buffer.from(s);

describe.runIf(process.platform === 'linux')('descriptor-relative calls', () => {
  it('the addon provides them here', () => {
    expect(addonFsAt(), 'the native addon did not build or load').not.toBeNull();
  });

  for (const [label, get] of [['addon', () => addonFsAt()!], ['/proc/self/fd', () => procFsAt]] as [string, () => FsAt][]) {
    describe(label, () => {
      it('refuses names that are not one entry, before any call', async () => {
        const fs = get();
        const root = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY);
        try {
          for (const name of ['', '.', '..', 'a/b', '../x', 'nul\0x']) {
            expect(() => fs.mkdir(root, b(name), 0o700), JSON.stringify(name)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
            expect(() => fs.create(root, b(name), 0o600)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
          }
          expect(await readdir(dir)).toEqual([]);
        } finally {
          closeSync(root);
        }
      });

      it('never follows a link: opening a folder through one fails, creating over one fails', async () => {
        const fs = get();
        const outside = join(dir, 'outside');
        await mkdir(outside);
        await mkdir(join(dir, 'target'));
        await symlink(outside, join(dir, 'target', 'link'));
        await symlink(join(outside, 'file'), join(dir, 'target', 'dangling'));
        const root = openSync(join(dir, 'target'), constants.O_RDONLY | constants.O_DIRECTORY);
        try {
          expect(() => fs.openDir(root, b('link'))).toThrow(expect.objectContaining({ code: expect.stringMatching(/^(ELOOP|ENOTDIR)$/) }));
          expect(() => fs.create(root, b('dangling'), 0o600)).toThrow(expect.objectContaining({ code: 'EEXIST' }));
          expect(() => fs.mkdir(root, b('link'), 0o700)).toThrow(expect.objectContaining({ code: 'EEXIST' }));
          expect((fs.stat(root, b('link')).mode & constants.S_IFMT)).toBe(constants.S_IFLNK);
          expect(await readdir(outside)).toEqual([]);
        } finally {
          closeSync(root);
        }
      });

      it('keeps writing into a folder renamed away and replaced by a link after it was opened', async () => {
        const fs = get();
        const outside = join(dir, 'outside');
        await mkdir(outside);
        await mkdir(join(dir, 'target'));
        const root = openSync(join(dir, 'target'), constants.O_RDONLY | constants.O_DIRECTORY);
        fs.mkdir(root, b('sub'), 0o700);
        const sub = fs.openDir(root, b('sub'));
        try {
          await rename(join(dir, 'target', 'sub'), join(dir, 'target', 'moved'));
          await symlink(outside, join(dir, 'target', 'sub'));
          const fd = fs.create(sub, b('.tmp'), 0o600);
          writeSync(fd, 'data');
          fs.setTimes(fd, -315_619_199_500_000_000n);
          closeSync(fd);
          fs.rename(sub, b('.tmp'), b('file'));
          fs.symlink('anywhere', sub, b('link'));
          expect(await readdir(outside)).toEqual([]);
          expect(readFileSync(join(dir, 'target', 'moved', 'file'), 'utf8')).toBe('data');
          expect((await lstat(join(dir, 'target', 'moved', 'file'), { bigint: true })).mtimeNs).toBe(-315_619_199_500_000_000n);
          expect((await lstat(join(dir, 'target', 'moved', 'link'))).isSymbolicLink()).toBe(true);
          expect(fs.list(sub).map(String).sort()).toEqual(['file', 'link']);
          fs.unlink(sub, b('link'), false);
          expect(await readdir(join(dir, 'target', 'moved'))).toEqual(['file']);
        } finally {
          closeSync(sub);
          closeSync(root);
        }
      });
    });
  }
});
