/**
 * Opens the store for a vault location. The backend comes from the store kind that takes the location (see
 * {@link resolveStoreKind}: a folder or `file://` is a {@link LocalStore}, `http(s)://` an Azure Blob Storage
 * container, and any kind a program registers). A remote kind is opened under the retry policy (a refused or reset
 * first connection is tried again) and wrapped in the retry decorator; every backend is then composed by
 * {@link storeChain} (retry → concurrency → request rate → throttle → backend).
 *
 * A kind's own options are given under its name in `stores` (`stores.azure.credential`); `azure` is kept as the
 * older spelling of `stores.azure`, and where both are given `stores.azure` wins field by field.
 *
 * @module
 */
import type { AzureStoreOptions } from './azure-store.js';
import { type StoreChainOptions, storeChain } from './limits.js';
import { type StoreKindOptions, resolveStoreKind } from './registry.js';
import { type RetryOptions, retryOpen } from './retry.js';
import type { Store } from './store.js';

export interface OpenStoreOptions extends Omit<StoreChainOptions, 'retry'> {
  /** Create the folder or container when it does not exist. @default false */
  readonly create?: boolean;
  /** Each store kind's own options, under its name (`azure`, `local`, or a registered kind's). */
  readonly stores?: StoreKindOptions;
  /** The older spelling of `stores.azure` (credentials, proxy, block size, timeouts). */
  readonly azure?: Omit<AzureStoreOptions, 'create' | 'signal'>;
  /** Retries for a remote location; `false` for none. @default DEFAULT_RETRY_POLICY */
  readonly retry?: RetryOptions | false;
  readonly signal?: AbortSignal;
}

/** The Azure store's options in `options`: `stores.azure` over the older `azure`, field by field. */
export function azureOptions(options: OpenStoreOptions): Omit<AzureStoreOptions, 'create' | 'signal'> | undefined {
  const own = options.stores?.['azure'] as Omit<AzureStoreOptions, 'create' | 'signal'> | undefined;
  return options.azure ? { ...options.azure, ...own } : own;
}

/** The store chain for `location`. */
export async function openStore(location: string, options: OpenStoreOptions = {}): Promise<Store> {
  const kind = resolveStoreKind(location);
  const { retry, stores: _stores, azure: _azure, create, ...chain } = options;
  const own = kind.name === 'azure' ? azureOptions(options) : options.stores?.[kind.name];
  const open = (signal: AbortSignal | undefined) => kind.open(location, { create: create ?? false, options: own, ...(signal ? { signal } : {}) });
  if (!kind.remote || retry === false) return storeChain(await open(options.signal), chain);
  // The first connection is retried as every later call is: a refused or reset connection is often a moment's.
  const backend = await retryOpen(location, open, { ...(retry ?? {}), ...(options.signal ? { signal: options.signal } : {}) });
  return storeChain(backend, { ...chain, retry: retry ?? {} });
}
