/**
 * Restoring `latest` when the newest snapshot is damaged: it fails naming that snapshot, and only with
 * `skipDamaged` takes the newest readable one, saying which it passed over.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { backup } from '../../src/engine/backup.js';
import { restore } from '../../src/engine/restore.js';
import { type VaultFixture, damageObject, makeVault } from '../support/vaults.js';

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

describe('a backup after an index object was damaged', () => {
  it('adopts the packs the damaged object listed instead of storing their blobs again, and older snapshots restore whole', async () => {
    const g = await makeVault();
    try {
      const src = g.path('src');
      await mkdir(src);
      await writeFile(g.path('src', 'a.bin'), Buffer.alloc(300_000, 7));
      const first = (await backup(g.vault, [src], { scratchDir: g.path('scratch'), reportPath: g.path('r1.jsonl') })).snapshot!;
      const indexObjects: string[] = [];
      for await (const o of g.store.list('index/')) indexObjects.push(o.name);
      expect(indexObjects).toHaveLength(1);
      await damageObject(g, indexObjects[0]!, 40);
      const again = await backup(g.vault, [src], { scratchDir: g.path('scratch'), reportPath: g.path('r2.jsonl'), parent: null });
      expect(again.status).toBe('complete');
      expect(again.bytesStored).toBe(0); // every blob was found in the adopted packs
      const r = await restore(g.vault, first, g.path('target'), { recoveryFolder: g.path('recovery') });
      expect(r.errors).toEqual([]);
      expect((await readFile(g.path('target', 'src', 'a.bin'))).equals(Buffer.alloc(300_000, 7))).toBe(true);
    } finally {
      await g.cleanup();
    }
  });
});
