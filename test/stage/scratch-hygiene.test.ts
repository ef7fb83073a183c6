/** The scratch cache's folders: this user's by default, owner-only, and refused when another user could reach them. */
import { lstat, mkdir, readdir, rm, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ScratchCache } from '../../src/stage/scratch-cache.js';
import { tempDir } from '../support/trees.js';

describe('the scratch cache folders', () => {
  let dir: string;
  let saved: string | undefined;
  let umask: number;
  beforeEach(async () => {
    dir = await tempDir('vaultpath-scratch-hygiene-');
    saved = process.env['XDG_CACHE_HOME'];
    process.env['XDG_CACHE_HOME'] = join(dir, 'cache');
    umask = process.umask(0); // only the modes the cache asks for count
  });
  afterEach(async () => {
    process.umask(umask);
    if (saved === undefined) delete process.env['XDG_CACHE_HOME'];
    else process.env['XDG_CACHE_HOME'] = saved;
    await rm(dir, { recursive: true, force: true });
  });

  it('default to this user\'s scratch folder, and every folder is 0700', async () => {
    const cache = await ScratchCache.open(undefined, { capacity: 1024 });
    try {
      expect(cache.dir.startsWith(join(dir, 'cache', 'vaultpath', 'scratch') + '/')).toBe(true);
      expect((await lstat(join(dir, 'cache', 'vaultpath', 'scratch'))).mode & 0o7777).toBe(0o700);
      expect((await lstat(cache.dir)).mode & 0o7777).toBe(0o700);
      expect((await lstat(join(cache.dir, 'pid'))).mode & 0o7777).toBe(0o600);
    } finally {
      await cache.close();
    }
    const given = await ScratchCache.open(join(dir, 'given', 'scratch'), { capacity: 1024 });
    try {
      expect((await lstat(join(dir, 'given', 'scratch'))).mode & 0o7777).toBe(0o700);
      expect((await lstat(given.dir)).mode & 0o7777).toBe(0o700);
    } finally {
      await given.close();
    }
  });

  it('refuse a default scratch folder that is a link, writing nothing where it leads', async () => {
    const elsewhere = join(dir, 'elsewhere');
    await mkdir(elsewhere, { mode: 0o700 });
    await mkdir(join(dir, 'cache', 'vaultpath'), { recursive: true, mode: 0o700 });
    await symlink(elsewhere, join(dir, 'cache', 'vaultpath', 'scratch'));
    await expect(ScratchCache.open(undefined, { capacity: 1024 })).rejects.toMatchObject({ code: 'VP_UNSAFE_FOLDER' });
    expect(await readdir(elsewhere)).toEqual([]);
  });
});
