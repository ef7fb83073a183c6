/**
 * Opens the store for a vault location, the one place that tells a folder from a URL:
 * `http(s)://…` is an Azure Blob Storage container ({@link AzureStore}), anything else a local folder
 * ({@link LocalStore}). Remote stores are opened under the retry policy (a refused or reset first connection is
 * tried again) and wrapped in the retry decorator; both are then composed by {@link storeChain} (retry → concurrency → request rate → throttle → backend).
 *
 * @module
 */
import type { AzureStoreOptions } from './azure-store.js';
import { isRemoteLocation } from './location.js';
import { LocalStore } from './local-store.js';
import { type StoreChainOptions, storeChain } from './limits.js';
import { type RetryOptions, retryOpen } from './retry.js';
import type { Store } from './store.js';

export interface OpenStoreOptions extends Omit<StoreChainOptions, 'retry'> {
  /** Create the folder or container when it does not exist. @default false */
  readonly create?: boolean;
  /** Options for an Azure location (credentials, proxy, block size, timeouts). */
  readonly azure?: Omit<AzureStoreOptions, 'create' | 'signal'>;
  /** Retries for a remote location; `false` for none. @default DEFAULT_RETRY_POLICY */
  readonly retry?: RetryOptions | false;
  readonly signal?: AbortSignal;
}

/** The store chain for `location`. */
export async function openStore(location: string, options: OpenStoreOptions = {}): Promise<Store> {
  if (isRemoteLocation(location)) {
    // Loaded only for a remote vault: the HTTP client costs a tenth of a second to load.
    const { AzureStore } = await import('./azure-store.js');
    const { retry, ...chain } = options;
    const open = (signal: AbortSignal | undefined) => AzureStore.open(location, { ...options.azure, create: options.create ?? false, ...(signal ? { signal } : {}) });
    // The first connection is retried as every later call is: a refused or reset connection is often a moment's.
    const backend = retry === false ? await open(options.signal) : await retryOpen(location, open, { ...(retry ?? {}), ...(options.signal ? { signal: options.signal } : {}) });
    return storeChain(backend, retry === false ? chain : { ...chain, retry: retry ?? {} });
  }
  const { retry: _none, ...chain } = options;
  return storeChain(await LocalStore.open(location, { create: options.create ?? false }), chain);
}
