// The streamed scan's walk lists each folder through a descriptor checked to be the folder at its place below the
// root: a folder swapped for a link after its parent was listed is reported `replaced`, never followed.
import { renameSync, symlinkSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type WalkItem, walk } from '../../src/scan/walk.js';
import { tempDir } from '../support/trees.js';

let dir: string;
beforeEach(async () => {
  dir = await tempDir('vaultpath-walk-race-');
});
afterEach(() => rm(dir, { recursive: true, force: true }));

describe.runIf(process.platform === 'linux')('the streamed walk, with folders swapped while it runs', () => {
  it('does not list a folder swapped for a link after its parent was listed, and reports it replaced', async () => {
    const root = join(dir, 'root');
    await mkdir(join(root, 'sub'), { recursive: true });
    await writeFile(join(root, 'sub', 'own.txt'), 'own');
    await mkdir(join(dir, 'elsewhere'));
    await writeFile(join(dir, 'elsewhere', 'secret.txt'), 'secret');
    let swapped = false;
    const items: WalkItem[] = [];
    // Called for each folder just before it is listed: the one point between its parent's listing and its own.
    const isMountPoint = (path: string): boolean => {
      if (path === join(root, 'sub') && !swapped) {
        swapped = true;
        renameSync(join(root, 'sub'), join(dir, 'sub-was'));
        symlinkSync(join(dir, 'elsewhere'), join(root, 'sub'));
      }
      return false;
    };
    for await (const batch of walk(root, { isMountPoint })) items.push(...batch);
    expect(swapped).toBe(true);
    expect(items.map((i) => i.relativePath)).not.toContain('sub/secret.txt');
    expect(items).toContainEqual(expect.objectContaining({ type: 'skip', relativePath: 'sub', reason: 'replaced' }));
  });
});
