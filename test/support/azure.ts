/** Azure test helpers: locations in the suite's Azurite (test/setup/azurite.ts), each test with a container of its own. */
import { randomBytes } from 'node:crypto';
import { inject } from 'vitest';
import { AzureStore, type AzureStoreOptions } from '../../src/transfer/azure-store.js';
import type { SharedKeyCredential } from '../../src/transfer/azure-auth.js';
import type { IncomingMessage } from 'node:http';
import { type Fault, type FaultServer, startFaultServer } from './fault-server.js';

export function azurite(): { endpoint: string; credential: SharedKeyCredential } {
  const a = inject('azurite');
  return { endpoint: a.endpoint, credential: { accountName: a.account, accountKey: a.key } };
}

/** A fresh container name. */
export function containerName(label = 'test'): string {
  return `${label}-${randomBytes(6).toString('hex')}`;
}

/** A vault location in Azurite (path style), optionally behind another endpoint (a fault server or so). */
export function azureLocation(container: string, options: { endpoint?: string; prefix?: string } = {}): string {
  const a = azurite();
  return `${options.endpoint ?? a.endpoint}/${a.credential.accountName}/${container}${options.prefix ? `/${options.prefix}` : ''}`;
}

/** Opens (creating) a store in a new container. */
export async function newAzureStore(options: AzureStoreOptions & { endpoint?: string; prefix?: string } = {}): Promise<{ store: AzureStore; container: string; location: string }> {
  const container = containerName();
  const location = azureLocation(container, options);
  const store = await AzureStore.open(location, { credential: azurite().credential, proxy: false, create: true, ...options });
  return { store, container, location };
}

/** The environment a CLI run needs to reach Azurite with the account key. */
export function azureEnv(): Record<string, string> {
  const a = azurite();
  return { AZURE_STORAGE_ACCOUNT: a.credential.accountName, AZURE_STORAGE_KEY: a.credential.accountKey };
}

/**
 * A new container reached two ways: `direct` to Azurite, and `store` through a fault server in front of it
 * (test/support/fault-server.ts) that answers as `decide` says. `close` stops all three.
 * Fault tests aim their faults at blocks, so `store` sends in blocks every object larger than one block
 * (`singlePutLimit: 0`) unless the options say otherwise.
 */
export async function azureBehindFaultServer(
  decide: (req: IncomingMessage, n: number) => Fault,
  options: Omit<AzureStoreOptions, 'credential' | 'proxy' | 'create'> = {},
): Promise<{ store: AzureStore; direct: AzureStore; server: FaultServer; container: string; close(): Promise<void> }> {
  const { store: direct, container } = await newAzureStore();
  const server = await startFaultServer(azurite().endpoint, decide);
  const store = await AzureStore.open(azureLocation(container, { endpoint: server.endpoint }), { credential: azurite().credential, proxy: false, singlePutLimit: 0, ...options });
  return {
    store,
    direct,
    server,
    container,
    close: async () => {
      await store.close();
      await direct.close();
      await server.close();
    },
  };
}
