import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { AZURE_LIMITS, AzureStore, parseAzureLocation, redact } from '../../src/transfer/azure-store.js';
import { containerSas } from '../../src/transfer/azure-auth.js';
import { storeConformance } from '../support/store-conformance.js';
import { azureBehindFaultServer, azureLocation, azurite, containerName, newAzureStore } from '../support/azure.js';
import { startAuthProxy } from '../support/auth-proxy.js';
import { isRetryable, withRetry } from '../../src/transfer/retry.js';
import { startFaultServer } from '../support/fault-server.js';

storeConformance('Azure Blob store (Azurite), small blocks', async () => {
  // 1 MiB blocks and no single put beyond one block, so the 3 MiB body of the suite goes as Put Block × 4 and Put Block List.
  const { store } = await newAzureStore({ blockSize: 1024 * 1024, singlePutLimit: 0 });
  return { store, cleanup: () => store.close() };
});

storeConformance('Azure Blob store (Azurite) under a prefix', async () => {
  const { store } = await newAzureStore({ prefix: 'machines/one' });
  return { store, cleanup: () => store.close() };
});

describe('Azure vault locations', () => {
  it('reads the service form and the path form', () => {
    const service = parseAzureLocation('https://acme.blob.core.windows.net/backups/site-a/host1');
    expect(service).toMatchObject({ account: 'acme', container: 'backups', prefix: 'site-a/host1/' });
    expect(service.containerUrl.toString()).toBe('https://acme.blob.core.windows.net/backups');
    const path = parseAzureLocation('http://127.0.0.1:10000/devstoreaccount1/backups');
    expect(path).toMatchObject({ account: 'devstoreaccount1', container: 'backups', prefix: '' });
    expect(path.containerUrl.toString()).toBe('http://127.0.0.1:10000/devstoreaccount1/backups');
  });

  it.each(['https://acme.blob.core.windows.net/', 'https://acme.blob.core.windows.net/Backups', 'http://127.0.0.1:10000/acct/c1', 'not a url'])('refuses %j with the forms it takes', (location) => {
    expect(() => parseAzureLocation(location)).toThrow(expect.objectContaining({ code: 'VP_NOT_A_VAULT', message: expect.stringContaining('ACCOUNT.blob.core.windows.net') }));
  });

  it('prints a location without its SAS or user info', () => {
    expect(redact('https://u:p@acme.blob.core.windows.net/b?sv=1&sig=secret')).toBe('https://acme.blob.core.windows.net/b');
  });
});

describe('the Azure Blob store', () => {
  it('sends a large object as equal-sized blocks and commits them, with the whole MD5 recorded', async () => {
    const { store } = await newAzureStore({ blockSize: 256 * 1024, blockConcurrency: 3, singlePutLimit: 0 });
    try {
      const data = randomBytes(5 * 256 * 1024 + 999);
      await store.put('data/ab/pack', data, { ifNotExists: true });
      expect((await store.get('data/ab/pack')).equals(data)).toBe(true);
      expect((await store.get('data/ab/pack', { offset: 300_000, length: 500_000 })).equals(data.subarray(300_000, 800_000))).toBe(true);
      expect(await store.stat('data/ab/pack')).toEqual({ name: 'data/ab/pack', size: data.length });
    } finally {
      await store.close();
    }
  });

  it('pages through a listing longer than one page', async () => {
    const { store } = await newAzureStore({ listPageSize: 7 });
    try {
      const names = Array.from({ length: 23 }, (_, i) => `index/${String(i).padStart(5, '0')}`);
      await Promise.all(names.map((n) => store.put(n, Buffer.from(n))));
      await store.put('snapshots/other', Buffer.from('x'));
      const seen: string[] = [];
      for await (const o of store.list('index/')) seen.push(o.name);
      expect(seen).toEqual(names);
    } finally {
      await store.close();
    }
  });

  it('enforces the block count limit itself, before any request', async () => {
    const { store } = await newAzureStore({ blockSize: 1, singlePutLimit: 0 });
    try {
      await expect(store.put('data/00/big', Buffer.alloc(AZURE_LIMITS.maxBlocks + 1))).rejects.toMatchObject({ code: 'VP_STORE_LIMIT' });
      expect(await store.stat('data/00/big')).toBeUndefined();
    } finally {
      await store.close();
    }
  });

  it('refuses a wrong account key with VP_STORE_AUTH, naming no secret', async () => {
    const container = containerName();
    const { credential } = azurite();
    const wrong = { accountName: credential.accountName, accountKey: Buffer.alloc(64, 7).toString('base64') };
    const error = await AzureStore.open(azureLocation(container), { credential: wrong, proxy: false, create: true }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'VP_STORE_AUTH', status: 403 });
    expect(String((error as Error).message)).not.toContain(wrong.accountKey);
  });

  it('tells a missing container with VP_CONTAINER_NOT_FOUND', async () => {
    await expect(AzureStore.open(azureLocation(containerName('missing')), { credential: azurite().credential, proxy: false })).rejects.toMatchObject({
      code: 'VP_CONTAINER_NOT_FOUND',
      message: expect.stringContaining('does not exist'),
    });
  });

  it('works with a container SAS, and tells an expired one with VP_CREDENTIALS_EXPIRED', async () => {
    const { store, container, location } = await newAzureStore();
    await store.close();
    const { credential } = azurite();
    const good = containerSas(credential, { container, expiresOn: new Date(Date.now() + 3_600_000) });
    const viaSas = await AzureStore.open(location, { credential: { sasToken: good }, proxy: false });
    try {
      await viaSas.put('snapshots/s', Buffer.from('hello'));
      expect((await viaSas.get('snapshots/s')).toString()).toBe('hello');
    } finally {
      await viaSas.close();
    }
    const expired = containerSas(credential, { container, expiresOn: new Date(Date.now() - 60_000) });
    const error = await AzureStore.open(location, { credential: { sasToken: expired }, proxy: false }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'VP_CREDENTIALS_EXPIRED', message: expect.stringContaining('expired at') });
    expect(String((error as Error).message)).not.toContain(new URLSearchParams(expired).get('sig')!);
  });

  it('refuses a write with a read-only SAS as VP_STORE_AUTH', async () => {
    const { store, container, location } = await newAzureStore();
    await store.close();
    const readOnly = containerSas(azurite().credential, { container, permissions: 'rl', expiresOn: new Date(Date.now() + 3_600_000) });
    const viaSas = await AzureStore.open(location, { credential: { sasToken: readOnly }, proxy: false });
    try {
      await expect(viaSas.put('snapshots/s', Buffer.from('x'))).rejects.toMatchObject({ code: 'VP_STORE_AUTH' });
    } finally {
      await viaSas.close();
    }
  });

  it('takes credentials from the environment, and says which variables when there are none', async () => {
    const { store, location } = await newAzureStore();
    await store.close();
    const { credential } = azurite();
    const fromEnv = await AzureStore.open(location, { proxy: false, env: { AZURE_STORAGE_ACCOUNT: credential.accountName, AZURE_STORAGE_KEY: credential.accountKey } });
    await fromEnv.close();
    const conn = `DefaultEndpointsProtocol=http;AccountName=${credential.accountName};AccountKey=${credential.accountKey};BlobEndpoint=${azurite().endpoint}/${credential.accountName};`;
    const fromConn = await AzureStore.open(location, { proxy: false, env: { AZURE_STORAGE_CONNECTION_STRING: conn } });
    await fromConn.close();
    await expect(AzureStore.open(location, { proxy: false, env: {} })).rejects.toMatchObject({ code: 'VP_STORE_AUTH', message: expect.stringContaining('AZURE_STORAGE_KEY') });
  });
});

describe('the Azure Blob store behind an authenticated proxy', () => {
  const password = 'p:ss/wörd';

  it('sends every request through the proxy, with the credentials from the settings', async () => {
    const proxy = await startAuthProxy('agent', password);
    try {
      const { store } = await newAzureStore({ proxy: { url: proxy.url, username: 'agent', password } });
      try {
        await store.put('snapshots/via-proxy', Buffer.from('through'));
        expect((await store.get('snapshots/via-proxy')).toString()).toBe('through');
      } finally {
        await store.close();
      }
      expect(proxy.seen.length).toBeGreaterThanOrEqual(4);
      expect(proxy.seen.every((r) => r.accepted)).toBe(true);
      expect(proxy.seen.some((r) => r.method === 'PUT' && r.url.includes('/snapshots/via-proxy'))).toBe(true);
    } finally {
      await proxy.close();
    }
  });

  it('takes the proxy from HTTP_PROXY, credentials in the URL, unless NO_PROXY names the host', async () => {
    const proxy = await startAuthProxy('agent', password);
    try {
      const { store, location } = await newAzureStore({ proxy: false });
      await store.close();
      const env = { HTTP_PROXY: `http://agent:${encodeURIComponent(password)}@${new URL(proxy.url).host}` };
      const viaEnv = await AzureStore.open(location, { credential: azurite().credential, env });
      await viaEnv.close();
      expect(proxy.seen.length).toBe(1);
      const bypass = await AzureStore.open(location, { credential: azurite().credential, env: { ...env, NO_PROXY: 'localhost,127.0.0.1' } });
      await bypass.close();
      expect(proxy.seen.length).toBe(1);
    } finally {
      await proxy.close();
    }
  });

  it('fails fast with VP_PROXY_AUTH when the proxy refuses the password, and is not retried', async () => {
    const proxy = await startAuthProxy('agent', password);
    try {
      const { store, location } = await newAzureStore({ proxy: false });
      await store.close();
      const started = Date.now();
      const error = await AzureStore.open(location, { credential: azurite().credential, proxy: { url: proxy.url, username: 'agent', password: 'wrong' } }).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'VP_PROXY_AUTH', message: expect.stringContaining('refused the user name or password') });
      expect(String((error as Error).message)).not.toContain('wrong');
      expect(isRetryable(error)).toBe(false);
      expect(proxy.seen).toHaveLength(1);
      expect(Date.now() - started).toBeLessThan(5000);
    } finally {
      await proxy.close();
    }
  });
});

describe('the Azure Blob store with retries, through a fault server', () => {
  async function through(decide: Parameters<typeof startFaultServer>[1], options: { blockSize?: number; maxAttempts?: number } = {}) {
    const t = await azureBehindFaultServer(decide, { blockSize: options.blockSize ?? 4 * 1024 * 1024 });
    const store = withRetry(t.store, { policy: { baseDelayMs: 5, maxDelayMs: 20, maxAttempts: options.maxAttempts ?? 4 } });
    return { ...t, store };
  }

  it.each([
    ['a single Put Blob', 1024, 'PUT'],
    ['a Put Block List', 300 * 1024, 'comp=blocklist'],
  ])('treats a create-only write as done when its answer was lost (%s), and still refuses somebody else\u2019s object', async (_label, size, marker) => {
    let dropped = false;
    const t = await through((req) => {
      const hit = marker === 'PUT' ? req.method === 'PUT' && !req.url!.includes('comp=') : req.url!.includes(marker);
      if (!dropped && hit && req.url!.includes('snapshots/mine')) return (dropped = true), 'drop-after-commit';
      return 'pass';
    }, { blockSize: 128 * 1024 });
    try {
      const data = randomBytes(size);
      await t.store.put('snapshots/mine', data, { ifNotExists: true });
      expect(dropped).toBe(true);
      expect(t.store.stats.retries).toBe(1);
      expect((await t.direct.get('snapshots/mine')).equals(data)).toBe(true);
      // Another writer's object under the same name: a conflict, on a first attempt and on a retry alike.
      await t.direct.put('snapshots/theirs', randomBytes(size));
      await expect(t.store.put('snapshots/theirs', data, { ifNotExists: true })).rejects.toMatchObject({ code: 'VP_ALREADY_EXISTS' });
      await expect(t.direct.put('snapshots/theirs', data, { ifNotExists: true, attempt: 2 })).rejects.toMatchObject({ code: 'VP_ALREADY_EXISTS' });
    } finally {
      await t.close();
    }
  });

  it('starts no request once the signal aborts, even with retries pending', async () => {
    const controller = new AbortController();
    let settled = false;
    let afterSettled = 0;
    const t = await through((req) => {
      if (settled) afterSettled++;
      return req.url!.includes('comp=block&') ? { status: 503 } : 'pass';
    }, { blockSize: 64 * 1024, maxAttempts: 10_000 });
    try {
      const p = t.store.put('data/00/pack', randomBytes(1024 * 1024), { signal: controller.signal }).catch((e: unknown) => e);
      while (t.store.stats.retries === 0) await new Promise((resolve) => setTimeout(resolve, 5));
      controller.abort();
      const attempts = t.store.stats.attempts;
      expect(await p).toMatchObject({ code: 'VP_ABORTED' });
      expect(t.store.stats.attempts).toBe(attempts); // no attempt started after the abort
      // Requests already written when the signal aborted may still be read by the server (it shares this event
      // loop) a moment later; after that, nothing more arrives, though retries were going every few milliseconds.
      await new Promise((resolve) => setTimeout(resolve, 100));
      settled = true;
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(afterSettled).toBe(0);
    } finally {
      await t.close();
    }
  });
});
