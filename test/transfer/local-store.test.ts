import { mkdir, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LocalStore } from '../../src/transfer/local-store.js';
import { isRoot, mountTmpfs, tempDir, unmount } from '../support/trees.js';
import { storeConformance } from '../support/store-conformance.js';

storeConformance('local-directory store', async () => {
  const dir = await tempDir('vaultpath-store-');
  const store = await LocalStore.open(join(dir, 'vault'), { create: true });
  return { store, cleanup: () => rm(dir, { recursive: true, force: true }) };
});

describe('the local-directory store', () => {
  it('keeps objects as files under their names, and temporaries out of the listing', async () => {
    const dir = await tempDir();
    try {
      const store = await LocalStore.open(dir, { create: true });
      await store.put('data/ab/abcd', Buffer.from('pack'));
      expect(await readdir(join(dir, 'data', 'ab'))).toEqual(['abcd']);
      expect(await readdir(join(dir, '.tmp'))).toEqual([]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('removes temporary files of a crashed run once they are an hour old, and keeps fresh ones', async () => {
    const dir = await tempDir();
    try {
      await mkdir(join(dir, '.tmp'));
      await writeFile(join(dir, '.tmp', 'old-leftover'), 'x');
      await writeFile(join(dir, '.tmp', 'in-progress'), 'y');
      const twoHoursAgo = new Date(Date.UTC(2026, 0, 1, 10, 0, 0));
      await utimes(join(dir, '.tmp', 'old-leftover'), twoHoursAgo, twoHoursAgo);
      await LocalStore.open(dir, { clock: { now: () => Date.UTC(2026, 0, 1, 12, 0, 0), sleep: async () => undefined } });
      expect(await readdir(join(dir, '.tmp'))).toEqual(['in-progress']);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('refuses to open a vault folder that does not exist, unless asked to create it', async () => {
    const dir = await tempDir();
    try {
      await expect(LocalStore.open(join(dir, 'nope'))).rejects.toMatchObject({ code: 'VP_NOT_FOUND' });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('turns a full disk into a permanent VP_STORE_FULL that names the vault, leaving no partial object', async (context) => {
    const dir = await tempDir();
    const mnt = join(dir, 'small');
    await mkdir(mnt);
    // A real full disk: a 1 MiB tmpfs (needs root to mount).
    if (!isRoot() || !mountTmpfs(mnt)) {
      await rm(dir, { recursive: true, force: true });
      context.skip();
    }
    try {
      const store = await LocalStore.open(mnt);
      const e = await store.put('data/00/big', Buffer.alloc(2 * 1024 * 1024, 7)).then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(e).toMatchObject({ code: 'VP_STORE_FULL', retryable: false });
      expect((e as Error).message).toContain(mnt);
      expect(await store.stat('data/00/big')).toBeUndefined();
    } finally {
      unmount(mnt);
      await rm(dir, { recursive: true, force: true });
    }
  });
});
