/**
 * A vault: a Store holding the objects of format v1, opened with a passphrase.
 *
 * `Vault.create` writes a key slot and then the config (create-only, so two `init`s cannot both succeed);
 * `Vault.open` unlocks a key slot and reads the config. An open vault reads and writes the objects the engine needs:
 * the index (all index objects, merged into a {@link VaultIndex}), blobs (ranged reads from packs, authenticated and
 * checked against their id), trees, and snapshots; and it manages key slots (passphrase change).
 *
 * A vault given a metadata cache ({@link Vault.withMetadataCache}, metadata-cache.ts) reads index objects, snapshots
 * and tree blobs through it: what the cache holds is authenticated again on every read, and read from the store
 * again when it fails.
 *
 * Write ordering is the engine's duty (packs, then index, then snapshot); the vault only writes what it is given.
 * Nothing here ever rewrites or deletes a snapshot, an index or a pack, so a backup can never damage an earlier
 * snapshot. Concurrent backups into one vault need no lock: every object they write has a fresh name.
 *
 * Damage (contracts the engine relies on):
 * - Every call to the store goes through {@link typedErrors}: whatever the store raises reaches callers as a
 *   VaultpathError (`VP_STORE_IO` with its cause when it was not one).
 * - `create` leaves nothing behind when it fails (the key slot it wrote is removed, and the config when it was
 *   written by this call); `open` only reads, so opening a location that holds no vault writes nothing into it.
 * - A damaged index object does not stop anything: {@link Vault.loadIndex} goes on without it and records it in
 *   {@link VaultIndex.damaged} (its blobs are unknown, so a backup stores them again when it needs them).
 * - A snapshot's time is sealed inside it, so a damaged snapshot has no time: it might be the newest. `latest`
 *   is therefore never resolved while a snapshot cannot be read (`VP_SNAPSHOT_DAMAGED`, naming it) unless the
 *   caller asks to skip damaged snapshots, and then the skipped ones are named in the result. A prefix or id
 *   matching a damaged snapshot fails the same way; nothing else is taken in its place. Listings put damaged
 *   snapshots after every readable one (by id), each with its error.
 *
 * @module
 */
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { VaultpathError, throwIfAborted } from '../errors.js';
import { toHex } from '../bytes.js';
import { VaultKeys, generateMasterKey } from '../crypto/keys.js';
import { type KdfBounds, type KdfParams } from '../crypto/kdf.js';
import { createKeySlot, unlockKeySlots } from '../crypto/key-slot.js';
import { ChunkIdentifier } from '../crypto/chunk-id.js';
import { joinSealed, openBlob, openObject, sealObject } from '../crypto/envelope.js';
import { ObjectType } from '../crypto/object-type.js';
import { type ChunkerParams, DEFAULT_CHUNKER_PARAMS } from '../chunk/fastcdc.js';
import { type Store, typedErrors } from '../transfer/store.js';
import { type Clock, systemClock } from '../throttle/clock.js';
import { CONFIG_NAME, Folder, idFromName, objectName } from './layout.js';
import { type VaultConfig, VAULT_FORMAT_VERSION, openConfig, sealConfig } from './config.js';
import { type IndexEntry, type IndexReader, openIndexReader } from './index-file.js';
import { BlobIndex, type BlobIndexSnapshot } from './blob-index.js';
import { type IndexCache, indexCacheName, readIndexCache, writeIndexCache } from './index-cache.js';
import { Limiter } from '../limit.js';
import { writeIndexObject } from './index-writer.js';
import { PACK_TRAILER_LENGTH, type PackedType, openPackHeader, readPackTrailer } from './pack.js';
import { type Snapshot, type Tree, decodeSnapshot, decodeTree, encodeSnapshot } from './tree.js';
import { type Lock, decodeLock, encodeLock } from './lock.js';
import type { MetadataCache } from './metadata-cache.js';

/** Index objects read at once by {@link Vault.loadIndex}. */
const INDEX_READS = 8;
/** The index cache is written again when a load read this many objects the cache did not hold… */
const CACHE_REWRITE_OBJECTS = 64;
/** …or this many blobs (or a sixteenth of the cached count, if more). */
const CACHE_REWRITE_BLOBS = 65_536;

export interface LoadIndexOptions {
  readonly signal?: AbortSignal;
  /** Keep 12-byte id prefixes (see {@link VaultIndex}). @default false */
  readonly prefixIds?: boolean;
  /**
   * A folder of this machine's own (the agent's scratch folder) where the index is cached (index-cache.ts): the
   * load then reads only the index objects written since the cache was, and writes the cache anew when many were.
   */
  readonly cacheDir?: string;
}

/** Snapshots read at once by {@link Vault.listSnapshots}. */
export const SNAPSHOT_READS = 16;

/** Where a blob lives. */
export interface BlobLocation {
  readonly packId: Buffer;
  readonly type: PackedType;
  readonly codec: number;
  readonly offset: number;
  readonly length: number;
  readonly plaintextLength: number;
}

/** How errors name the blob `id` at `at`. @internal */
export function blobWhere(at: BlobLocation, id: Uint8Array): string {
  return `${at.type === ObjectType.tree ? 'tree' : 'data chunk'} ${toHex(id)} in pack ${toHex(at.packId)}`;
}

/** `VP_MALFORMED_OBJECT`: fewer bytes of the blob named by `where` could be read than its index entry says. @internal */
export function blobCutShort(where: string, got: number, want: number): VaultpathError {
  return new VaultpathError('VP_MALFORMED_OBJECT', `${where} is cut short: ${got} of ${want} bytes. Run "vaultpath verify".`);
}

/** `VP_ID_MISMATCH`: the blob named by `where` opened, but its plaintext does not hash to its id. @internal */
export function blobIdMismatch(where: string): VaultpathError {
  return new VaultpathError('VP_ID_MISMATCH', `${where} opened but does not hash to its id. Run "vaultpath verify".`);
}

/**
 * Codes that say an object was read but is not what the format describes: damage (or tampering), as opposed to a
 * store that could not deliver it. Damage stays until someone removes the object; a store failure may pass.
 */
const DAMAGE_CODES: ReadonlySet<string> = new Set([
  'VP_MALFORMED_OBJECT',
  'VP_OBJECT_TYPE',
  'VP_AUTH_FAILED',
  'VP_ID_MISMATCH',
  'VP_UNKNOWN_CODEC',
  'VP_UNSUPPORTED_VERSION',
  'VP_FORMAT_LIMIT',
  'VP_SNAPSHOT_DAMAGED',
]);

/** True when `e` says an object is damaged (rather than that the store failed to deliver it). */
export function isDamage(e: unknown): boolean {
  return e instanceof VaultpathError && DAMAGE_CODES.has(e.code);
}

/**
 * Runs `decode` over bytes read from the store. A parser that fails with anything but a VaultpathError (a bug met
 * by hostile bytes) still reports damage to `where`, typed, rather than an untyped error.
 */
function decoded<T>(where: string, decode: () => T): T {
  try {
    return decode();
  } catch (e) {
    if (e instanceof VaultpathError) throw e;
    throw new VaultpathError('VP_MALFORMED_OBJECT', `${where} cannot be decoded (${(e as Error)?.message ?? String(e)}). Run "vaultpath verify".`, { cause: e });
  }
}

/** A snapshot that was read. */
export interface SnapshotEntry {
  readonly id: string;
  readonly snapshot: Snapshot;
  readonly error?: undefined;
}

/** A snapshot that could not be read: damaged ({@link isDamage}), or the store failed to deliver it. */
export interface UnreadableSnapshot {
  readonly id: string;
  readonly snapshot?: undefined;
  readonly error: VaultpathError;
}

/** One line of a listing with damaged snapshots included. */
export type SnapshotListing = SnapshotEntry | UnreadableSnapshot;

export interface ListSnapshotsOptions {
  readonly signal?: AbortSignal;
  /** Called for each snapshot that cannot be read (also with `includeDamaged`). */
  readonly onError?: (id: string, e: unknown) => void;
  /** Return unreadable snapshots too, each with its error, after every readable one (by id). @default false */
  readonly includeDamaged?: boolean;
}

export interface FindSnapshotOptions {
  readonly signal?: AbortSignal;
  /** With `latest`: only snapshots of exactly these paths. */
  readonly paths?: readonly string[];
  /**
   * With `latest`: take the newest snapshot that can be read even when some cannot, naming those in `skipped`.
   * Without it, any snapshot that cannot be read makes `latest` fail (`VP_SNAPSHOT_DAMAGED`), since it could be
   * the newest. An id or prefix that names a damaged snapshot fails either way. @default false
   */
  readonly skipDamaged?: boolean;
}

/** A snapshot found by {@link Vault.findSnapshot} or {@link Vault.latestSnapshot}. */
export interface FoundSnapshot {
  readonly id: string;
  readonly snapshot: Snapshot;
  /** Snapshots that could not be read and were passed over (`skipDamaged`), ids; empty otherwise. */
  readonly skipped: readonly string[];
}

/** `VP_SNAPSHOT_DAMAGED` for the snapshots `failed`; `why` says what could not be done in their place. */
function snapshotDamaged(failed: readonly UnreadableSnapshot[], why: string): VaultpathError {
  const ids = failed.slice(0, 10).map((f) => f.id).join(', ') + (failed.length > 10 ? ` and ${failed.length - 10} more` : '');
  const first = failed[0]!.error;
  return new VaultpathError(
    'VP_SNAPSHOT_DAMAGED',
    `${failed.length === 1 ? 'Snapshot' : 'Snapshots'} ${ids} cannot be read (${first.message}). ${why} "vaultpath verify" reports the damage.`,
    { cause: first },
  );
}

/**
 * Every blob the vault holds, by id, in a {@link BlobIndex} (typed arrays, no object per blob, no count limit).
 * When two packs hold the same blob, the first location added wins. Built with whole ids by default (49 bytes a
 * blob; {@link entries} names every blob, lookups never match another id); with `prefixIds`, the first 12 bytes of
 * each id only (29 bytes a blob, under 32 with the packs), where a false match (n²/2^97 for n blobs) is caught by
 * the blob's authentication on read (see blob-index.ts), and where {@link entries} is not available.
 *
 * Loaded through the local index cache with `prefixIds` (what a backup does), the cached blobs are held as
 * prefixes and every match {@link has} or {@link get} finds among them is confirmed against the whole id in the
 * cache file (index-cache.ts); blobs read from index objects since the cache was written are held whole. Such an
 * index MUST be closed ({@link close}). Its {@link size} counts a blob that is both cached and read since twice.
 */
export class VaultIndex {
  /** Blobs added to this index. */
  readonly #blobs: BlobIndex;
  /** Blobs of the local cache, as confirmed prefixes. */
  readonly #cached: IndexCache | undefined;
  #closed = false;
  readonly #damaged: { object: string; error: VaultpathError }[] = [];

  constructor(options: { readonly prefixIds?: boolean; readonly cached?: IndexCache } = {}) {
    const { cached } = options;
    if (cached?.confirm) {
      this.#cached = cached;
      this.#blobs = new BlobIndex({ fullIds: true });
    } else {
      this.#blobs = cached?.index ?? new BlobIndex({ fullIds: !options.prefixIds });
    }
  }

  /** True when this index keeps 12-byte id prefixes of some blobs (see the class comment). */
  get prefixIds(): boolean {
    return !this.#blobs.fullIds || this.#cached !== undefined;
  }

  /**
   * The index as one sorted run, for the local cache (index-cache.ts).
   * @throws {Error} for an index that keeps prefixes.
   */
  snapshot(): BlobIndexSnapshot {
    if (this.#cached) throw new Error('This index keeps id prefixes of its cached blobs; read the cache with whole ids to write it again.');
    return this.#blobs.snapshot();
  }

  /** Lets the local cache file go (see the class comment); the index must not be used afterwards. */
  async close(): Promise<void> {
    const cached = this.#cached;
    if (!cached || this.#closed) return;
    this.#closed = true;
    await cached.close();
  }

  /**
   * Index objects that could not be opened when this index was loaded (object names, e.g. `index/ab/ab…`), with
   * why. The blobs they list are unknown to this index.
   */
  get damaged(): readonly { readonly object: string; readonly error: VaultpathError }[] {
    return this.#damaged;
  }

  /** Records index object `object` as damaged. */
  noteDamaged(object: string, error: VaultpathError): void {
    this.#damaged.push({ object, error });
  }

  get size(): number {
    return this.#blobs.size + (this.#cached?.index.size ?? 0);
  }

  /** Bytes of the typed arrays behind this index. */
  get bytes(): number {
    return this.#blobs.bytes + (this.#cached?.index.bytes ?? 0);
  }

  add(e: IndexEntry): void {
    const pack = this.#blobs.internPack(e.packId);
    this.#blobs.add(e.id, 0, pack, e.type, e.codec, e.offset, e.length, e.plaintextLength);
  }

  /**
   * Adds every entry of an opened index object (the same as {@link add} for each, read straight from its bytes).
   * @throws {VaultpathError} `VP_MALFORMED_OBJECT` when an entry fails the reader's checks; nothing is added then.
   */
  addAll(reader: IndexReader): void {
    const packs = Uint32Array.from(reader.packIds, (p) => this.#blobs.internPack(p));
    reader.check();
    this.#blobs.addEncoded(reader.plain, reader.first, reader.count, packs);
  }

  get(id: Uint8Array): BlobLocation | undefined {
    const found = this.#blobs.get(id);
    if (found) return found;
    const p = this.#confirmedPosition(id);
    return p >= 0 ? this.#cached!.index.locationAt(p) : undefined;
  }

  has(id: Uint8Array): boolean {
    return this.#blobs.has(id) || this.#confirmedPosition(id) >= 0;
  }

  /** Where `id` sits among the cached blobs, its whole id confirmed against the cache file; -1 when not there. */
  #confirmedPosition(id: Uint8Array): number {
    if (!this.#cached) return -1;
    const p = this.#cached.index.positionOf(id);
    return p >= 0 && this.#cached.confirm!(p, id) ? p : -1;
  }

  /**
   * {@link has} for an id in hex (a tree's chunk list), not confirmed against the cache file: it asks whether a
   * blob an earlier snapshot names is still indexed (a prefix of it matching another blob while it is gone has
   * odds of 2^-96 a lookup), once for every chunk of every unchanged file, where a read of the file each time would
   * cost more than the rest of an unchanged backup.
   */
  hasHex(id: string): boolean {
    return this.#blobs.hasHex(id) || (this.#cached !== undefined && this.#cached.index.positionOfHex(id) >= 0);
  }

  hasPack(packId: Uint8Array): boolean {
    return this.#blobs.hasPack(packId) || (this.#cached?.index.hasPack(packId) ?? false);
  }

  /** Every blob added to this index, not taken from the cache, with its location (whole ids unless `prefixIds`). */
  addedEntries(): IterableIterator<[Buffer, BlobLocation]> {
    return this.#blobs.entries();
  }

  /**
   * Every blob id with its location, in id order within each of the index's sorted runs.
   * @throws {Error} for an index that keeps prefixes.
   */
  entries(): IterableIterator<[Buffer, BlobLocation]> {
    if (this.#cached) throw new Error('This index keeps id prefixes of its cached blobs; load it with whole ids to list its entries.');
    return this.#blobs.entries();
  }
}

export interface CreateVaultOptions {
  /** Argon2id cost of the first key slot. @default DEFAULT_KDF_PARAMS */
  readonly kdf?: KdfParams;
  /** Chunker sizes, fixed for the life of the vault. @default DEFAULT_CHUNKER_PARAMS */
  readonly chunker?: ChunkerParams;
  readonly clock?: Clock;
  readonly signal?: AbortSignal;
}

export interface OpenVaultOptions {
  /** Bounds on key-slot KDF parameters. @default KDF_BOUNDS */
  readonly kdfBounds?: KdfBounds;
  readonly signal?: AbortSignal;
}

export class Vault {
  readonly store: Store;
  readonly keys: VaultKeys;
  readonly config: VaultConfig;
  #lastIndexLoad: { readonly cached: number; readonly read: number } | undefined;
  /** The key slot this vault was opened with. */
  readonly slotId: Buffer;
  readonly ids: ChunkIdentifier;
  /** Where index objects, snapshots and trees read are kept, when this vault has a cache (metadata-cache.ts). */
  readonly #metadata: MetadataCache | undefined;

  private constructor(store: Store, keys: VaultKeys, config: VaultConfig, slotId: Buffer, metadata?: MetadataCache) {
    this.store = typedErrors(metadata ? metadata.store(store, keys) : store);
    this.keys = keys;
    this.config = config;
    this.slotId = slotId;
    this.ids = new ChunkIdentifier(keys);
    this.#metadata = metadata;
  }

  /**
   * This vault reading its index objects, snapshots and trees through `cache` (see metadata-cache.ts: every entry
   * is authenticated again when read): another Vault over the same store and keys, so that one run's cache is
   * never another's.
   */
  withMetadataCache(cache: MetadataCache): Vault {
    return new Vault(this.store, this.keys, this.config, this.slotId, cache);
  }

  /**
   * Creates a new vault in an empty store.
   * @throws {VaultpathError} `VP_VAULT_EXISTS` when the store already holds a vault; `VP_PASSPHRASE_POLICY`;
   *   store errors.
   */
  static async create(store: Store, passphrase: string, options: CreateVaultOptions = {}): Promise<Vault> {
    const { signal } = options;
    store = typedErrors(store);
    if (await store.stat(CONFIG_NAME, { signal })) {
      throw new VaultpathError('VP_VAULT_EXISTS', `There is already a vault at ${store.location}; open it instead of creating one.`);
    }
    const masterKey = generateMasterKey();
    const slot = await createKeySlot(masterKey, passphrase, { kdf: options.kdf, signal });
    const keys = VaultKeys.fromMasterKey(masterKey);
    masterKey.fill(0);
    const config: VaultConfig = {
      version: VAULT_FORMAT_VERSION,
      id: randomBytes(32).toString('hex'),
      createdAt: new Date((options.clock ?? systemClock).now()).toISOString(),
      chunker: options.chunker ?? DEFAULT_CHUNKER_PARAMS,
    };
    const slotName = objectName(Folder.keys, slot.id);
    const sealedConfig = sealConfig(keys, config);
    try {
      await store.put(slotName, slot.bytes, { signal, ifNotExists: true });
      await store.put(CONFIG_NAME, sealedConfig, { signal, ifNotExists: true });
    } catch (e) {
      // Nothing of a failed create stays. Cleanup runs without the caller's signal: an abort must still clean up.
      // The slot's name is fresh and random, so it is this call's own. The config is removed only when it holds
      // this call's bytes (a write whose answer was lost): one that differs is another process's vault.
      if ((e as VaultpathError).code !== 'VP_ALREADY_EXISTS') {
        const written = await store.get(CONFIG_NAME).catch(() => undefined);
        if (written?.equals(sealedConfig)) await store.delete(CONFIG_NAME).catch(() => undefined);
      }
      await store.delete(slotName).catch(() => undefined);
      if ((e as VaultpathError).code === 'VP_ALREADY_EXISTS') {
        throw new VaultpathError('VP_VAULT_EXISTS', `Another process created a vault at ${store.location} at the same time.`);
      }
      throw e;
    }
    return new Vault(store, keys, config, slot.id);
  }

  /**
   * Removes the vault this process has just created with {@link create} (its config, then its key slot), for a
   * caller whose next step of setting it up failed. Only for that: a vault in use has snapshots that this leaves
   * behind, unreadable without the config. Errors are ignored: what remains is reported by the caller's failure.
   */
  async discardCreated(): Promise<void> {
    await this.store.delete(CONFIG_NAME).catch(() => undefined);
    await this.store.delete(objectName(Folder.keys, this.slotId)).catch(() => undefined);
  }

  /**
   * Opens the vault in `store` with `passphrase`.
   * @throws {VaultpathError} `VP_NOT_A_VAULT`, `VP_WRONG_PASSPHRASE`, `VP_KEY_SLOT_DAMAGED`, `VP_KDF_PARAMS`,
   *   `VP_AUTH_FAILED` (config of another vault), store errors.
   */
  static async open(store: Store, passphrase: string, options: OpenVaultOptions = {}): Promise<Vault> {
    const { signal } = options;
    store = typedErrors(store);
    // The config is read while the key slots are read and the key derived (the slow part); it is checked first.
    const configRead = store.get(CONFIG_NAME, { signal }).catch((e: VaultpathError) => {
      if (e.code === 'VP_NOT_FOUND') {
        throw new VaultpathError('VP_NOT_A_VAULT', `There is no vault at ${store.location}. Create one with "vaultpath init".`);
      }
      throw e;
    });
    configRead.catch(() => undefined); // awaited below
    let unlocked: Promise<{ masterKey: Uint8Array; slot: { id: Buffer } }> | undefined;
    try {
      const slots: { id: Buffer; bytes: Buffer }[] = [];
      for await (const o of store.list(`${Folder.keys}/`, { signal })) {
        const id = idFromName(Folder.keys, o.name);
        if (id) slots.push({ id, bytes: await store.get(o.name, { signal }) });
      }
      // No key is derived for a folder that is not a vault.
      if (slots.length === 0) await configRead;
      unlocked = unlockKeySlots(slots, passphrase, { signal, bounds: options.kdfBounds });
      unlocked.catch(() => undefined); // awaited below, after the config
    } catch (e) {
      await configRead; // a missing config (not a vault) is the error to report
      throw e;
    }
    const sealedConfig = await configRead;
    const { masterKey, slot } = await unlocked;
    const keys = VaultKeys.fromMasterKey(masterKey);
    masterKey.fill(0);
    return new Vault(store, keys, openConfig(keys, sealedConfig), slot.id);
  }

  // ---- key slots -------------------------------------------------------------------------------------------

  /** Adds a key slot for `passphrase`; the vault then opens with either. Returns the new slot's id. */
  async addKeySlot(passphrase: string, options: { kdf?: KdfParams; signal?: AbortSignal } = {}): Promise<Buffer> {
    const masterKey = this.keys.masterKey();
    try {
      const slot = await createKeySlot(masterKey, passphrase, options);
      await this.store.put(objectName(Folder.keys, slot.id), slot.bytes, { signal: options.signal, ifNotExists: true });
      return slot.id;
    } finally {
      masterKey.fill(0);
    }
  }

  /**
   * Changes the passphrase: writes a slot for the new passphrase, then removes the slot this vault was opened
   * with. No data is re-encrypted. Other slots (other passphrases) stay.
   */
  async changePassphrase(newPassphrase: string, options: { kdf?: KdfParams; signal?: AbortSignal } = {}): Promise<Buffer> {
    const id = await this.addKeySlot(newPassphrase, options);
    await this.store.delete(objectName(Folder.keys, this.slotId), { signal: options.signal });
    return id;
  }

  // ---- index -----------------------------------------------------------------------------------------------

  /**
   * Reads every index object into one {@link VaultIndex}. An index object that is damaged is passed over and
   * recorded in {@link VaultIndex.damaged}, so that one damaged object cannot stop every later backup; one the store
   * fails to deliver fails the load (going on would make a backup store again every blob it lists).
   *
   * Objects are read {@link INDEX_READS} at a time and added as each arrives, so the load holds a few objects'
   * plaintext, not the vault's. An object that a later one supersedes is skipped when the superseding one came
   * first; when it came later, the load is done again without it (only after a prune rewrote the index), so the
   * index never lists what a superseding object dropped.
   */
  async loadIndex(options: LoadIndexOptions = {}): Promise<VaultIndex> {
    const file = options.cacheDir === undefined ? undefined : join(options.cacheDir, indexCacheName(this.config.id));
    const cached = file === undefined ? undefined : await readIndexCache(file, this.keys.localCacheKey, { signal: options.signal, prefixes: options.prefixIds });
    if (cached) {
      const base = new VaultIndex({ cached });
      const cachedCount = cached.index.size;
      const r = await this.#readIndexObjects({ skip: cached.objects, superseded: cached.superseded, index: base }, options).catch(async (e: unknown) => {
        await base.close();
        throw e;
      });
      // The cache holds for this vault while every object it lists is still listed and none is superseded.
      if (r.skipped === cached.objects.size && !r.addedSuperseded && ![...cached.objects].some((o) => r.superseded.has(o))) {
        this.#lastIndexLoad = { cached: cachedCount, read: r.added.length };
        if (r.added.length >= CACHE_REWRITE_OBJECTS || r.index.size - cachedCount >= Math.max(CACHE_REWRITE_BLOBS, cachedCount / 16)) {
          await this.#extendIndexCache(file!, cached, r, options);
        }
        return r.index;
      }
      await base.close();
    }
    // With a cache to write, the load keeps whole ids (the cache holds them; the next load reads prefixes).
    const prefixIds = file === undefined && options.prefixIds;
    let r = await this.#readIndexObjects({}, { ...options, prefixIds });
    if (r.addedSuperseded) r = await this.#readIndexObjects({ superseded: r.superseded }, { ...options, prefixIds });
    this.#lastIndexLoad = { cached: 0, read: r.added.length };
    if (file !== undefined) await this.#writeIndexCache(file, r.index, r.added, r.superseded, options);
    return r.index;
  }

  /**
   * Writes the cache again with the blobs a load read beside it: the cache is read back with whole ids, those
   * blobs added, and the whole written; skipped when another run replaced the file meanwhile.
   */
  async #extendIndexCache(file: string, cached: IndexCache, r: { index: VaultIndex; added: string[]; superseded: Set<string> }, options: { signal?: AbortSignal }): Promise<void> {
    if (!cached.confirm) return this.#writeIndexCache(file, r.index, [...cached.objects, ...r.added], r.superseded, options);
    const whole = await readIndexCache(file, this.keys.localCacheKey, { signal: options.signal });
    if (!whole || whole.objects.size !== cached.objects.size || [...cached.objects].some((o) => !whole.objects.has(o))) return;
    const merged = new VaultIndex({ cached: whole });
    for (const [id, at] of r.index.addedEntries()) merged.add({ id, ...at });
    await this.#writeIndexCache(file, merged, [...cached.objects, ...r.added], r.superseded, options);
  }

  /** How the last {@link loadIndex} went: blobs taken from the local cache, index objects read from the store. */
  get lastIndexLoad(): { readonly cached: number; readonly read: number } | undefined {
    return this.#lastIndexLoad;
  }

  async #writeIndexCache(file: string, index: VaultIndex, objects: readonly string[], superseded: ReadonlySet<string>, options: { signal?: AbortSignal }): Promise<void> {
    // A cache that cannot be written costs the next load time, not this one its result.
    await writeIndexCache(file, this.keys.localCacheKey, index.snapshot(), { objects, superseded }, options).catch((e: unknown) => {
      if ((e as { code?: string }).code === 'VP_ABORTED') throw e;
    });
  }

  /**
   * Reads the listed index objects into `index`, but those in `skip` (held already) and those known `superseded`:
   * returns every object known superseded, the ids of the objects added, whether one added was superseded, and
   * how many listed objects were in `skip`.
   */
  async #readIndexObjects(
    from: { readonly skip?: ReadonlySet<string>; readonly superseded?: ReadonlySet<string>; readonly index?: VaultIndex },
    options: { signal?: AbortSignal; prefixIds?: boolean },
  ): Promise<{ index: VaultIndex; superseded: Set<string>; added: string[]; addedSuperseded: boolean; skipped: number }> {
    const index = from.index ?? new VaultIndex({ prefixIds: options.prefixIds });
    const skip = from.skip ?? new Set<string>();
    const superseded = new Set(from.superseded);
    const added: string[] = [];
    const readOne = async (name: string, id: Buffer): Promise<void> => {
      const sealed = await this.store.get(name, options).catch((e: VaultpathError) => {
        if (e.code === 'VP_NOT_FOUND') return undefined; // removed since it was listed
        throw e;
      });
      if (!sealed) return;
      const damaged = (e: unknown): void => {
        if (!isDamage(e)) throw e;
        index.noteDamaged(name, e as VaultpathError);
      };
      let reader: IndexReader;
      try {
        reader = decoded(`index object ${name}`, () => openIndexReader(this.keys, id, sealed));
      } catch (e) {
        return damaged(e);
      }
      // What an object supersedes counts even when one of its entries is damaged: listing a superseded object's
      // entries could name packs a prune deleted, where missing entries only cost storing those blobs again.
      for (const s of reader.supersedes) superseded.add(s.toString('hex'));
      const hex = id.toString('hex');
      if (superseded.has(hex)) return;
      try {
        index.addAll(reader);
      } catch (e) {
        return damaged(e);
      }
      added.push(hex);
    };
    const reads = new Limiter(INDEX_READS);
    const running = new Set<Promise<void>>();
    let failure: unknown;
    let skipped = 0;
    try {
      for await (const o of this.store.list(`${Folder.index}/`, options)) {
        const id = idFromName(Folder.index, o.name);
        if (!id) continue;
        const hex = id.toString('hex');
        if (skip.has(hex)) {
          skipped++;
          continue;
        }
        if (superseded.has(hex)) continue;
        const done = await reads.acquire();
        if (failure !== undefined) {
          done();
          break;
        }
        const read = readOne(o.name, id)
          .catch((e: unknown) => void (failure ??= e))
          .finally(() => {
            done();
            running.delete(read);
          });
        running.add(read);
      }
    } finally {
      await Promise.all(running);
    }
    if (failure !== undefined) throw failure;
    return { index, superseded, added, addedSuperseded: added.some((hex) => superseded.has(hex)), skipped };
  }

  /** Writes an index object listing `entries` (all in packs the store has acknowledged). Returns its id. */
  async writeIndex(entries: readonly IndexEntry[], options: { signal?: AbortSignal } = {}): Promise<Buffer> {
    return writeIndexObject(this.store, this.keys, entries, [], options);
  }

  /**
   * Finds packs that no index lists (left by an interrupted backup after its packs were stored but before its
   * index was), reads their headers, and writes an index object for them, so their blobs are reused rather than
   * uploaded again. Returns the entries added (also added to `index`).
   */
  async adoptOrphanPacks(index: VaultIndex, options: { signal?: AbortSignal } = {}): Promise<IndexEntry[]> {
    const adopted: IndexEntry[] = [];
    for await (const o of this.store.list(`${Folder.data}/`, options)) {
      const packId = idFromName(Folder.data, o.name);
      if (!packId || index.hasPack(packId) || o.size < PACK_TRAILER_LENGTH) continue;
      try {
        const where = `pack ${toHex(packId)}`;
        const trailer = await this.store.get(o.name, { ...options, offset: o.size - PACK_TRAILER_LENGTH, length: PACK_TRAILER_LENGTH });
        const headerLength = readPackTrailer(trailer, o.size, where);
        const header = await this.store.get(o.name, { ...options, offset: o.size - PACK_TRAILER_LENGTH - headerLength, length: headerLength });
        for (const e of openPackHeader(this.keys, header, o.size, where)) {
          adopted.push({ id: e.id, type: e.type, codec: e.codec, packId, offset: e.offset, length: e.length, plaintextLength: e.plaintextLength });
        }
      } catch (e) {
        if ((e as VaultpathError).code === 'VP_ABORTED') throw e;
        // A damaged or foreign pack is not adopted; `verify` reports it.
      }
    }
    if (adopted.length > 0) {
      await this.writeIndex(adopted, options);
      for (const e of adopted) index.add(e);
    }
    return adopted;
  }

  // ---- blobs and trees -------------------------------------------------------------------------------------

  /**
   * Reads blob `id` of `type` through `index`: a ranged read of its pack (for a tree, the metadata cache's copy
   * when there is one), authenticated under its id, and checked to hash to that id.
   * @throws {VaultpathError} `VP_NOT_FOUND` (not in the index, or its pack is missing), `VP_AUTH_FAILED`,
   *   `VP_ID_MISMATCH`, store errors.
   */
  async readBlob(index: VaultIndex, id: Uint8Array, type: PackedType, options: { signal?: AbortSignal } = {}): Promise<Buffer> {
    const at = index.get(id);
    if (!at || at.type !== type) {
      throw new VaultpathError('VP_NOT_FOUND', `The vault's index has no ${type === ObjectType.tree ? 'tree' : 'data chunk'} ${toHex(id)}. Run "vaultpath verify".`);
    }
    const read = (): Promise<Buffer> => this.store.get(objectName(Folder.data, at.packId), { ...options, offset: at.offset, length: at.length });
    if (this.#metadata && type === ObjectType.tree) return this.#metadata.blob(toHex(id), read, (sealed) => this.openBlobAt(at, id, sealed));
    return this.openBlobAt(at, id, await read());
  }

  /** Opens a blob's sealed bytes (already read from its pack) and checks its id. */
  openBlobAt(at: BlobLocation, id: Uint8Array, sealed: Uint8Array): Buffer {
    const where = blobWhere(at, id);
    if (sealed.length !== at.length) throw blobCutShort(where, sealed.length, at.length);
    const plain = decoded(where, () => openBlob(this.keys, at.type, id, sealed, { where, codec: at.codec }));
    if (!this.ids.matches(id, plain)) throw blobIdMismatch(where);
    return plain;
  }

  /** Reads and decodes tree `id` (hex). */
  async readTree(index: VaultIndex, idHex: string, options: { signal?: AbortSignal } = {}): Promise<Tree> {
    const id = Buffer.from(idHex, 'hex');
    const plain = await this.readBlob(index, id, ObjectType.tree, options);
    return decoded(`tree ${idHex}`, () => decodeTree(plain, `tree ${idHex}`));
  }

  // ---- snapshots -------------------------------------------------------------------------------------------

  /** Writes a snapshot (create-only, under a fresh random id). Returns its id, hex. */
  async writeSnapshot(snapshot: Snapshot, options: { signal?: AbortSignal } = {}): Promise<string> {
    const id = randomBytes(32);
    const sealed = joinSealed(sealObject(this.keys, ObjectType.snapshot, id, encodeSnapshot(snapshot)));
    await this.store.put(objectName(Folder.snapshots, id), sealed, { ...options, ifNotExists: true });
    return id.toString('hex');
  }

  // ---- locks (FORMAT.md §11; see lock.ts) ------------------------------------------------------------------

  /** Writes a lock (create-only, under a fresh random id). Returns its id, hex. */
  async writeLock(lock: Lock, options: { signal?: AbortSignal } = {}): Promise<string> {
    const id = randomBytes(32);
    await this.store.put(objectName(Folder.locks, id), joinSealed(sealObject(this.keys, ObjectType.lock, id, encodeLock(lock))), { ...options, ifNotExists: true });
    return id.toString('hex');
  }

  /**
   * Every lock, with its contents, or the error that kept it from opening (damaged, or sealed under another vault's
   * key). A lock removed while this reads is left out.
   */
  async readLocks(options: { signal?: AbortSignal } = {}): Promise<{ id: string; lock?: Lock; error?: unknown }[]> {
    const out: { id: string; lock?: Lock; error?: unknown }[] = [];
    for await (const o of this.store.list(`${Folder.locks}/`, options)) {
      const id = idFromName(Folder.locks, o.name);
      if (!id) continue;
      const where = `lock ${id.toString('hex')}`;
      try {
        out.push({ id: id.toString('hex'), lock: decodeLock(openObject(this.keys, ObjectType.lock, id, await this.store.get(o.name, options), { where }), where) });
      } catch (e) {
        const code = (e as VaultpathError).code;
        if (code === 'VP_ABORTED') throw e;
        if (code !== 'VP_NOT_FOUND') out.push({ id: id.toString('hex'), error: e });
      }
    }
    return out;
  }

  /** Removes lock `idHex`; a lock already gone is no error. */
  async deleteLock(idHex: string, options: { signal?: AbortSignal } = {}): Promise<void> {
    await this.store.delete(objectName(Folder.locks, Buffer.from(idHex, 'hex')), options);
  }

  /**
   * Reads snapshot `idHex`.
   * @throws {VaultpathError} `VP_NOT_FOUND`; damage ({@link isDamage}: `VP_AUTH_FAILED`, `VP_MALFORMED_OBJECT`, …);
   *   store errors.
   */
  async readSnapshot(idHex: string, options: { signal?: AbortSignal } = {}): Promise<Snapshot> {
    const id = Buffer.from(idHex, 'hex');
    const where = `snapshot ${idHex}`;
    const sealed = await this.store.get(objectName(Folder.snapshots, id), options);
    return decoded(where, () => decodeSnapshot(openObject(this.keys, ObjectType.snapshot, id, sealed, { where }), where));
  }

  /** The ids (hex) of every snapshot object, in listing order, without reading them. */
  async snapshotIds(options: { signal?: AbortSignal } = {}): Promise<string[]> {
    const ids: string[] = [];
    for await (const o of this.store.list(`${Folder.snapshots}/`, options)) {
      const id = idFromName(Folder.snapshots, o.name);
      if (id) ids.push(id.toString('hex'));
    }
    return ids;
  }

  /**
   * Every snapshot, oldest first (by time, then id). Snapshots that cannot be read are reported through `onError`;
   * with `includeDamaged` they are also returned, after every readable one (by id), each with its error, else left
   * out. A snapshot removed while this reads is left out. Up to {@link SNAPSHOT_READS} are read at once, so that a
   * vault of many snapshots on a remote store costs a few round trips' time rather than one per snapshot.
   */
  async listSnapshots(options: ListSnapshotsOptions & { includeDamaged: true }): Promise<SnapshotListing[]>;
  async listSnapshots(options?: ListSnapshotsOptions & { includeDamaged?: false }): Promise<SnapshotEntry[]>;
  async listSnapshots(options?: ListSnapshotsOptions): Promise<SnapshotListing[]>;
  async listSnapshots(options: ListSnapshotsOptions = {}): Promise<SnapshotListing[]> {
    const out: SnapshotEntry[] = [];
    const failed: UnreadableSnapshot[] = [];
    const reading = new Set<Promise<void>>();
    let aborted: unknown;
    const read = (idHex: string): void => {
      const p = this.readSnapshot(idHex, options).then(
        (snapshot) => void out.push({ id: idHex, snapshot }),
        (e: VaultpathError) => {
          if (e.code === 'VP_ABORTED') aborted ??= e;
          else if (e.code !== 'VP_NOT_FOUND') {
            failed.push({ id: idHex, error: e });
            options.onError?.(idHex, e);
          }
        },
      );
      reading.add(p);
      void p.finally(() => reading.delete(p));
    };
    try {
      for await (const o of this.store.list(`${Folder.snapshots}/`, options)) {
        const id = idFromName(Folder.snapshots, o.name);
        if (!id) continue;
        if (aborted !== undefined) break;
        read(id.toString('hex'));
        if (reading.size >= SNAPSHOT_READS) await Promise.race(reading);
      }
    } finally {
      await Promise.all(reading); // every read settles (none rejects) before the listing's outcome is known
    }
    if (aborted !== undefined) throw aborted;
    out.sort((a, b) => (a.snapshot.time < b.snapshot.time ? -1 : a.snapshot.time > b.snapshot.time ? 1 : a.id < b.id ? -1 : 1));
    if (!options.includeDamaged) return out;
    return [...out, ...failed.sort((a, b) => (a.id < b.id ? -1 : 1))];
  }

  /**
   * The newest snapshot (of exactly `paths`, when given), or undefined when there is none.
   * @throws {VaultpathError} `VP_SNAPSHOT_DAMAGED` when a snapshot cannot be read and `skipDamaged` is not set (it
   *   could be the newest); the store's error when the store failed to deliver one.
   */
  async latestSnapshot(options: FindSnapshotOptions = {}): Promise<FoundSnapshot | undefined> {
    return (await this.#latest(options)).found;
  }

  async #latest(options: FindSnapshotOptions): Promise<{ found?: FoundSnapshot; skipped: string[] }> {
    const all = await this.listSnapshots({ signal: options.signal, includeDamaged: true });
    const failed = all.filter((s): s is UnreadableSnapshot => s.error !== undefined);
    if (failed.length > 0 && !options.skipDamaged) {
      const storeFailure = failed.find((f) => !isDamage(f.error));
      if (storeFailure) throw storeFailure.error;
      throw snapshotDamaged(
        failed,
        'Its time is sealed inside it, so it could be the newest: "latest" is not taken to mean an older snapshot. Name a snapshot by id, or skip damaged snapshots (--skip-damaged).',
      );
    }
    const skipped = failed.map((f) => f.id);
    const readable = all.filter((s): s is SnapshotEntry => s.error === undefined);
    const last = (options.paths ? readable.filter((s) => samePaths(s.snapshot.paths, options.paths!)) : readable).at(-1);
    return { found: last && { id: last.id, snapshot: last.snapshot, skipped }, skipped };
  }

  /**
   * Finds `latest`, a full id, or a unique prefix of at least 4 hex characters, and reads it. A prefix is matched
   * against every snapshot's name, damaged or not: one that also matches a damaged snapshot is ambiguous.
   * @throws {VaultpathError} `VP_NOT_FOUND` (none, or ambiguous); `VP_SNAPSHOT_DAMAGED` (the snapshot named, or,
   *   for `latest` without `skipDamaged`, any snapshot, cannot be read); store errors.
   */
  async findSnapshot(ref: string, options: FindSnapshotOptions = {}): Promise<FoundSnapshot> {
    throwIfAborted(options.signal);
    if (ref === 'latest') {
      const { found, skipped } = await this.#latest(options);
      if (!found) {
        throw new VaultpathError(
          'VP_NOT_FOUND',
          skipped.length > 0
            ? `No snapshot${options.paths ? ' of these paths' : ''} in the vault at ${this.store.location} can be read; passed over as damaged: ${skipped.join(', ')}.`
            : `The vault at ${this.store.location} has no snapshots${options.paths ? ' of these paths' : ''} yet.`,
        );
      }
      return found;
    }
    if (!/^[0-9a-f]{4,64}$/.test(ref)) {
      throw new VaultpathError('VP_NOT_FOUND', `"${ref}" is not a snapshot id: give "latest" or at least 4 hex characters of an id.`);
    }
    const found = (await this.snapshotIds(options)).filter((id) => id.startsWith(ref));
    if (found.length !== 1) {
      throw new VaultpathError(
        'VP_NOT_FOUND',
        found.length === 0 ? `No snapshot id starts with ${ref}.` : `${found.length} snapshots start with ${ref}; give more characters.`,
      );
    }
    const id = found[0]!;
    try {
      return { id, snapshot: await this.readSnapshot(id, options), skipped: [] };
    } catch (e) {
      if (!isDamage(e)) throw e;
      throw snapshotDamaged([{ id, error: e as VaultpathError }], 'No other snapshot is taken in its place.');
    }
  }

  /**
   * {@link findSnapshot}, returning only the id.
   * @throws {VaultpathError} as {@link findSnapshot}.
   */
  async resolveSnapshot(ref: string, options: FindSnapshotOptions = {}): Promise<string> {
    return (await this.findSnapshot(ref, options)).id;
  }
}

function samePaths(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((p, i) => p === b[i]);
}
