/**
 * The one writer of index objects (FORMAT.md, index-file.ts): every index object a run writes goes through
 * {@link writeIndexObject}, whether it lists the packs a backup stored ({@link IndexWriter}) or packs adopted after
 * an interrupted run (Vault.adoptOrphanPacks).
 *
 * Write ordering (FORMAT.md §12): an index object lists only packs the store has acknowledged, so a reader never
 * finds an index entry whose pack is missing. Entries are written every `every` acknowledged packs and at the end,
 * so an interrupted backup loses little: what was acknowledged is listed, and the next run reuses it.
 *
 * `supersedes` is where a compacting writer (prune) names the index objects a new one replaces; a backup supersedes
 * none. The format already carries the field; readers skip the superseded objects (Vault.loadIndex).
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import type { SealKeys } from '../crypto/envelope.js';
import type { Store } from '../transfer/store.js';
import { Folder, objectName } from './layout.js';
import { type IndexEntry, sealIndex } from './index-file.js';
import type { PackEntry } from './pack.js';

/**
 * Writes an index object listing `entries` (all in packs the store has acknowledged), create-only under a fresh
 * random id, and returns that id. `supersedes` names index objects this one replaces (none for a backup).
 */
export async function writeIndexObject(
  store: Store,
  keys: SealKeys,
  entries: readonly IndexEntry[],
  supersedes: readonly Buffer[] = [],
  options: { signal?: AbortSignal } = {},
): Promise<Buffer> {
  const id = randomBytes(32);
  await store.put(objectName(Folder.index, id), sealIndex(keys, id, { entries, supersedes }), { ...options, ifNotExists: true });
  return id;
}

/** Collects the blobs of acknowledged packs and writes them as index objects, a batch of packs at a time. */
export class IndexWriter {
  readonly #store: Store;
  readonly #keys: SealKeys;
  readonly #every: number;
  readonly #signal: AbortSignal | undefined;
  #entries: IndexEntry[] = [];
  #packs = 0;

  /** @param every packs acknowledged before an index object is written. */
  constructor(store: Store, keys: SealKeys, options: { every: number; signal?: AbortSignal }) {
    this.#store = store;
    this.#keys = keys;
    this.#every = options.every;
    this.#signal = options.signal;
  }

  /** Records pack `packId`, acknowledged by the store, holding `entries`. */
  packStored(packId: Buffer, entries: readonly PackEntry[]): void {
    for (const e of entries) {
      this.#entries.push({ id: e.id, type: e.type, codec: e.codec, packId, offset: e.offset, length: e.length, plaintextLength: e.plaintextLength });
    }
    this.#packs++;
  }

  /** True when enough packs wait to be listed for an index object of their own. */
  get due(): boolean {
    return this.#packs >= this.#every;
  }

  /** Writes an index object for every pack recorded and not yet listed (none written when there is none). */
  async flush(): Promise<void> {
    if (this.#entries.length === 0) return;
    const entries = this.#entries;
    this.#entries = [];
    this.#packs = 0;
    await writeIndexObject(this.#store, this.#keys, entries, [], { signal: this.#signal });
  }
}
