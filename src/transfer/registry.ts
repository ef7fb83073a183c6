/**
 * The registry of store kinds: how a vault location becomes a backend. Each kind says which locations it takes
 * (`schemes`, or a `matches` test) and how to open one; {@link openStore} asks the registry and composes the
 * decorators around whatever backend comes back, so a new kind of store is one module plus one
 * {@link registerStoreKind} call.
 *
 * Contracts:
 * - A location is taken by the most recently registered kind that accepts it, so a program may register a kind
 *   that takes over a scheme a built-in kind also takes.
 * - A location with a `scheme://` no kind accepts fails with `VP_NOT_A_VAULT`, naming the schemes that are known:
 *   it is never taken for a folder by accident.
 * - A kind's own options (credentials, proxy, block size) are its business: they arrive in `open` as they were
 *   given under the kind's name in `OpenStoreOptions.stores`, unread by anything in between.
 * - A kind marked `remote` is opened under the retry policy (a refused first connection is tried again) and its
 *   store is wrapped in the retry decorator; a local kind is not.
 * - Built in: `local` (a folder path or a `file://` URL) and `azure` (`https://ACCOUNT.blob.core.windows.net/…` and
 *   the path style `http(s)://HOST:PORT/ACCOUNT/CONTAINER/…` of Azurite). The Azure module, and its HTTP client, is
 *   loaded only when an Azure location is opened.
 *
 * @module
 */
import { fileURLToPath } from 'node:url';
import { VaultpathError } from '../errors.js';
import type { AzureStoreOptions } from './azure-store.js';
import { locationScheme, redact } from './location.js';
import { LocalStore, type LocalStoreOptions } from './local-store.js';
import type { Store } from './store.js';

/** What a kind's `open` is given. */
export interface StoreKindOpenOptions<O> {
  /** Create the folder or container when it does not exist. */
  readonly create: boolean;
  /** The kind's own options, as given under its name in `OpenStoreOptions.stores`. */
  readonly options: O | undefined;
  readonly signal?: AbortSignal;
}

export interface StoreKind<O = unknown> {
  /** The name its options are given under (`stores[name]`), and that messages use. */
  readonly name: string;
  /** URL schemes it takes, without `://`, compared without case (`['s3']`). */
  readonly schemes?: readonly string[];
  /** Takes locations that `schemes` cannot describe (a folder path); tried with `schemes`. */
  matches?(location: string): boolean;
  /** Opened under the retry policy, and wrapped in the retry decorator. @default false */
  readonly remote?: boolean;
  /** Opens the backend at `location`; the chain of decorators is added by openStore. */
  open(location: string, options: StoreKindOpenOptions<O>): Promise<Store>;
}

/** The options of the built-in kinds, by name; any other kind's are its own. */
export interface StoreKindOptions {
  readonly local?: Omit<LocalStoreOptions, 'create'>;
  readonly azure?: Omit<AzureStoreOptions, 'create' | 'signal'>;
  readonly [kind: string]: unknown;
}

const kinds: StoreKind[] = [];


/**
 * Adds a kind of store. A kind registered again under its name replaces the earlier one (and keeps its place in
 * the order). Returns a function that removes it.
 */
export function registerStoreKind<O>(kind: StoreKind<O>): () => void {
  if (!/^[a-z][a-z0-9-]*$/.test(kind.name)) throw new VaultpathError('VP_INTERNAL', `A store kind is named with lower-case letters, digits and hyphens, not "${kind.name}".`);
  if (!kind.schemes?.length && !kind.matches) throw new VaultpathError('VP_INTERNAL', `The store kind "${kind.name}" takes no location: give it schemes or matches.`);
  const entry = kind as StoreKind;
  const at = kinds.findIndex((k) => k.name === kind.name);
  if (at >= 0) kinds[at] = entry;
  else kinds.push(entry);
  return () => {
    const i = kinds.indexOf(entry);
    if (i >= 0) kinds.splice(i, 1);
  };
}

/** The kinds registered now, oldest first. */
export function storeKinds(): readonly StoreKind[] {
  return [...kinds];
}

/**
 * The kind that takes `location`.
 * @throws {VaultpathError} `VP_NOT_A_VAULT` when no kind takes it.
 */
export function resolveStoreKind(location: string): StoreKind {
  const scheme = locationScheme(location);
  for (let i = kinds.length - 1; i >= 0; i--) {
    const kind = kinds[i]!;
    if (scheme !== undefined && kind.schemes?.some((s) => s.toLowerCase() === scheme)) return kind;
    if (kind.matches?.(location)) return kind;
  }
  const known = [...new Set(kinds.flatMap((k) => k.schemes ?? []))].map((s) => `${s}://`).join(', ');
  throw new VaultpathError(
    'VP_NOT_A_VAULT',
    `"${redact(location)}" is not a vault location this program can open: no store kind takes ${scheme ? `"${scheme}://"` : 'it'}. Give a folder, or a location of a known kind (${known || 'none registered'}).`,
  );
}

/** A folder path or file:// URL as the folder path. */
function folderOf(location: string): string {
  if (locationScheme(location) !== 'file') return location;
  try {
    return fileURLToPath(location);
  } catch (e) {
    throw new VaultpathError('VP_NOT_A_VAULT', `"${redact(location)}" is not a usable file:// location (${(e as Error).message}); give a folder path or file:///ABSOLUTE/PATH.`, { cause: e });
  }
}

registerStoreKind<StoreKindOptions['local']>({
  name: 'local',
  schemes: ['file'],
  matches: (location) => locationScheme(location) === undefined,
  open: (location, { create, options }) => LocalStore.open(folderOf(location), { ...options, create }),
});

registerStoreKind<StoreKindOptions['azure']>({
  name: 'azure',
  schemes: ['http', 'https'],
  remote: true,
  async open(location, { create, options, signal }) {
    // Loaded only for a remote vault: the HTTP client costs a tenth of a second to load.
    const { AzureStore } = await import('./azure-store.js');
    return AzureStore.open(location, { ...options, create, ...(signal ? { signal } : {}) });
  },
});
