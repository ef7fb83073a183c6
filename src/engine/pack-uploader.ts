/**
 * Packs sealed blobs, stages each pack in the scratch cache, uploads it, and records it in the index, in the order
 * the format requires.
 *
 * - Blobs collect in memory up to the target pack size (one pack's worth, ~16 MiB), then are written in a random
 *   order (so a pack's layout says nothing about file layout) to a file in the scratch cache, after reserving its
 *   size there: when the cache is full, the caller waits.
 * - Uploads run in the background, at most `maxInFlight` at once; the body is re-read from the staged file on every
 *   attempt. Only after the store acknowledges a pack is its file removed, its space released, and its blobs queued
 *   for the index.
 * - Index objects are written for acknowledged packs only, every `indexEvery` packs and at the end, so an
 *   interrupted backup loses little: what was acknowledged is listed, and the next run reuses it.
 *
 * @module
 */
import { randomInt } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { type FileHandle, open, unlink } from 'node:fs/promises';
import { VaultpathError, throwIfAborted } from '../errors.js';
import { BLOB_OVERHEAD, type SealedObject } from '../crypto/envelope.js';
import type { ScratchCache } from '../stage/scratch-cache.js';
import type { Vault } from '../repo/vault.js';
import { Folder, objectName } from '../repo/layout.js';
import { PACK_ENTRY_LENGTH, PACK_TRAILER_LENGTH, type PackInfo, type PackedType, PackWriter, packHasher } from '../repo/pack.js';
import { nativePackWriter } from './native-seal.js';
import type { IndexEntry } from '../repo/index-file.js';

/** Slices per writev call (the POSIX minimum of IOV_MAX). */
const IOV_MAX = 1024;

/** Writers aim at packs of this size. */
export const TARGET_PACK_SIZE = 16 * 1024 * 1024;

export interface PackUploaderOptions {
  /** @default TARGET_PACK_SIZE */
  readonly targetPackSize?: number;
  /** Packs being written or uploaded at once (each held in memory until written). @default 2 */
  readonly maxInFlight?: number;
  /** Write an index object after this many acknowledged packs. @default 16 */
  readonly indexEvery?: number;
  readonly signal?: AbortSignal;
  /** Called after each pack is acknowledged. MUST NOT block. */
  readonly onPackStored?: (bytes: number) => void;
  /** Given each blob's sealed bytes once its pack is written to the scratch cache, when nothing refers to them. */
  readonly recycle?: (sealed: SealedObject) => void;
}

interface PendingBlob {
  readonly type: PackedType;
  readonly id: Buffer;
  readonly sealed: SealedObject;
  readonly plaintextLength: number;
}

export class PackUploader {
  readonly #vault: Vault;
  readonly #scratch: ScratchCache;
  readonly #target: number;
  readonly #maxInFlight: number;
  readonly #indexEvery: number;
  readonly #signal: AbortSignal | undefined;
  readonly #onPackStored: ((bytes: number) => void) | undefined;
  readonly #recycle: ((sealed: SealedObject) => void) | undefined;
  #batch: PendingBlob[] = [];
  #batchBytes = 0;
  /** Ids added in this run (in a batch, staged, uploading or stored): the run's own dedup set. */
  readonly #added = new Set<string>();
  readonly #inFlight = new Set<Promise<void>>();
  #acknowledged: IndexEntry[] = [];
  #packsSinceIndex = 0;
  #failure: unknown;
  #seq = 0;
  /** Packs staged so far: each may reach the store, acknowledged or not. */
  get packsStaged(): number {
    return this.#seq;
  }

  /** Packs and bytes acknowledged by the store. */
  packs = 0;
  bytesStored = 0;

  constructor(vault: Vault, scratch: ScratchCache, options: PackUploaderOptions = {}) {
    this.#vault = vault;
    this.#scratch = scratch;
    this.#target = options.targetPackSize ?? TARGET_PACK_SIZE;
    this.#maxInFlight = options.maxInFlight ?? 2;
    this.#indexEvery = options.indexEvery ?? 16;
    this.#signal = options.signal;
    this.#onPackStored = options.onPackStored;
    this.#recycle = options.recycle;
  }

  /** True when blob `id` was added in this run. */
  has(id: Uint8Array): boolean {
    return this.#added.has(Buffer.from(id.buffer, id.byteOffset, id.byteLength).toString('latin1'));
  }

  /** Adds a sealed blob; may wait for scratch space or an upload slot when a pack is full. */
  async add(type: PackedType, id: Buffer, sealed: SealedObject, plaintextLength: number): Promise<void> {
    this.#check();
    // Registered at once, before any wait below, so that a concurrent file finds the chunk known and skips it.
    this.#added.add(id.toString('latin1'));
    // Stage first if this blob would carry the pack past its target: a pack is at most the target plus one blob.
    if (this.#batch.length > 0 && this.#batchBytes + sealed.length > this.#target) await this.#stage();
    this.#batch.push({ type, id, sealed, plaintextLength });
    this.#batchBytes += sealed.length;
    if (this.#batchBytes >= this.#target) await this.#stage();
  }

  /** Packs what is left, waits for every upload, and writes the last index object. */
  async finish(): Promise<void> {
    this.#check();
    if (this.#batch.length > 0) await this.#stage();
    while (this.#inFlight.size > 0) await Promise.race(this.#inFlight);
    this.#check();
    await this.#writeIndex();
  }

  /** Waits for uploads already started (after a failure or abort), without starting more. */
  async settle(): Promise<void> {
    await Promise.allSettled([...this.#inFlight]);
  }

  #check(): void {
    if (this.#failure !== undefined) throw this.#failure;
    throwIfAborted(this.#signal);
  }

  async #stage(): Promise<void> {
    const blobs = this.#batch;
    this.#batch = [];
    this.#batchBytes = 0;
    // Fisher–Yates with the CSPRNG: the order of blobs in a pack is independent of the order of the data.
    for (let i = blobs.length - 1; i > 0; i--) {
      const j = randomInt(i + 1);
      [blobs[i], blobs[j]] = [blobs[j]!, blobs[i]!];
    }
    let size = PACK_TRAILER_LENGTH + BLOB_OVERHEAD + 4 + PACK_ENTRY_LENGTH * blobs.length;
    for (const b of blobs) size += b.sealed.length;
    while (this.#inFlight.size >= this.#maxInFlight) await Promise.race(this.#inFlight);
    this.#check();
    // The reservation is the backpressure: the caller waits here while the scratch cache is full. Writing the pack
    // and uploading it then run in the background while the caller reads and chunks the next data.
    await this.#scratch.reserve(size, this.#signal);
    const path = this.#scratch.path(`pack-${this.#seq++}`);
    const task = (async () => {
      try {
        const info = await this.#writePack(path, blobs, size);
        // Written: the sealed bytes are in the staged file now, and need not stay in memory during the upload.
        if (this.#recycle) for (const b of blobs) this.#recycle(b.sealed);
        blobs.length = 0;
        await this.#vault.store.put(
          objectName(Folder.data, info.id),
          { size, path, stream: () => createReadStream(path, { highWaterMark: 1024 * 1024 }) },
          { signal: this.#signal },
        );
        for (const e of info.entries) {
          this.#acknowledged.push({ id: e.id, type: e.type, codec: e.codec, packId: info.id, offset: e.offset, length: e.length, plaintextLength: e.plaintextLength });
        }
        this.packs++;
        this.bytesStored += size;
        this.#packsSinceIndex++;
        this.#onPackStored?.(size);
      } catch (e) {
        this.#failure ??= e;
      } finally {
        await unlink(path).catch(() => undefined);
        this.#scratch.release(size);
      }
      if (this.#failure === undefined && this.#packsSinceIndex >= this.#indexEvery) await this.#writeIndex().catch((e: unknown) => (this.#failure ??= e));
    })();
    this.#inFlight.add(task);
    void task.finally(() => this.#inFlight.delete(task));
  }

  async #writePack(path: string, blobs: readonly PendingBlob[], size: number): Promise<PackInfo> {
    const writeHashed = nativePackWriter();
    if (writeHashed) {
      // The addon creates, writes and hashes the file in one job once the pack is complete: the PackWriter's
      // slices are gathered by its hasher, whose digest is that job.
      const parts: Buffer[] = [];
      const writer = new PackWriter(this.#vault.keys, () => undefined, { update: (p) => void parts.push(p), digest: () => writeHashed(path, parts) });
      try {
        for (const b of blobs) await writer.addSealed(b.type, b.id, b.sealed, b.plaintextLength);
        const info = await writer.finish();
        if (info.size !== size) throw new Error(`pack size ${info.size} differs from the reserved ${size}`);
        return info;
      } catch (e) {
        throw scratchError(e, this.#scratch.dir);
      }
    }
    const file = await open(path, 'wx');
    try {
      // The pack is in memory already: gather its slices and write them in a few large writev calls, not one call
      // per blob (thousands of small files make thousands of blobs).
      const slices: Buffer[] = [];
      const writer = new PackWriter(
        this.#vault.keys,
        (parts) => {
          slices.push(...parts);
        },
        packHasher(),
      );
      for (const b of blobs) await writer.addSealed(b.type, b.id, b.sealed, b.plaintextLength);
      const info = await writer.finish();
      if (info.size !== size) throw new Error(`pack size ${info.size} differs from the reserved ${size}`);
      for (let i = 0; i < slices.length; i += IOV_MAX) await writeAll(file, slices.slice(i, i + IOV_MAX));
      return info;
    } catch (e) {
      throw scratchError(e, this.#scratch.dir);
    } finally {
      await file.close();
    }
  }

  async #writeIndex(): Promise<void> {
    if (this.#acknowledged.length === 0) return;
    const entries = this.#acknowledged;
    this.#acknowledged = [];
    this.#packsSinceIndex = 0;
    await this.#vault.writeIndex(entries, { signal: this.#signal });
  }
}

/** Writes every byte of `parts`, looping over short writes (a filling disk writes what fits, then fails). */
async function writeAll(file: FileHandle, parts: readonly Buffer[]): Promise<void> {
  let remaining = parts.filter((p) => p.length > 0);
  while (remaining.length > 0) {
    const { bytesWritten } = await file.writev(remaining);
    let n = bytesWritten;
    const rest: Buffer[] = [];
    for (const p of remaining) {
      if (n >= p.length) n -= p.length;
      else {
        rest.push(p.subarray(n));
        n = 0;
      }
    }
    remaining = rest;
  }
}

function scratchError(e: unknown, dir: string): unknown {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    return new VaultpathError('VP_SCRATCH_SPACE', `The scratch folder ${dir} ran out of space while staging a pack; free space there or use --scratch.`, { cause: e });
  }
  return e;
}
