/**
 * The local store's leftovers: temporary files of a writer that is gone are removed when the vault is next opened,
 * those of a live writer are kept, whatever their age; and opening writes nothing.
 */
import { spawn } from 'node:child_process';
import { lstat, mkdir, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LocalStore } from '../../src/transfer/local-store.js';
import { tempDir } from '../support/trees.js';

const host = hostname().replace(/[^A-Za-z0-9-]/g, '-').slice(0, 64) || 'host';
const tempName = (h: string, pid: number): string => `${h}.${pid}.${'0123456789abcdef'}.tmp`;

/** The pid of a process that has exited (and been reaped). */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '']);
  await new Promise((resolve) => child.on('exit', resolve));
  return child.pid!;
}

describe('the local store, tidy', () => {
  it('removes at once the temporary files of a writer on this host that is gone, and keeps those of a live one', async () => {
    const dir = await tempDir('vaultpath-store-hygiene-');
    const live = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
    try {
      const dead = await deadPid();
      await mkdir(join(dir, '.tmp'));
      const names = {
        dead: tempName(host, dead),
        live: tempName(host, live.pid!),
        otherHost: tempName('elsewhere', dead),
      };
      for (const name of Object.values(names)) await writeFile(join(dir, '.tmp', name), 'partial pack');
      // Hours old: a live writer's file is still its own (a pack can wait long behind a bandwidth limit).
      const old = new Date(Date.now() - 3 * 3600_000);
      await utimes(join(dir, '.tmp', names.live), old, old);
      await LocalStore.open(dir);
      expect((await readdir(join(dir, '.tmp'))).sort()).toEqual([names.live, names.otherHost].sort());
    } finally {
      live.kill();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('names its temporary files after this host and process, and makes .tmp/ only when it writes', async () => {
    const dir = await tempDir('vaultpath-store-hygiene-');
    try {
      const store = await LocalStore.open(dir);
      expect(await readdir(dir)).toEqual([]);
      let seen: string[] = [];
      // The temporary file exists while the body streams: look at it from inside the stream.
      await store.put('data/ab/abcd', {
        size: 4,
        async *stream() {
          seen = await readdir(join(dir, '.tmp'));
          yield Buffer.from('pack');
        },
      });
      expect(seen).toHaveLength(1);
      expect(seen[0]).toMatch(new RegExp(`^${host.replace(/[-]/g, '\\-')}\\.${process.pid}\\.[0-9a-f]{16}\\.tmp$`));
      expect((await lstat(join(dir, '.tmp'))).mode & 0o7777).toBe(0o700);
      expect(await readdir(join(dir, '.tmp'))).toEqual([]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
