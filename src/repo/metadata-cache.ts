/**
 * The metadata cache: index objects, snapshots and tree blobs read from a remote vault, kept in a folder of the
 * agent's own cache (the scratch folder for a backup, the recovery folder for a restore), so that a run after the
 * first pays the network only for what changed since.
 *
 * Layout: `<folder>/metadata/<vault id>/` (0700), one file per object, `index-<id>`, `snapshot-<id>`, `tree-<id>`
 * (0600), holding the object's sealed bytes as the vault holds them (a tree blob: its sealed bytes from its pack,
 * cached by blob id, so a second read of a tree costs no range request). Keyed by the vault's id (from its
 * authenticated config), so two vaults never share an entry; an entry of another vault would not open anyway.
 *
 * Contracts:
 * - Nothing read from the cache is trusted. Every entry is authenticated again when read, the same way as from the
 *   vault: index objects and snapshots are opened (AEAD, their type and id in the associated data) before they are
 *   handed to the vault, which opens them as it opens what the store gives; tree blobs are opened by the vault's
 *   own {@link Vault.openBlobAt} (AEAD under the blob id, then the id checked against the plaintext). An entry that
 *   fails (a damaged byte, a truncated file, another object's bytes) is deleted and the object read from the vault.
 * - Only objects that opened, or that this run sealed and the store acknowledged (its index objects and snapshot,
 *   so the next run does not fetch them back), are written to the cache, atomically (a temporary file
 *   `.tmp-<pid>-…` created with O_EXCL|O_NOFOLLOW, then renamed), with no fsync: a file torn by a crash fails
 *   authentication and is read again.
 * - Bounded: at most {@link MetadataCacheOptions.maxBytes} bytes (256 MiB by default) and {@link MAX_ENTRIES}
 *   entries; the least recently used go first (recency is each file's mtime, touched on every hit, so it outlives
 *   the run). An object larger than the bound is not cached.
 * - Cleaned: when the vault's index objects or snapshots are listed to the end, the entries of that kind whose names
 *   the listing no longer shows (deleted by forget or prune) are removed. Tree blobs are not listed by the vault;
 *   a tree no snapshot uses any more is read no more, and ages out.
 * - Never follows a link: the folders are made and checked by {@link ensureUserFolder} (a real folder of this
 *   user, closed to others, below folders nobody else can change); files are opened with O_NOFOLLOW (and
 *   O_NONBLOCK, so a FIFO cannot hold a read), checked to be regular files, and renamed and removed by name (which
 *   never follows a link). A link met when reading is a miss (the object is read from the vault and the link
 *   replaced); links and stray files found when the cache is opened are removed.
 * - Never fails a run: a cache that cannot be opened, read or written is passed over (the object is read from the
 *   vault); only the vault's own errors reach the caller.
 * - Only for remote vaults by default ({@link metadataCacheFor}): a local vault is read as fast as the cache would
 *   be, and is left alone. Backups and restores use it; a dry run does not (it writes nothing), nor does verify
 *   (it checks the vault itself).
 * - Several runs may share the folder: files are replaced atomically and a file gone under a reader is a miss.
 *   Each run counts its own writes against the bound (the others' are counted by the next run to open it).
 *
 * File calls are synchronous: entries are small (a tree blob, a snapshot, an index object of a few MiB at most)
 * and on a local disk, where a thread-pool round trip per call costs more than the call.
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import { closeSync, constants, fstatSync, futimesSync, lstatSync, mkdirSync, openSync, readSync, readdirSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { type SealKeys, openObject } from '../crypto/envelope.js';
import { ObjectType, type ObjectTypeCode } from '../crypto/object-type.js';
import { type Clock, systemClock } from '../throttle/clock.js';
import { type Body, type CallOptions, type GetOptions, type PutOptions, type Store, type StoreObjectInfo, downloadTo } from '../transfer/store.js';
import { locationScheme } from '../transfer/location.js';
import { ensureUserFolder, userFolder } from '../stage/user-folders.js';
import { isGone } from '../processes.js';
import { Folder, idFromName } from './layout.js';
import type { Vault } from './vault.js';

/** Bytes the cache holds by default: the index and trees of a vault of a few million blobs and files. */
export const METADATA_CACHE_BYTES = 256 * 1024 * 1024;
/** Entries the cache holds at most, whatever their size: bounds the memory its bookkeeping takes (~100 B each). */
export const MAX_ENTRIES = 200_000;

export interface MetadataCacheOptions {
  /** Bytes of entries the cache may hold; the least recently used go first. @default METADATA_CACHE_BYTES */
  readonly maxBytes?: number;
  /**
   * Use the cache for a vault in a local folder too. A local vault needs none (its reads are as fast as the
   * cache's); this is for tests and measurements. @default false
   */
  readonly localVaults?: boolean;
  /** Sets the files' recency. @default systemClock */
  readonly clock?: Clock;
}

/** The kinds of entry. */
export type MetadataKind = 'index' | 'snapshot' | 'tree';

/** What a cache did since it was opened. */
export interface MetadataCacheStats {
  /** Entries read and handed on (each then authenticated). */
  hits: number;
  /** Entries looked for and not there. */
  misses: number;
  /** Entries that failed authentication (or were not regular files) and were deleted. */
  rejected: number;
  /** Entries written. */
  written: number;
  /** Entries removed to stay within the bounds. */
  evicted: number;
  /** Entries removed because the vault's listing no longer shows them. */
  cleaned: number;
}

interface Entry {
  size: number;
  /** When it was written or found (a sequence number): a listing cleans only entries older than itself. */
  added: number;
}

const ENTRY = /^(index|snapshot|tree)-([0-9a-f]{64})$/;
const TEMP = /^\.tmp-(\d+)-[0-9a-f]+$/;
const READ_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;
const CREATE_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

export class MetadataCache {
  /** The cache's folder (this vault's). */
  readonly dir: string;
  readonly maxBytes: number;
  readonly stats: MetadataCacheStats = { hits: 0, misses: 0, rejected: 0, written: 0, evicted: 0, cleaned: 0 };
  /** Entries by file name, least recently used first (a Map keeps insertion order; a use moves one to the end). */
  readonly #entries = new Map<string, Entry>();
  readonly #clock: Clock;
  #bytes = 0;
  #sequence = 0;

  private constructor(dir: string, maxBytes: number, clock: Clock) {
    this.dir = dir;
    this.maxBytes = maxBytes;
    this.#clock = clock;
  }

  /**
   * Opens (creating) the cache of vault `vaultId` under `folder`, takes stock of what earlier runs left (removing
   * leftovers of dead runs, and anything that is not a regular entry), and trims it to the bounds. Returns
   * `undefined` when the folder cannot be used safely (a link, another user's, open to others, below a folder
   * another user can change) or `vaultId` is not a vault id: the run then goes without a cache.
   */
  static open(folder: string, vaultId: string, options: MetadataCacheOptions = {}): MetadataCache | undefined {
    const maxBytes = options.maxBytes ?? METADATA_CACHE_BYTES;
    if (!Number.isSafeInteger(maxBytes) || maxBytes < 0) throw new RangeError(`"maxBytes" expected a whole number of bytes, got ${maxBytes}`);
    if (!/^[0-9a-f]{64}$/.test(vaultId)) return undefined;
    let dir: string;
    try {
      dir = ensureUserFolder(join(resolve(folder), 'metadata', vaultId));
    } catch {
      return undefined;
    }
    const cache = new MetadataCache(dir, maxBytes, options.clock ?? systemClock);
    cache.#takeStock();
    return cache;
  }

  /** Bytes held now. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Entries held now. */
  get size(): number {
    return this.#entries.size;
  }

  /** True when entry `idHex` of `kind` is held. */
  has(kind: MetadataKind, idHex: string): boolean {
    return this.#entries.has(`${kind}-${idHex}`);
  }

  /**
   * The bytes of entry `idHex` of `kind`, not yet authenticated (the caller MUST authenticate them, and
   * {@link reject} them when they fail), or `undefined` when it is not held (or cannot be read).
   */
  read(kind: MetadataKind, idHex: string): Buffer | undefined {
    const name = `${kind}-${idHex}`;
    const entry = this.#entries.get(name);
    if (!entry) {
      this.stats.misses++;
      return undefined;
    }
    let fd: number | undefined;
    try {
      fd = openSync(join(this.dir, name), READ_FLAGS);
      const st = fstatSync(fd);
      if (!st.isFile() || st.size > this.maxBytes) {
        this.reject(kind, idHex);
        return undefined;
      }
      const bytes = Buffer.allocUnsafe(st.size);
      let got = 0;
      while (got < bytes.length) {
        const n = readSync(fd, bytes, got, bytes.length - got, got);
        if (n === 0) break;
        got += n;
      }
      const seconds = this.#clock.now() / 1000;
      futimesSync(fd, seconds, seconds);
      this.#entries.delete(name);
      this.#entries.set(name, entry);
      this.stats.hits++;
      return got === bytes.length ? bytes : bytes.subarray(0, got);
    } catch {
      // Gone under us (another run evicted it), a link put in its place (ELOOP), or unreadable: not held.
      this.#forget(name);
      this.stats.misses++;
      return undefined;
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
  }

  /** Keeps `bytes` (already authenticated) as entry `idHex` of `kind`, then trims the cache to its bounds. */
  write(kind: MetadataKind, idHex: string, bytes: Uint8Array): void {
    if (bytes.length > this.maxBytes) return;
    const name = `${kind}-${idHex}`;
    const temp = join(this.dir, `.tmp-${process.pid}-${randomBytes(6).toString('hex')}`);
    let fd: number | undefined;
    try {
      fd = openSync(temp, CREATE_FLAGS, 0o600);
      for (let done = 0; done < bytes.length; ) done += writeSync(fd, bytes, done, bytes.length - done);
      closeSync(fd);
      fd = undefined;
      renameSync(temp, join(this.dir, name));
    } catch {
      if (fd !== undefined) closeSync(fd);
      removeQuietly(temp);
      return; // a full disk or the like: the run goes on without this entry
    }
    this.#forget(name);
    this.#entries.set(name, { size: bytes.length, added: ++this.#sequence });
    this.#bytes += bytes.length;
    this.stats.written++;
    this.#trim();
  }

  /** Deletes entry `idHex` of `kind`: its bytes did not authenticate. */
  reject(kind: MetadataKind, idHex: string): void {
    this.remove(kind, idHex);
    this.stats.rejected++;
  }

  /** Deletes entry `idHex` of `kind`, if held. */
  remove(kind: MetadataKind, idHex: string): void {
    const name = `${kind}-${idHex}`;
    if (!this.#entries.has(name)) return;
    removeQuietly(join(this.dir, name));
    this.#forget(name);
  }

  /**
   * Starts a listing of `kind`: returns the function to call when it has run to the end with the ids (hex) it
   * showed, which removes the entries of that kind it did not show. Entries written after the listing began are
   * kept (the listing may have started before their objects were written).
   */
  listing(kind: MetadataKind): (shown: ReadonlySet<string>) => void {
    const began = this.#sequence;
    return (shown) => {
      const prefix = `${kind}-`;
      for (const [name, entry] of [...this.#entries]) {
        if (!name.startsWith(prefix) || entry.added > began || shown.has(name.slice(prefix.length))) continue;
        removeQuietly(join(this.dir, name));
        this.#forget(name);
        this.stats.cleaned++;
      }
    };
  }

  /**
   * A tree blob (or any blob cached by id) through the cache: the cached sealed bytes when `open` accepts them,
   * else (none, or they fail: then they are deleted) the bytes `fetch` reads from the vault, opened by `open` and
   * then kept. `open` MUST authenticate the bytes against `idHex` and throw when they do not open.
   */
  async blob<T>(idHex: string, fetch: () => Promise<Buffer>, open: (sealed: Buffer) => T): Promise<T> {
    const cached = this.read('tree', idHex);
    if (cached) {
      try {
        return open(cached);
      } catch {
        this.reject('tree', idHex);
      }
    }
    const sealed = await fetch();
    const value = open(sealed);
    this.write('tree', idHex, sealed);
    return value;
  }

  /**
   * `inner` with its index objects and snapshots read through this cache, authenticated under `keys`, and kept
   * when written; listings of `index/` and `snapshots/` clean the cache. Every other call passes through unchanged.
   */
  store(inner: Store, keys: SealKeys): Store {
    return new CachingStore(inner, this, keys);
  }

  #takeStock(): void {
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch {
      return;
    }
    const found: { name: string; size: number; used: number }[] = [];
    for (const name of names) {
      const path = join(this.dir, name);
      const temp = TEMP.exec(name);
      if (temp) {
        if (isGone(Number(temp[1]))) removeQuietly(path); // a write a dead run left half done
        continue;
      }
      try {
        const st = lstatSync(path);
        if (ENTRY.test(name) && st.isFile()) found.push({ name, size: st.size, used: st.mtimeMs });
        else if (!st.isDirectory()) unlinkSync(path); // a link or a stray file: not ours to trust
      } catch {
        // gone meanwhile
      }
    }
    found.sort((a, b) => a.used - b.used);
    for (const f of found) {
      this.#entries.set(f.name, { size: f.size, added: 0 });
      this.#bytes += f.size;
    }
    this.#trim();
  }

  /** Removes the least recently used entries until the cache is within its bounds. */
  #trim(): void {
    for (const [name] of this.#entries) {
      if (this.#bytes <= this.maxBytes && this.#entries.size <= MAX_ENTRIES) return;
      removeQuietly(join(this.dir, name));
      this.#forget(name);
      this.stats.evicted++;
    }
  }

  #forget(name: string): void {
    const entry = this.#entries.get(name);
    if (!entry) return;
    this.#entries.delete(name);
    this.#bytes -= entry.size;
  }
}

function removeQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // already gone
  }
}

/** The cached kinds, by the vault folder their objects live in. */
const KINDS = [
  { folder: Folder.index, kind: 'index', type: ObjectType.index },
  { folder: Folder.snapshots, kind: 'snapshot', type: ObjectType.snapshot },
] as const;

function kindOf(name: string): { kind: MetadataKind; type: ObjectTypeCode; id: Buffer } | undefined {
  for (const k of KINDS) {
    const id = idFromName(k.folder, name);
    if (id) return { kind: k.kind, type: k.type, id };
  }
  return undefined;
}

/** See {@link MetadataCache.store}. */
class CachingStore implements Store {
  readonly #inner: Store;
  readonly #cache: MetadataCache;
  readonly #keys: SealKeys;

  constructor(inner: Store, cache: MetadataCache, keys: SealKeys) {
    this.#inner = inner;
    this.#cache = cache;
    this.#keys = keys;
  }

  get location(): string {
    return this.#inner.location;
  }

  get pacesWire(): boolean | undefined {
    return this.#inner.pacesWire;
  }

  async get(name: string, options?: GetOptions): Promise<Buffer> {
    const cached = options?.offset === undefined && options?.length === undefined ? kindOf(name) : undefined;
    if (!cached) return this.#inner.get(name, options);
    const { kind, type, id } = cached;
    const hex = id.toString('hex');
    const bytes = this.#cache.read(kind, hex);
    if (bytes) {
      if (this.#opens(type, id, bytes)) return bytes;
      this.#cache.reject(kind, hex);
    }
    const sealed = await this.#inner.get(name, options);
    if (this.#opens(type, id, sealed)) this.#cache.write(kind, hex, sealed);
    return sealed;
  }

  async put(name: string, body: Body, options?: PutOptions): Promise<void> {
    await this.#inner.put(name, body, options);
    // What this run writes is read by the next one: kept now, it is never fetched back (and is authenticated
    // when read, as every entry is).
    const cached = body instanceof Uint8Array ? kindOf(name) : undefined;
    if (cached) this.#cache.write(cached.kind, cached.id.toString('hex'), body as Uint8Array);
  }

  async *list(prefix: string, options?: CallOptions): AsyncIterable<StoreObjectInfo> {
    const k = KINDS.find((c) => prefix === `${c.folder}/`);
    if (!k) {
      yield* this.#inner.list(prefix, options);
      return;
    }
    const done = this.#cache.listing(k.kind);
    const shown = new Set<string>();
    for await (const o of this.#inner.list(prefix, options)) {
      const hex = idFromName(k.folder, o.name)?.toString('hex');
      if (hex && this.#cache.has(k.kind, hex)) shown.add(hex); // only what is held: memory stays the cache's size
      yield o;
    }
    done(shown); // only a listing run to the end says what the vault no longer has
  }

  stat(name: string, options?: CallOptions): Promise<StoreObjectInfo | undefined> {
    return this.#inner.stat(name, options);
  }

  async delete(name: string, options?: CallOptions): Promise<void> {
    await this.#inner.delete(name, options);
    const cached = kindOf(name);
    if (cached) this.#cache.remove(cached.kind, cached.id.toString('hex'));
  }

  download(name: string, path: string, options?: CallOptions): Promise<number> {
    return downloadTo(this.#inner, name, path, options);
  }

  /** True when `sealed` opens as the object of `type` stored under `id`. */
  #opens(type: ObjectTypeCode, id: Buffer, sealed: Uint8Array): boolean {
    try {
      openObject(this.#keys, type, id, sealed);
      return true;
    } catch {
      return false;
    }
  }
}

/**
 * True when the vault at `location` is reached over a network (any location but a folder path or a `file://` URL):
 * the vaults a metadata cache is for.
 */
export function isRemoteVault(location: string): boolean {
  const scheme = locationScheme(location);
  return scheme !== undefined && scheme !== 'file';
}

/**
 * `vault` reading its metadata through a cache under `folder` (the scratch or recovery folder; this user's default
 * one of `kind` when undefined), when the vault is remote (or `options.localVaults`) and the cache can be opened
 * safely; else `vault` itself. `options === false` turns the cache off.
 */
export function metadataCacheFor(vault: Vault, folder: string | undefined, kind: 'scratch' | 'recovery', options: MetadataCacheOptions | false = {}): Vault {
  if (options === false || (!options.localVaults && !isRemoteVault(vault.store.location))) return vault;
  let root: string;
  try {
    root = folder === undefined ? ensureUserFolder(userFolder(kind)) : resolve(folder);
    if (folder !== undefined) mkdirSync(root, { recursive: true, mode: 0o700 });
  } catch {
    return vault; // the run reports an unusable folder where it uses it
  }
  const cache = MetadataCache.open(root, vault.config.id, options);
  return cache ? vault.withMetadataCache(cache) : vault;
}
