/**
 * The registry of store kinds: every registered kind passes the Store conformance suite through openStore (the way
 * a vault opens it), a kind added by a program is one module plus one registerStoreKind call, and a location no
 * kind takes is refused, never taken for a folder.
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { openStore } from '../../src/transfer/open.js';
import { registerStoreKind, resolveStoreKind, storeKinds } from '../../src/transfer/registry.js';
import { storeConformance, type StoreFixture } from '../support/store-conformance.js';
import { azureLocation, azurite, containerName } from '../support/azure.js';
import { tempDir } from '../support/trees.js';
import { dropMemoryVault, memoryKind } from './registry-memory-store.js';

// The one line a program adds for a new kind of store.
const unregisterMemory = registerStoreKind(memoryKind);
afterAll(() => unregisterMemory());

async function folder(asUrl: boolean): Promise<StoreFixture> {
  const dir = await tempDir('vaultpath-registry-');
  const path = join(dir, 'vault');
  const store = await openStore(asUrl ? pathToFileURL(path).href : path, { create: true, retry: false });
  return { store, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** How each kind this machine can reach is opened fresh and empty; a kind missing here fails the test below. */
const fixtures: Record<string, Array<[string, () => Promise<StoreFixture>]>> = {
  local: [
    ['a folder path', () => folder(false)],
    ['a file:// URL', () => folder(true)],
  ],
  azure: [
    [
      'Azurite, credentials under stores.azure',
      async () => {
        const store = await openStore(azureLocation(containerName('registry')), { create: true, stores: { azure: { credential: azurite().credential, proxy: false, blockSize: 1024 * 1024 } } });
        return { store, cleanup: async () => undefined };
      },
    ],
  ],
  mem: [
    [
      'mem://, registered by the test',
      async () => {
        const location = `mem://${containerName('vault')}`;
        const store = await openStore(location, { create: true });
        return { store, cleanup: async () => dropMemoryVault(location) };
      },
    ],
  ],
};

for (const [kind, ways] of Object.entries(fixtures)) {
  for (const [how, make] of ways) storeConformance(`store kind "${kind}" through openStore (${how})`, make);
}

describe('the registry of store kinds', () => {
  it('has a conformance fixture for every registered kind', () => {
    expect(storeKinds().map((k) => k.name).sort()).toEqual(Object.keys(fixtures).sort());
  });

  it('resolves folders and file:// to local, http(s) to azure, and a registered scheme to its kind', () => {
    expect(resolveStoreKind('/srv/vault').name).toBe('local');
    expect(resolveStoreKind('relative/vault').name).toBe('local');
    expect(resolveStoreKind('file:///srv/vault').name).toBe('local');
    expect(resolveStoreKind('https://acme.blob.core.windows.net/backups').name).toBe('azure');
    expect(resolveStoreKind('http://127.0.0.1:10000/devstoreaccount1/vault').name).toBe('azure');
    expect(resolveStoreKind('MEM://x').name).toBe('mem');
  });

  it('refuses a location no kind takes, rather than opening a folder named after it', async () => {
    await expect(openStore('s3://bucket/vault')).rejects.toMatchObject({ code: 'VP_NOT_A_VAULT', message: expect.stringContaining('s3://') });
    await expect(openStore('s3://bucket/vault')).rejects.toMatchObject({ message: expect.stringContaining('mem://') });
  });

  it('stops taking a scheme once its kind is removed', async () => {
    const location = `mem://${containerName('gone')}`;
    const remove = registerStoreKind({ ...memoryKind, name: 'mem-again', schemes: ['mem2'] });
    await openStore(location.replace('mem:', 'mem2:'), { create: true });
    remove();
    await expect(openStore(location.replace('mem:', 'mem2:'))).rejects.toMatchObject({ code: 'VP_NOT_A_VAULT' });
    dropMemoryVault(location);
  });

  it('gives a kind its own options: stores.azure, with azure kept as the older spelling and stores.azure winning', async () => {
    const { credential } = azurite();
    const wrong = { accountName: credential.accountName, accountKey: Buffer.alloc(64, 1).toString('base64') };
    const location = azureLocation(containerName('options'));
    const viaAlias = await openStore(location, { create: true, retry: false, azure: { credential, proxy: false } });
    await viaAlias.put('config', Buffer.from('one'));
    const both = await openStore(location, { retry: false, azure: { credential: wrong, proxy: false }, stores: { azure: { credential } } });
    expect((await both.get('config')).toString()).toBe('one');
    const wrongOnly = await openStore(location, { retry: false, stores: { azure: { credential: wrong, proxy: false } } }).catch((e: unknown) => e);
    expect(wrongOnly).toMatchObject({ code: 'VP_STORE_AUTH' });
  });
});
