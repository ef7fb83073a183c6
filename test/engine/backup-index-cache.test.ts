// A backup (and a restore) loads the vault index through the cache in its scratch (recovery) folder: the index
// objects an earlier run read are not read again.
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { backup } from '../../src/engine/backup.js';
import { restore } from '../../src/engine/restore.js';
import { ObjectType } from '../../src/crypto/object-type.js';
import { writeIndexObject } from '../../src/repo/index-writer.js';
import { Vault } from '../../src/repo/vault.js';
import { CountingStore } from '../support/pass-through-store.js';
import { PASSPHRASE, type VaultFixture, makeVault } from '../support/vaults.js';

let f: VaultFixture;
beforeEach(async () => {
  f = await makeVault();
});
afterEach(() => f.cleanup());

it('reads only the index objects written since its last run, and dedups against the cached ones', async () => {
  // Index objects of other machines' backups, already in the vault.
  for (let i = 0; i < 6; i++) {
    const entries = Array.from({ length: 100 }, () => ({ id: randomBytes(32), type: ObjectType.data, codec: 0, packId: randomBytes(32), offset: 0, length: 148, plaintextLength: 100 }));
    await writeIndexObject(f.store, f.vault.keys, entries);
  }
  const store = new CountingStore(f.store);
  const vault = await Vault.open(store, PASSPHRASE);
  const src = f.path('src');
  await mkdir(src);
  await writeFile(join(src, 'a'), randomBytes(300_000));
  const options = { scratchDir: f.path('scratch'), parent: null };
  await backup(vault, [src], options);
  expect(store.count('index/')).toBe(6);
  store.reset();
  // No parent: every chunk is looked up in the index, loaded from the cache plus the first run's one object.
  const again = await backup(vault, [src], options);
  expect(store.count('index/')).toBe(1);
  expect(again.bytesNew).toBe(0);
  expect(vault.lastIndexLoad).toEqual({ cached: 600, read: 1 });
});

it('is what a restore loads from its recovery folder on its second run', async () => {
  const src = f.path('src');
  await mkdir(src);
  await writeFile(join(src, 'a'), randomBytes(300_000));
  await backup(f.vault, [src], { scratchDir: f.path('scratch') });
  for (let i = 0; i < 3; i++) await writeIndexObject(f.store, f.vault.keys, []);
  const store = new CountingStore(f.store);
  const vault = await Vault.open(store, PASSPHRASE);
  const options = { recoveryFolder: f.path('recovery') };
  await restore(vault, 'latest', f.path('t1'), options);
  expect(store.count('index/')).toBe(4);
  store.reset();
  const again = await restore(vault, 'latest', f.path('t2'), options);
  expect(again.errors).toEqual([]);
  expect(store.count('index/')).toBe(0);
  expect(vault.lastIndexLoad).toEqual({ cached: (await f.vault.loadIndex()).size, read: 0 });
});
