/** Per-user working folders: created owner-only, and refused (with nothing written) when another user could use them. */
import { chmod, chown, lstat, mkdir, readdir, rm, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ensureUserFolder, userFolder } from '../../src/stage/user-folders.js';
import { isRoot, tempDir } from '../support/trees.js';

describe('per-user working folders', () => {
  it('are under XDG_CACHE_HOME, else the home folder, never one shared folder', () => {
    expect(userFolder('reports', { XDG_CACHE_HOME: '/x/cache' })).toBe('/x/cache/vaultpath/reports');
    const home = process.env['HOME'];
    if (home) expect(userFolder('scratch', { HOME: home })).toBe(join(home, '.cache', 'vaultpath', 'scratch'));
    expect(userFolder('recovery', {})).not.toBe('/tmp/vaultpath/recovery');
  });

  it('are created 0700, with the folders above them, whatever the umask', async () => {
    const dir = await tempDir('vaultpath-user-folders-');
    await chmod(dir, 0o700);
    const old = process.umask(0);
    try {
      const path = join(dir, 'cache', 'vaultpath', 'reports');
      expect(ensureUserFolder(path)).toBe(path);
      for (const p of [join(dir, 'cache'), join(dir, 'cache', 'vaultpath'), path]) expect((await lstat(p)).mode & 0o7777).toBe(0o700);
      expect(ensureUserFolder(path)).toBe(path); // again: it is there and fine
    } finally {
      process.umask(old);
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('refuse a link, a folder open to others, and a folder below one any user may change, writing nothing', async () => {
    const dir = await tempDir('vaultpath-user-folders-');
    await chmod(dir, 0o700);
    try {
      await mkdir(join(dir, 'real'), { mode: 0o700 });
      await symlink(join(dir, 'real'), join(dir, 'link'));
      await expect(async () => ensureUserFolder(join(dir, 'link'))).rejects.toMatchObject({ code: 'VP_UNSAFE_FOLDER', message: /symbolic link/ });
      await mkdir(join(dir, 'open'));
      await chmod(join(dir, 'open'), 0o755);
      await expect(async () => ensureUserFolder(join(dir, 'open'))).rejects.toMatchObject({ code: 'VP_UNSAFE_FOLDER', message: /open to other users/ });
      await mkdir(join(dir, 'shared'));
      await chmod(join(dir, 'shared'), 0o777);
      await expect(async () => ensureUserFolder(join(dir, 'shared', 'mine', 'reports'))).rejects.toMatchObject({ code: 'VP_UNSAFE_FOLDER', message: /other users can write/ });
      expect(await readdir(join(dir, 'shared'))).toEqual([]); // nothing was created below it
      // Sticky, as /tmp is: others may not rename what is not theirs, so a folder of one's own there is fine.
      await chmod(join(dir, 'shared'), 0o1777);
      expect(ensureUserFolder(join(dir, 'shared', 'mine'))).toBe(join(dir, 'shared', 'mine'));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it.runIf(isRoot())('refuse a folder owned by another user, or below one of another user (even through a link)', async () => {
    const dir = await tempDir('vaultpath-user-folders-');
    await chmod(dir, 0o700);
    try {
      await mkdir(join(dir, 'theirs'), { mode: 0o700 });
      await chown(join(dir, 'theirs'), 65534, 65534);
      await expect(async () => ensureUserFolder(join(dir, 'theirs'))).rejects.toMatchObject({ code: 'VP_UNSAFE_FOLDER', message: /belongs to user 65534/ });
      // A link to their folder as a parent: they could swap what is below it after the check.
      await symlink(join(dir, 'theirs'), join(dir, 'via'));
      await expect(async () => ensureUserFolder(join(dir, 'via', 'reports'))).rejects.toMatchObject({ code: 'VP_UNSAFE_FOLDER', message: /belongs to user 65534/ });
      expect(await readdir(join(dir, 'theirs'))).toEqual([]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
