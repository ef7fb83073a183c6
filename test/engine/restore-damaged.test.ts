/**
 * Restoring `latest` when the newest snapshot is damaged: it fails naming that snapshot, and only with
 * `skipDamaged` takes the newest readable one, saying which it passed over.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { backup } from '../../src/engine/backup.js';
import { restore } from '../../src/engine/restore.js';
import { type VaultFixture, damageObject, makeVault } from '../support/vaults.js';
import { useOwnCache } from '../support/hygiene-cache.js';

useOwnCache();

let f: VaultFixture;
let older: string;
let newest: string;
beforeEach(async () => {
  f = await makeVault();
  const src = f.path('src');
  await mkdir(src);
  await writeFile(f.path('src', 'letter.txt'), 'the first version');
  older = (await backup(f.vault, [src], { scratchDir: f.path('scratch'), reportPath: f.path('report-1.jsonl') })).snapshot!;
  await writeFile(f.path('src', 'letter.txt'), 'the second version, longer');
  newest = (await backup(f.vault, [src], { scratchDir: f.path('scratch'), reportPath: f.path('report-2.jsonl') })).snapshot!;
  await damageObject(f, `snapshots/${newest}`, 40);
});
afterEach(() => f.cleanup());

describe('restore latest with a damaged newest snapshot', () => {
  it('fails with VP_SNAPSHOT_DAMAGED naming it, and writes nothing', async () => {
    const target = f.path('target');
    await expect(restore(f.vault, 'latest', target)).rejects.toMatchObject({ code: 'VP_SNAPSHOT_DAMAGED', message: expect.stringContaining(newest) });
    await expect(readFile(f.path('target', 'src', 'letter.txt'))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('with skipDamaged restores the newest readable snapshot and names the one passed over', async () => {
    const r = await restore(f.vault, 'latest', f.path('target'), { skipDamaged: true, recoveryFolder: f.path('recovery') });
    expect(r.snapshot).toBe(older);
    expect(r.skippedDamaged).toEqual([newest]);
    expect(await readFile(f.path('target', 'src', 'letter.txt'), 'utf8')).toBe('the first version');
  });
});
