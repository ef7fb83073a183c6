/**
 * The addon's backup crypto (native/kernels/aead.c, seal_file.c, pack.c), so bulk hashing and encryption leave the event loop:
 *
 * - {@link nativeFileSealer}: a small file that is one chunk, read, identified (HMAC-SHA256 under the chunk-id key)
 *   and sealed as a data blob (the envelope of crypto/envelope.ts, byte for byte) on the libuv thread pool, several
 *   files to a job. The salt is drawn here, from the same CSPRNG pool as every other object's.
 * - {@link nativeChunkSealer}: a chunk cut from a large file, given as views of the read buffers, identified and
 *   sealed (or either alone) in one thread-pool job; several run at once on the pool's threads.
 * - {@link nativePackWriter}: a pack written to its staged file and hashed in the same pass, in one job, bypassing
 *   the page cache where the file system allows; its blobs are copied from the file they were appended to as they
 *   came, in the pack's shuffled order.
 *
 * All are `null` where the addon is not built; the backup then does the same work with node:crypto on its own
 * thread and the sealing workers (seal-pool.ts). A sealed blob's bytes are a buffer of their own, or one of the
 * caller's {@link SealBuffers} when it gives them.
 *
 * @module
 */
import type { ObjectTypeCode } from '../crypto/object-type.js';
import { BLOB_OVERHEAD, type SealKeys, type SealedObject, aadPrefix, freshSalt, objectKeyLabel } from '../crypto/envelope.js';
import type { ChunkIdKeys } from '../crypto/chunk-id.js';
import type { ChunkSealer } from '../repo/seal-pool.js';
import type { SealBuffers } from '../repo/seal-buffers.js';
import { batched } from './batch.js';
import { type SealFileResult, errnoName, nativeFunction } from './addon.js';

/** Files sealed in one thread-pool job at most: enough to spare most hand-offs, few enough to keep several jobs running. */
export const SEAL_BATCH = 16;
/** Sealed bytes of one job's files at most, when they are sealed into a {@link SealBuffers} pool's buffer. */
export const SEAL_BATCH_BYTES = 640 * 1024;

/** A file read and sealed whole; `after` is its fstat once read, to notice a change while it was read. */
export interface SealedFile {
  readonly id: Buffer;
  readonly sealed: SealedObject;
  /** Bytes read (fewer than asked when the file shrank). */
  readonly bytes: number;
  readonly after: { readonly size: bigint; readonly mtimeNs: bigint; readonly ctimeNs: bigint };
}

/** A system call failed: `step` says which, `code` is the errno's name. */
export interface SealFileFailure {
  readonly step: 'open' | 'read';
  readonly code: string;
}

/** The file a sealer must find open: its device and inode, as the scan saw them. */
export interface ExpectedFile {
  readonly dev: number;
  readonly ino: bigint;
}

/**
 * Reads up to `size` bytes of the file at `path` (a string, or its bytes for a name that is not UTF-8) and seals them
 * as one blob of `type`. The path is opened without following a final symbolic link and without blocking; anything
 * but a regular file, or with `expect` any file but that one, is refused at `open` before a byte is read: `ELOOP`
 * (a link), `EISDIR`, `EINVAL` (a FIFO, a device, a socket), `ESTALE` (another file).
 */
export type FileSealer = (path: string | Buffer, size: number, type: ObjectTypeCode, expect?: ExpectedFile) => Promise<SealedFile | SealFileFailure>;

/**
 * The native file sealer under `keys`, or `null` when the addon is not built here. Calls made in the same turn of
 * the event loop are sealed together, up to {@link SEAL_BATCH} files per thread-pool job: each call still gets its
 * own result.
 *
 * With `buffers`, a job's files are sealed into one buffer of that pool (at most {@link SEAL_BATCH_BYTES} of them
 * to a job, or one larger file alone), shared by the files: the caller gives each sealed file's bytes back once
 * (written in a pack, or unused), and the buffer returns to the pool when all have been. A failed file's share is
 * given back here. Without, each sealed file is a buffer of its own, freed by the collector.
 */
export function nativeFileSealer(keys: SealKeys & ChunkIdKeys, buffers?: SealBuffers): FileSealer | null {
  const sealFiles = nativeFunction('sealFiles');
  if (!sealFiles) return null;
  const keyLabel = objectKeyLabel();
  const ns = (sec: number, nsec: number): bigint => BigInt(sec) * 1_000_000_000n + BigInt(nsec);
  type File = { path: string | Buffer; size: number; expect?: ExpectedFile };
  /** Room for a file's sealed bytes: its size as scanned, and the envelope. */
  const room = (f: File): number => f.size + BLOB_OVERHEAD;
  type Result = SealFileResult;
  const sealBatch = async (type: ObjectTypeCode, files: File[]): Promise<Result[]> => {
    const salts = Buffer.concat(files.map(() => freshSalt()));
    const args = [files.map((f) => f.path), files.map((f) => f.size), keys.sealKey, keys.chunkIdKey, keyLabel, aadPrefix(type), salts] as const;
    // Each file's expected device and inode; inode 0 (no file has it) for a file given none, which is not checked.
    let expect: BigUint64Array | null = null;
    if (files.some((f) => f.expect)) {
      expect = new BigUint64Array(files.length * 2);
      for (const [i, f] of files.entries()) {
        if (!f.expect) continue;
        expect[2 * i] = BigInt(f.expect.dev);
        expect[2 * i + 1] = f.expect.ino;
      }
    }
    if (!buffers) return sealFiles(...args, null, expect);
    const out = buffers.acquire(files.reduce((n, f) => n + room(f), 0), files.length);
    let results: Result[];
    try {
      results = await sealFiles(...args, out, expect);
    } catch (e) {
      for (let i = 0; i < files.length; i++) buffers.release(out);
      throw e;
    }
    let at = 0;
    return results.map((r, i) => {
      const slot = out.subarray(at, at + room(files[i]!));
      at += slot.length;
      if (r.errno !== 0 || !('id' in r)) {
        buffers.release(out); // nothing of it was written
        return r;
      }
      return { ...r, sealed: slot.subarray(0, r.bytes + BLOB_OVERHEAD) };
    });
  };
  const byType = new Map<ObjectTypeCode, (file: File) => Promise<Result>>();
  const sealerOf = (type: ObjectTypeCode) => {
    let seal = byType.get(type);
    if (!seal) {
      const weight = buffers ? { weight: room, maxWeight: SEAL_BATCH_BYTES } : undefined;
      seal = batched(SEAL_BATCH, (files: File[]) => sealBatch(type, files), weight);
      byType.set(type, seal);
    }
    return seal;
  };
  return async (path, size, type, expect) => {
    const r = await sealerOf(type)({ path, size, ...(expect ? { expect } : {}) });
    if (r.errno !== 0 || !('id' in r)) return { step: (r as { step: 'open' | 'read' }).step, code: errnoName(r.errno) };
    const sealed = r.sealed!;
    return {
      id: r.id,
      sealed: { parts: [sealed], length: sealed.length },
      bytes: r.bytes,
      after: { size: BigInt(r.size), mtimeNs: ns(r.mtimeSec, r.mtimeNsec), ctimeNs: ns(r.ctimeSec, r.ctimeNsec) },
    };
  };
}

/**
 * The native chunk sealer under `keys`, or `null` when the addon is not built here. With `buffers`, blobs are
 * sealed into buffers of that pool (the caller gives them back once written); else each into a buffer of its own.
 */
export function nativeChunkSealer(keys: SealKeys & ChunkIdKeys, buffers?: SealBuffers): ChunkSealer | null {
  const sealParts = nativeFunction('sealParts');
  if (!sealParts) return null;
  const keyLabel = objectKeyLabel();
  const prefixes = new Map<number, Buffer>();
  const prefixOf = (type: number): Buffer => {
    let prefix = prefixes.get(type);
    if (!prefix) prefixes.set(type, (prefix = aadPrefix(type)));
    return prefix;
  };
  const none = Buffer.alloc(0);
  const sealInto = async (type: number, id: Uint8Array | null, parts: readonly Uint8Array[]): Promise<{ id: Buffer; sealed: SealedObject }> => {
    const length = parts.reduce((n, p) => n + p.length, BLOB_OVERHEAD);
    const out = buffers?.acquire(length);
    try {
      const r = await sealParts(parts, keys.sealKey, keys.chunkIdKey, keyLabel, prefixOf(type), freshSalt(), id, out);
      const sealed = out ?? r.sealed!;
      return { id: r.id, sealed: { parts: [sealed], length: sealed.length } };
    } catch (e) {
      if (out) buffers!.release(out);
      throw e;
    }
  };
  return {
    process: (type, parts) => sealInto(type, null, parts),
    identify: (parts) => sealParts(parts, keys.sealKey, keys.chunkIdKey, keyLabel, none, null, null),
    seal: async (type, id, parts) => (await sealInto(type, id, parts)).sealed,
    close: () => Promise.resolve(),
  };
}

/** Byte ranges of a staged file, copied into a pack before its in-memory parts. */
export interface StagedRanges {
  readonly path: string;
  /** Offset, length pairs, in the order they are written. */
  readonly ranges: Float64Array;
}

/** Writes a pack: `from`'s ranges (if any), then `parts`, to a new file; resolves to the SHA-256 of all of it. */
export type NativePackWriter = (path: string, parts: readonly Uint8Array[], from?: StagedRanges) => Promise<Buffer>;

/**
 * Writes a pack to a new file at `path` (created exclusively): the byte ranges of a staged file, then in-memory
 * slices, and resolves to the SHA-256 of what it wrote, in one thread-pool job (native/kernels/pack.c, `writePack`),
 * or `null` where the addon is not built.
 * @throws an `Error` whose `code` is the errno name (`EEXIST`, `ENOSPC`, `EIO` for a range past the end of the
 *   staged file, …), as Node's own file calls throw; the file may then exist, partly written.
 */
export function nativePackWriter(): NativePackWriter | null {
  const writePack = nativeFunction('writePack');
  if (!writePack) return null;
  return async (path, parts, from) => {
    try {
      return await (from ? writePack(path, parts, from.path, from.ranges) : writePack(path, parts));
    } catch (e) {
      const errno = (e as { errno?: number }).errno;
      if (errno === undefined) throw e;
      throw Object.assign(new Error(`${errnoName(errno)}: ${(e as Error).message}, writing ${path}`), { code: errnoName(errno), errno, path });
    }
  };
}
