/**
 * Saving a blob: the one port between a backup and the vault (in the spirit of restic's `SaveBlob`).
 *
 * ```
 *   saveBlob(type, data, { storeDuplicate, likelyNew }) → { id, known }
 * ```
 *
 * Behind it, in this order: the blob's id (HMAC under the chunk-id key, unless a kernel computed it with the seal),
 * dedup against the index and against every blob saved in this run (stored, uploading or still being packed), the
 * seal (AEAD, on this thread, on the sealing workers, or by the addon's thread-pool jobs), then the pack uploader:
 * packs assembled in the scratch cache in a random order, uploaded, and listed in index objects (pack-uploader.ts).
 * A caller never touches packs, the store, the index or a sealed buffer's lifetime.
 *
 * Contracts:
 * - A blob is stored at most once per run and never when the index has it, unless `storeDuplicate` (an encrypted
 *   file, backed up in full: its chunks are never taken from earlier backups). Dedup is decided after sealing too:
 *   a blob sealed off this thread may meanwhile have been saved by another file, and is then dropped.
 * - `data` is the plaintext as parts, which MUST NOT change until the returned promise settles; or a blob a kernel
 *   already sealed (a whole small file, {@link BlobSaver.sealFile}), whose sealed bytes belong to the saver from the
 *   call on: it gives them back to its buffer pool once they are written to the scratch cache, or at once when the
 *   blob turns out known. No caller gives sealed bytes back.
 * - Resolving means the blob is placed (or known), not that it is stored: {@link BlobSaver.finish} waits until every
 *   pack is acknowledged and indexed, which a snapshot MUST wait for (write ordering, FORMAT.md §12).
 * - A dry run (no scratch cache) computes ids and seals and stores nothing; every blob not in the index is `known:
 *   false`.
 * - The saver MUST be closed ({@link BlobSaver.close}): its sealing workers keep the process alive.
 *
 * @module
 */
import { ObjectType } from '../crypto/object-type.js';
import { type SealedObject, sealBlob } from '../crypto/envelope.js';
import type { ScratchCache } from '../stage/scratch-cache.js';
import type { Kernels } from '../native/ports.js';
import { type ExpectedFile, type FileSealer, SEAL_BATCH, SEAL_BATCH_BYTES } from '../native/seal.js';
import { type ChunkSealer, SealPool } from './seal-pool.js';
import { SealBuffers } from './seal-buffers.js';
import type { Vault, VaultIndex } from './vault.js';
import type { PackedType } from './pack.js';
import { PackUploader } from './pack-uploader.js';

export { SEAL_BATCH, SEAL_BATCH_BYTES };

/** Chunks at least this long are hashed and sealed off this thread (a message costs more than smaller ones' work). */
export const OFFLOAD_MIN = 256 * 1024;

/**
 * Bytes of sealed-blob buffers kept for reuse. Sealed chunks come back as soon as they are appended to the scratch
 * cache, so a few MiB keep the same pages in use: measured on the benchmark corpus, 8 MiB took 15 MiB off the peak
 * of a first backup against 24 MiB, in the same time (64 MiB, when whole packs were held in memory, kept 30–40 MiB
 * more for no gain).
 */
const FREE_SEAL_BYTES = 8 * 1024 * 1024;

/** A blob to save: its plaintext, or sealed already by a kernel (with its id). */
export type BlobData =
  | { readonly parts: readonly Buffer[]; readonly length: number }
  | { readonly id: Buffer; readonly sealed: SealedObject; readonly length: number };

export interface SaveBlobOptions {
  /** Store the blob even when the vault has it (restic's `storeDuplicate`). @default false */
  readonly storeDuplicate?: boolean;
  /**
   * The blob is probably new (a new file's chunk): a large one is identified and sealed in one job, and the seal
   * dropped if it turns out known. Otherwise it is identified first and sealed only if new. @default false
   */
  readonly likelyNew?: boolean;
}

export interface SavedBlob {
  readonly id: Buffer;
  /** True when nothing was stored: the vault or this run had the blob (or a dry run). */
  readonly known: boolean;
}

/** A small file read and sealed whole by a kernel: `blob` to save (absent when nothing was read), and its fstat after. */
export interface SealedWholeFile {
  readonly blob?: Extract<BlobData, { sealed: SealedObject }>;
  /** Bytes read (fewer than asked when the file shrank). */
  readonly bytes: number;
  readonly after: { readonly size: bigint; readonly mtimeNs: bigint; readonly ctimeNs: bigint };
}

export interface BlobSaverOptions {
  /** The native kernels of this run (`portableKernels`: none). */
  readonly kernels: Kernels;
  /**
   * Worker threads that hash and seal large chunks; 0 does everything on the calling thread. Unset, the addon's
   * thread-pool jobs do it where the addon is built, else cores − 1 workers.
   */
  readonly sealWorkers?: number;
  /** Where packs are staged; absent for a dry run, which stores nothing. */
  readonly scratch?: ScratchCache;
  /** Pack size target. @default TARGET_PACK_SIZE */
  readonly targetPackSize?: number;
  readonly signal?: AbortSignal;
  /** Called after each pack is acknowledged. MUST NOT block. */
  readonly onPackStored?: () => void;
}

export class BlobSaver {
  readonly #vault: Vault;
  readonly #index: VaultIndex;
  readonly #buffers = new SealBuffers(FREE_SEAL_BYTES);
  readonly #uploader: PackUploader | undefined;
  readonly #fileSealer: FileSealer | null;
  readonly #newPool: (() => ChunkSealer) | undefined;
  #pool: ChunkSealer | undefined;

  constructor(vault: Vault, index: VaultIndex, options: BlobSaverOptions) {
    this.#vault = vault;
    this.#index = index;
    const { kernels, scratch, sealWorkers } = options;
    this.#uploader = scratch
      ? new PackUploader(vault, scratch, {
          signal: options.signal,
          targetPackSize: options.targetPackSize,
          packWriter: kernels.packWriter(),
          onPackStored: options.onPackStored,
          recycle: (sealed) => this.#release(sealed),
        })
      : undefined;
    this.#fileSealer = scratch ? kernels.fileSealer(vault.keys, this.#buffers) : null;
    // The addon's thread-pool jobs where it is built, else worker threads, started on the first chunk large enough
    // to need them: unchanged and small-file backups never pay for a worker.
    this.#newPool =
      scratch && sealWorkers !== 0
        ? () => (sealWorkers === undefined ? kernels.chunkSealer(vault.keys, this.#buffers) : null) ?? new SealPool(vault.keys, sealWorkers)
        : undefined;
  }

  /** True when blob `id` is in the index or was saved in this run. */
  has(id: Uint8Array): boolean {
    return this.#index.has(id) || (this.#uploader?.has(id) ?? false);
  }

  /** {@link has} for an id in hex. */
  hasHex(idHex: string): boolean {
    return this.#index.hasHex(idHex) || (this.#uploader?.has(Buffer.from(idHex, 'hex')) ?? false);
  }

  /** True when small files are read and sealed whole by a kernel ({@link sealFile}). */
  get sealsWholeFiles(): boolean {
    return this.#fileSealer !== null;
  }

  /** Bytes of packs acknowledged by the store. */
  get bytesStored(): number {
    return this.#uploader?.bytesStored ?? 0;
  }

  /** Packs staged so far: each may have reached the store, acknowledged or not. */
  get packsStaged(): number {
    return this.#uploader?.packsStaged ?? 0;
  }

  /**
   * Saves a blob of `type` unless the vault or this run has it (see the module's contracts); may wait for scratch
   * space or an upload slot.
   * @throws what staging or uploading a pack threw (`VP_SCRATCH_SPACE`, store errors), `VP_ABORTED`.
   */
  async saveBlob(type: PackedType, data: BlobData, options: SaveBlobOptions = {}): Promise<SavedBlob> {
    const storeDuplicate = options.storeDuplicate ?? false;
    if ('sealed' in data) return this.#store(type, data.id, data.length, storeDuplicate, data.sealed);
    const { parts, length } = data;
    const pool = type === ObjectType.data && length >= OFFLOAD_MIN && this.#newPool ? (this.#pool ??= this.#newPool()) : undefined;
    if (!pool) {
      const id = this.#vault.ids.id(parts);
      if (!this.#uploader) return { id, known: this.has(id) };
      return this.#store(type, id, length, storeDuplicate, () => sealBlob(this.#vault.keys, type, id, parts));
    }
    if (storeDuplicate || options.likelyNew) {
      const { id, sealed } = await pool.process(type, parts);
      return this.#store(type, id, length, storeDuplicate, sealed);
    }
    // Probably known (a changed file's chunk): identified here, sealed only if new. A blob known now stays known
    // (ids are only ever added).
    const { id } = await pool.identify(parts);
    return this.#store(type, id, length, storeDuplicate, () => pool.seal(type, id, parts));
  }

  /**
   * Reads up to `size` bytes of the file at `path` and seals them as one data blob in a kernel job (batched with the
   * other files of the same turn); `undefined` where no kernel does this ({@link sealsWholeFiles}). The file is
   * opened without following a link and without blocking, and refused at `open` unless it is the regular file
   * `expect` names: the failure's `code` is the errno name (`ELOOP`, `EISDIR`, `EINVAL`, `ESTALE`, …).
   */
  async sealFile(path: string | Buffer, size: number, expect: ExpectedFile): Promise<SealedWholeFile | { readonly step: 'open' | 'read'; readonly code: string }> {
    const r = await this.#fileSealer!(path, size, ObjectType.data, expect);
    if ('code' in r) return r;
    if (r.bytes === 0) {
      this.#release(r.sealed); // a file that shrank to nothing has no chunk
      return { bytes: 0, after: r.after };
    }
    return { blob: { id: r.id, sealed: r.sealed, length: r.bytes }, bytes: r.bytes, after: r.after };
  }

  /** Packs what is left, waits until every pack is acknowledged, and writes the last index object. */
  async finish(): Promise<void> {
    await this.#uploader?.finish();
  }

  /** After a failure or an abort: waits for uploads already started, without starting more. */
  async settle(): Promise<void> {
    await this.#uploader?.settle();
  }

  /** Stops the sealing workers and frees the sealed-blob buffers; the saver is not used afterwards. */
  async close(): Promise<void> {
    await this.#pool?.close();
    this.#buffers.dispose();
  }

  async #store(
    type: PackedType,
    id: Buffer,
    length: number,
    storeDuplicate: boolean,
    blob: SealedObject | (() => SealedObject | Promise<SealedObject>),
  ): Promise<SavedBlob> {
    const isNew = (): boolean => storeDuplicate || !this.has(id);
    if (!isNew()) {
      if (typeof blob !== 'function') this.#release(blob); // sealed ahead, a duplicate
      return { id, known: true };
    }
    const sealing = typeof blob === 'function' ? blob() : blob;
    // Sealing off this thread lets other files run meanwhile: one of them may have saved the same blob (the uploader
    // registers an id as soon as it is added), so ask again once it is sealed. A seal on this thread is not awaited,
    // so the question and the add happen in one turn.
    const sealed = sealing instanceof Promise ? await sealing : sealing;
    if (!isNew()) {
      this.#release(sealed);
      return { id, known: true };
    }
    await this.#uploader!.add(type, id, sealed, length);
    return { id, known: false };
  }

  /** Gives a sealed blob's bytes back to the pool (bytes not from it are ignored). */
  #release(sealed: SealedObject): void {
    for (const p of sealed.parts) this.#buffers.release(p);
  }
}
