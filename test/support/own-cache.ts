/**
 * Points this test file's per-user working folders (reports, scratch, recovery: `XDG_CACHE_HOME`) at a folder of
 * its own, removed after its tests, so that a run leaves nothing in the user's cache or the temp folder. Child
 * processes (the CLI) inherit it through the environment.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';

export function useOwnCache(): void {
  let saved: string | undefined;
  let dir: string | undefined;
  beforeAll(async () => {
    saved = process.env['XDG_CACHE_HOME'];
    dir = await mkdtemp(join(tmpdir(), 'vaultpath-test-cache-'));
    process.env['XDG_CACHE_HOME'] = dir;
  });
  afterAll(async () => {
    if (saved === undefined) delete process.env['XDG_CACHE_HOME'];
    else process.env['XDG_CACHE_HOME'] = saved;
    if (dir) await rm(dir, { recursive: true, force: true });
  });
}
