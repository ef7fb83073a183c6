/**
 * The `Store` port: the one narrow interface every vault backend implements (local folder, Azure Blob), and that
 * every policy wraps (retry, throttle, concurrency) to return another Store.
 *
 * Names are vault names (FORMAT.md §1): `/`-separated, relative, made of `[A-Za-z0-9._-]` segments, never `.` or
 * `..`; {@link checkName} enforces it, so no backend can be led outside its root.
 *
 * Contracts, for every implementation:
 * - `put` MUST be atomic: a reader sees the whole object or nothing, never a prefix, including after a crash.
 *   With `ifNotExists`, an existing object is not replaced (`VP_ALREADY_EXISTS`).
 * - `put` bodies are replayable: a {@link ReplayableBody} can be streamed again for each attempt.
 * - `get` of a missing object rejects with `VP_NOT_FOUND`; a range past the end returns what exists.
 * - `list` MUST yield every object under the prefix that existed before the call began and still exists, once.
 * - `delete` of a missing object succeeds (idempotent).
 * - Every method MUST reject with `VP_ABORTED` once its signal aborts, and MUST NOT start work after.
 * - Errors carry `retryable` as the backend knows it: a full disk is permanent, a timeout is not.
 *
 * A vault reaches its store through {@link typedErrors}, so that whatever a backend or a decorator raises reaches
 * the vault's callers as a VaultpathError (`VP_STORE_IO` with the original as `cause` when it was not one).
 *
 * @module
 */
import { VaultpathError } from '../errors.js';

/** A body that can be streamed again for every attempt (from the scratch cache). */
export interface ReplayableBody {
  readonly size: number;
  /** A fresh stream of the whole body. */
  stream(): AsyncIterable<Uint8Array>;
  /**
   * The local file that holds exactly the body, when there is one (a staged pack). A local store may take the
   * file by hard link or kernel copy instead of streaming it. The file MUST NOT change until `put` settles.
   */
  readonly path?: string;
}

export type Body = Uint8Array | ReplayableBody;

export interface StoreObjectInfo {
  readonly name: string;
  readonly size: number;
}

export interface CallOptions {
  readonly signal?: AbortSignal;
  /**
   * Set by the throttle for a backend that declares `pacesWire`: the backend awaits it for every piece of a body
   * as the piece goes on the wire (request bodies of `put`, response bodies of `get` and `download`), so the rate
   * holds where the bytes travel, not where they are read.
   */
  readonly pace?: (bytes: number, signal?: AbortSignal) => Promise<void>;
}

export interface PutOptions extends CallOptions {
  /** Create only: fail with `VP_ALREADY_EXISTS` instead of replacing an existing object. */
  readonly ifNotExists?: boolean;
  /**
   * Which attempt this is, counted from 1, set by the retry decorator. A backend may use it to tell its own earlier
   * write (whose answer was lost) from somebody else's: the Azure store reads an existing object back and compares
   * it when a create-only retry finds it there. @default 1
   */
  readonly attempt?: number;
}

export interface GetOptions extends CallOptions {
  /** First byte to read. @default 0 */
  readonly offset?: number;
  /** Bytes to read from `offset`. @default to the end */
  readonly length?: number;
}

export interface Store {
  /** Where the store is, for messages; never contains secrets. */
  readonly location: string;
  /**
   * True when the backend buffers bodies before sending them (a block and its checksum) and so takes the
   * throttle's `pace` option to pay at the wire; otherwise the throttle pays while the body is streamed to it.
   * A decorator forwards its inner store's value and passes every call's options (with `pace`) through, so a
   * throttle placed outside it still pays where the bytes travel.
   */
  readonly pacesWire?: boolean;
  put(name: string, body: Body, options?: PutOptions): Promise<void>;
  get(name: string, options?: GetOptions): Promise<Buffer>;
  /** The object's size, or `undefined` when it does not exist. */
  stat(name: string, options?: CallOptions): Promise<StoreObjectInfo | undefined>;
  /** Objects whose names start with `prefix` (e.g. `snapshots/`). */
  list(prefix: string, options?: CallOptions): AsyncIterable<StoreObjectInfo>;
  delete(name: string, options?: CallOptions): Promise<void>;
  /**
   * Optional: writes object `name` to the local file `path` (created or replaced) without holding it in memory.
   * Callers use {@link downloadTo}, which falls back to `get`.
   */
  download?(name: string, path: string, options?: CallOptions): Promise<number>;
}

const progressed = new WeakSet<object>();

/**
 * Marks `e` as the failure of an attempt that still moved its operation forward (a write whose blocks were partly
 * acknowledged, so a retry resumes rather than restarts). The retry decorator does not count such attempts against
 * its attempt limit; its deadline still bounds them.
 */
export function markProgress<E>(e: E): E {
  if (typeof e === 'object' && e !== null) progressed.add(e);
  return e;
}

/** True when `e` was marked by {@link markProgress}. */
export function madeProgress(e: unknown): boolean {
  return typeof e === 'object' && e !== null && progressed.has(e);
}

/** Writes object `name` of `store` to the local file `path`; returns its size. */
export async function downloadTo(store: Store, name: string, path: string, options: CallOptions = {}): Promise<number> {
  if (store.download) return store.download(name, path, options);
  const { writeFile } = await import('node:fs/promises');
  const bytes = await store.get(name, options);
  await writeFile(path, bytes);
  return bytes.length;
}

const SEGMENT = /^[A-Za-z0-9._-]+$/;

/**
 * Throws `VP_INVALID_NAME` unless `name` is a safe vault name.
 * @example checkName('data/3f/3f…') // ok;  checkName('../etc/passwd') // throws
 */
export function checkName(name: string): void {
  const ok =
    typeof name === 'string' &&
    name.length > 0 &&
    name.length <= 1024 &&
    name.split('/').every((s) => SEGMENT.test(s) && s !== '.' && s !== '..');
  if (!ok) {
    throw new VaultpathError('VP_INVALID_NAME', `"${String(name).slice(0, 200)}" is not a valid object name in a vault.`);
  }
}

/** The size of a body. */
export function bodySize(body: Body): number {
  return body instanceof Uint8Array ? body.length : body.size;
}

/** A body as a stream of buffers. */
export async function* bodyStream(body: Body): AsyncIterable<Uint8Array> {
  if (body instanceof Uint8Array) yield body;
  else yield* body.stream();
}

/** Stores made by {@link typedErrors}: wrapping one again would only add a layer. */
const typedStores = new WeakSet<Store>();

/**
 * `e` as a {@link VaultpathError}: one already is, unchanged; an abort (the signal's, or an `AbortError`) becomes
 * `VP_ABORTED`; anything else a store or a decorator raised (a raw errno error from fs, a `TypeError` from a broken
 * decorator, a thrown string) becomes `VP_STORE_IO` naming the store and what failed, the original kept as `cause`.
 */
export function storeFailure(e: unknown, location: string, what: string, signal?: AbortSignal): VaultpathError {
  if (e instanceof VaultpathError) return e;
  if (signal?.aborted || (e instanceof Error && e.name === 'AbortError')) {
    return new VaultpathError('VP_ABORTED', 'The operation was aborted.', { cause: e });
  }
  const code = typeof e === 'object' && e !== null && typeof (e as { code?: unknown }).code === 'string' ? `${(e as { code: string }).code}: ` : '';
  const message = e instanceof Error ? e.message : String(e);
  return new VaultpathError('VP_STORE_IO', `Could not ${what} in the vault at ${location} (${code}${message.slice(0, 300)}).`, { cause: e });
}

/**
 * A Store whose every failure is a {@link VaultpathError} (see {@link storeFailure}): the one place where errors
 * of a backend or of any decorator between it and the vault are typed, so callers of a vault can rely on `code`.
 * Errors that already are VaultpathErrors pass unchanged; so do results. Wrapping a wrapped store returns it.
 */
export function typedErrors(store: Store): Store {
  if (typedStores.has(store)) return store;
  const typed: Store = {
    get location() {
      return store.location;
    },
    get pacesWire() {
      return store.pacesWire;
    },
    put: (name, body, options) => guard(store, `write ${name}`, options, () => store.put(name, body, options)),
    get: (name, options) => guard(store, `read ${name}`, options, () => store.get(name, options)),
    stat: (name, options) => guard(store, `look up ${name}`, options, () => store.stat(name, options)),
    delete: (name, options) => guard(store, `delete ${name}`, options, () => store.delete(name, options)),
    list: (prefix, options) => guardList(store, prefix, options),
    ...(store.download ? { download: (name: string, path: string, options?: CallOptions) => guard(store, `read ${name}`, options, () => store.download!(name, path, options)) } : {}),
  };
  typedStores.add(typed);
  return typed;
}

async function guard<T>(store: Store, what: string, options: CallOptions | undefined, call: () => Promise<T>): Promise<T> {
  try {
    // Awaited inside the try: a decorator that throws before returning its promise is caught as well.
    return await call();
  } catch (e) {
    throw storeFailure(e, store.location, what, options?.signal);
  }
}

async function* guardList(store: Store, prefix: string, options: CallOptions | undefined): AsyncIterable<StoreObjectInfo> {
  let iterator: AsyncIterator<StoreObjectInfo>;
  try {
    iterator = store.list(prefix, options)[Symbol.asyncIterator]();
  } catch (e) {
    throw storeFailure(e, store.location, `list ${prefix}`, options?.signal);
  }
  let finished = false;
  try {
    for (;;) {
      let step: IteratorResult<StoreObjectInfo>;
      try {
        step = await iterator.next();
      } catch (e) {
        finished = true;
        throw storeFailure(e, store.location, `list ${prefix}`, options?.signal);
      }
      if (step.done) {
        finished = true;
        return;
      }
      yield step.value;
    }
  } finally {
    // The consumer stopped early (a break, or an error of its own): the backend releases what the listing holds.
    if (!finished) await iterator.return?.().catch(() => undefined);
  }
}
