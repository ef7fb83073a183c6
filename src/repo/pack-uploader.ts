/**
 * Packs sealed blobs, stages each pack in the scratch cache, uploads it, and records it in the index, in the order
 * the format requires.
 *
 * - Blobs are appended, as they come, to the pack's pending file in the scratch cache, about 1 MiB at a time, and
 *   their sealed bytes handed back (`recycle`) once written: a pack in the making holds no blob in memory. When the
 *   pack reaches the target size, its blobs are copied into the pack file in a random order (so a pack's layout
 *   says nothing about file layout), hashed in the same pass, and the pending file is removed.
 * - Every byte in the cache is reserved first: a pending file append by append, a pack file whole before its copy
 *   (so a pack needs twice its size until its copy is done and the pending file removed, before the upload). When
 *   the cache is full, the caller waits. Reservations are granted in the order asked, so a pack's copy is never
 *   stuck behind the next pack's blobs. A blob at least as large as a pack (a huge folder's tree) is a pack of its
 *   own, written straight from memory, so it never needs twice its size. Either way the pack file is written by
 *   the one pack file writer (pack-file.ts).
 * - Uploads run in the background, at most `maxInFlight` packs being copied or uploaded at once (slots are taken in
 *   order, however many producers stage at once); the body is re-read from the staged file on every attempt. Only
 *   after the store acknowledges a pack is its file removed, its space released, and its blobs queued for the index.
 * - Index objects are written for acknowledged packs only, every `indexEvery` packs and at the end, by the one
 *   index writer (index-writer.ts), so an interrupted backup loses little: what was acknowledged is listed, and the
 *   next run reuses it.
 *
 * Its caller is the blob saver (blob-saver.ts), which decides what is new and seals it; this module only packs.
 *
 * @module
 */
import { randomInt } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { type FileHandle, open, unlink } from 'node:fs/promises';
import { VaultpathError, throwIfAborted } from '../errors.js';
import { BLOB_OVERHEAD, type SealedObject } from '../crypto/envelope.js';
import type { ScratchCache } from '../stage/scratch-cache.js';
import type { Vault } from './vault.js';
import { Folder, objectName } from './layout.js';
import { PACK_ENTRY_LENGTH, PACK_TRAILER_LENGTH, type PackEntry, type PackedType } from './pack.js';
import { IOV_MAX, type PackFileWriter, writeAll, writePackFile } from './pack-file.js';
import { IndexWriter } from './index-writer.js';
import { nativeKernels } from '../native/ports.js';
import { Limiter } from '../limit.js';
import { formatBytes } from '../units.js';

/** Sealed bytes gathered before they are appended to a pending file in one call. */
const APPEND_BYTES = 1024 * 1024;

/** Writers aim at packs of this size. */
export const TARGET_PACK_SIZE = 16 * 1024 * 1024;

/**
 * The scratch space a backup needs at least: a pack of up to `largestPack` bytes is copied from its pending file, so
 * both are in the cache at once.
 */
export function scratchNeeded(largestPack: number): number {
  return 2 * largestPack;
}

/**
 * Checks, before any data is read, that a scratch cache of `capacity` bytes can assemble the largest pack: the
 * target size plus one blob of up to `maxBlob` bytes (and room for its header), twice (see {@link scratchNeeded}).
 * @throws {VaultpathError} `VP_SCRATCH_SPACE`
 */
export function checkScratchCapacity(capacity: number, targetPackSize: number, maxBlob: number): void {
  const largestPack = targetPackSize + maxBlob + 64 * 1024;
  if (capacity < scratchNeeded(largestPack)) {
    throw new VaultpathError(
      'VP_SCRATCH_SPACE',
      `A scratch cache of ${formatBytes(capacity)} cannot hold one pack of up to ${formatBytes(largestPack)} while it is assembled from the blobs staged for it; give at least ${formatBytes(scratchNeeded(largestPack))}.`,
    );
  }
}

export interface PackUploaderOptions {
  /** @default TARGET_PACK_SIZE */
  readonly targetPackSize?: number;
  /** Packs being copied or uploaded at once. @default 2 */
  readonly maxInFlight?: number;
  /** Write an index object after this many acknowledged packs. @default 16 */
  readonly indexEvery?: number;
  readonly signal?: AbortSignal;
  /** Writes pack files natively; `null` writes them in JavaScript. @default the addon's, where it is built */
  readonly packWriter?: PackFileWriter | null;
  /** Called after each pack is acknowledged. MUST NOT block. */
  readonly onPackStored?: (bytes: number) => void;
  /** Given each blob's sealed bytes once they are written to the scratch cache, when nothing refers to them. */
  readonly recycle?: (sealed: SealedObject) => void;
}

interface PendingBlob {
  readonly type: PackedType;
  readonly id: Buffer;
  /** Where the blob is in the pending file. */
  readonly at: number;
  readonly length: number;
  readonly plaintextLength: number;
}

/** A pack being filled: its blobs appended to a pending file as they come. */
interface OpenPack {
  readonly path: string;
  /** The pending file, created on the first append. */
  file: Promise<FileHandle> | undefined;
  readonly blobs: PendingBlob[];
  /** Bytes placed in the pack (appended, or gathered to be). */
  bytes: number;
  /** Scratch bytes granted to the pending file. */
  reserved: number;
  /** Sealed blobs not yet appended. */
  gathered: SealedObject[];
  gatheredBytes: number;
  /** This pack's last append; it never rejects (a failure is kept as the uploader's). */
  appended: Promise<void>;
}

export class PackUploader {
  readonly #vault: Vault;
  readonly #scratch: ScratchCache;
  readonly #target: number;
  readonly #signal: AbortSignal | undefined;
  readonly #onPackStored: ((bytes: number) => void) | undefined;
  readonly #recycle: ((sealed: SealedObject) => void) | undefined;
  readonly #packWriter: PackFileWriter | null;
  #open: OpenPack | undefined;
  /** Ids added in this run (pending, staged, uploading or stored): the run's own dedup set. */
  readonly #added = new Set<string>();
  readonly #inFlight = new Set<Promise<void>>();
  /** Lists acknowledged packs in index objects. */
  readonly #index: IndexWriter;
  #failure: unknown;
  #seq = 0;
  #pending = 0;
  /** The last append of any pack: appends run one after another, in the order their space was asked for. */
  #appending: Promise<void> = Promise.resolve();
  /** Sealed bytes added and not yet appended: the memory a producer may run ahead by. */
  #unwritten = 0;
  /** Upload slots: packs being copied or uploaded, or about to be; handed on in order. */
  readonly #slots: Limiter;
  /** Set by settle(): nothing new starts afterwards. */
  #closed = false;
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
    this.#slots = new Limiter(options.maxInFlight ?? 2);
    this.#index = new IndexWriter(vault.store, vault.keys, { every: options.indexEvery ?? 16, signal: options.signal });
    this.#signal = options.signal;
    this.#onPackStored = options.onPackStored;
    this.#recycle = options.recycle;
    this.#packWriter = options.packWriter === undefined ? nativeKernels.packWriter() : options.packWriter;
  }

  /** True when blob `id` was added in this run. */
  has(id: Uint8Array): boolean {
    return this.#added.has(Buffer.from(id.buffer, id.byteOffset, id.byteLength).toString('latin1'));
  }

  /**
   * Adds a sealed blob; may wait for scratch space, an append, or an upload slot. Its sealed bytes are handed to
   * `recycle` once written to the scratch cache.
   */
  async add(type: PackedType, id: Buffer, sealed: SealedObject, plaintextLength: number): Promise<void> {
    this.#check();
    // Registered at once, before any wait below, so that a concurrent file finds the chunk known and skips it.
    this.#added.add(id.toString('latin1'));
    // A blob larger than a pack (a tree of a huge folder) is a pack of its own, written from memory, where it is
    // already: through a pending file it would need twice its size in the cache, which a small cache cannot give.
    if (sealed.length >= this.#target) return this.#stageAlone(type, id, sealed, plaintextLength);
    // Before the blob is placed: producers wait while more than a couple of appends' worth is in memory, however
    // many add at once, and the pack is staged if this blob would carry it past its target (a pack is at most the
    // target plus one blob and its header entry). Both are checked again after any wait; placing follows at once.
    for (;;) {
      if (this.#unwritten >= 2 * APPEND_BYTES) {
        await this.#appending;
        this.#check();
      } else if (this.#open && packSize(this.#open) + sealed.length + PACK_ENTRY_LENGTH > this.#target) {
        await this.#stage();
      } else {
        break;
      }
    }
    const pack = (this.#open ??= this.#newPack());
    pack.blobs.push({ type, id, at: pack.bytes, length: sealed.length, plaintextLength });
    pack.bytes += sealed.length;
    pack.gathered.push(sealed);
    pack.gatheredBytes += sealed.length;
    this.#unwritten += sealed.length;
    if (packSize(pack) >= this.#target) await this.#stage();
    else if (pack.gatheredBytes >= APPEND_BYTES) this.#append(pack);
  }

  /** Packs what is left, waits for every upload, and writes the last index object. */
  async finish(): Promise<void> {
    this.#check();
    if (this.#open) await this.#stage();
    while (this.#inFlight.size > 0) await Promise.race(this.#inFlight);
    this.#check();
    await this.#index.flush();
  }

  /** Waits for uploads already started (after a failure or abort), without starting more, and removes the pending file. */
  async settle(): Promise<void> {
    this.#closed = true;
    const pack = this.#open;
    this.#open = undefined;
    await Promise.allSettled([...this.#inFlight]);
    if (pack) await this.#discard(pack);
  }

  #check(): void {
    if (this.#failure !== undefined) throw this.#failure;
    throwIfAborted(this.#signal);
    if (this.#closed) throw new Error('internal: the pack uploader was used after settle()');
  }

  #newPack(): OpenPack {
    return { path: this.#scratch.path(`pending-${this.#pending++}`), file: undefined, blobs: [], bytes: 0, reserved: 0, gathered: [], gatheredBytes: 0, appended: Promise.resolve() };
  }

  /**
   * Appends what `pack` gathered to its pending file, after every earlier append and once its space is granted. The
   * space is asked for now, so grants follow the order of the calls.
   */
  #append(pack: OpenPack): void {
    const sealed = pack.gathered;
    const bytes = pack.gatheredBytes;
    if (bytes === 0) return;
    pack.gathered = [];
    pack.gatheredBytes = 0;
    const reserving = this.#scratch.reserve(bytes, this.#signal);
    reserving.catch(() => undefined); // awaited below
    const earlier = this.#appending;
    this.#appending = pack.appended = (async () => {
      try {
        await earlier;
        await reserving;
        pack.reserved += bytes;
        this.#check();
        const file = await (pack.file ??= open(pack.path, 'wx'));
        const parts = sealed.flatMap((b) => b.parts);
        for (let i = 0; i < parts.length; i += IOV_MAX) await writeAll(file, parts.slice(i, i + IOV_MAX));
        if (this.#recycle) for (const b of sealed) this.#recycle(b);
      } catch (e) {
        this.#failure ??= scratchError(e, this.#scratch.dir);
      } finally {
        this.#unwritten -= bytes;
      }
    })();
  }

  async #stage(): Promise<void> {
    const pack = this.#open!;
    this.#open = undefined;
    const blobs = pack.blobs;
    // Fisher–Yates with the CSPRNG: the order of blobs in a pack is independent of the order of the data.
    for (let i = blobs.length - 1; i > 0; i--) {
      const j = randomInt(i + 1);
      [blobs[i], blobs[j]] = [blobs[j]!, blobs[i]!];
    }
    const size = packSize(pack);
    // The pack's last blobs, then the pack file's space, asked for before any later blob's: granted in order, the
    // copy never waits behind the next pack.
    this.#append(pack);
    await this.#launch(
      size,
      async (path) => {
        const written = await this.#copyPack(pack, path);
        await this.#discard(pack); // copied: the pending file's space is free for the next packs during the upload
        return written;
      },
      () => this.#discard(pack),
    );
  }

  /** Stages a blob as a pack of its own, written from memory (see add). */
  async #stageAlone(type: PackedType, id: Buffer, sealed: SealedObject, plaintextLength: number): Promise<void> {
    const entries: PackEntry[] = [{ type, codec: 0, id, offset: 0, length: sealed.length, plaintextLength }];
    const size = sealed.length + packTailLength(entries.length);
    await this.#launch(
      size,
      async (path) => {
        let packId: Buffer;
        try {
          packId = await writePackFile(this.#vault.keys, path, entries, sealed.parts, this.#packWriter);
        } catch (e) {
          throw scratchError(e, this.#scratch.dir);
        }
        this.#recycle?.(sealed);
        return { id: packId, entries };
      },
      async () => undefined,
    );
  }

  /**
   * Reserves `size` bytes for a pack file (asked for at once, so in the order of the calls), takes an upload slot,
   * and once both are there starts `write` (which makes the pack file at the given path) and the upload in the
   * background. `cleanup` runs when the pack is done with, stored or not, and when it never starts.
   */
  async #launch(size: number, write: (path: string) => Promise<{ id: Buffer; entries: PackEntry[] }>, cleanup: () => Promise<void>): Promise<void> {
    const room = this.#scratch.reserve(size, this.#signal);
    room.catch(() => undefined); // awaited below
    let giveSlot: (() => void) | undefined;
    try {
      giveSlot = await this.#slots.acquire();
      this.#check();
      // The reservation is the backpressure: the caller waits here while the scratch cache is full. Writing the pack
      // and uploading it then run in the background while the caller reads and chunks the next data.
      await room;
      this.#check();
    } catch (e) {
      void room.then(() => this.#scratch.release(size), () => undefined);
      giveSlot?.();
      await cleanup();
      throw e;
    }
    const path = this.#scratch.path(`pack-${this.#seq++}`);
    const task = (async () => {
      try {
        const { id, entries } = await write(path);
        await this.#vault.store.put(
          objectName(Folder.data, id),
          { size, path, stream: () => createReadStream(path, { highWaterMark: 1024 * 1024 }) },
          { signal: this.#signal },
        );
        this.#index.packStored(id, entries);
        this.packs++;
        this.bytesStored += size;
        this.#onPackStored?.(size);
      } catch (e) {
        this.#failure ??= e;
      } finally {
        await cleanup();
        await unlink(path).catch(() => undefined);
        this.#scratch.release(size);
      }
      if (this.#failure === undefined && this.#index.due) await this.#index.flush().catch((e: unknown) => (this.#failure ??= e));
    })();
    this.#inFlight.add(task);
    void task.finally(() => {
      this.#inFlight.delete(task);
      giveSlot();
    });
  }

  /** Copies the pending file's blobs, in the pack's order, then its header and trailer, to the pack file at `path`. */
  async #copyPack(pack: OpenPack, path: string): Promise<{ id: Buffer; entries: PackEntry[] }> {
    await pack.appended;
    this.#check();
    const entries: PackEntry[] = [];
    const ranges = new Float64Array(2 * pack.blobs.length);
    let offset = 0;
    for (const [i, b] of pack.blobs.entries()) {
      entries.push({ type: b.type, codec: 0, id: b.id, offset, length: b.length, plaintextLength: b.plaintextLength });
      ranges[2 * i] = b.at;
      ranges[2 * i + 1] = b.length;
      offset += b.length;
    }
    const from = { path: pack.path, ranges };
    try {
      if (pack.file) await (await pack.file).close().finally(() => (pack.file = undefined));
      const id = await writePackFile(this.#vault.keys, path, entries, from, this.#packWriter);
      return { id, entries };
    } catch (e) {
      throw scratchError(e, this.#scratch.dir);
    }
  }

  /** Closes and removes a pack's pending file and releases its space, once its appends are done. */
  async #discard(pack: OpenPack): Promise<void> {
    await pack.appended;
    const file = pack.file;
    pack.file = undefined;
    if (file) await file.then((f) => f.close()).catch(() => undefined);
    await unlink(pack.path).catch(() => undefined);
    this.#scratch.release(pack.reserved);
    pack.reserved = 0;
  }
}

/** The size of the pack `pack` makes: its blobs, then the sealed header (one entry per blob) and the trailer. */
function packSize(pack: OpenPack): number {
  return pack.bytes + packTailLength(pack.blobs.length);
}

/** The bytes of a pack's sealed header (one entry per blob) and trailer. */
function packTailLength(blobs: number): number {
  return BLOB_OVERHEAD + 4 + PACK_ENTRY_LENGTH * blobs + PACK_TRAILER_LENGTH;
}

function scratchError(e: unknown, dir: string): unknown {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    return new VaultpathError('VP_SCRATCH_SPACE', `The scratch folder ${dir} ran out of space while staging a pack; free space there or use --scratch.`, { cause: e });
  }
  return e;
}
