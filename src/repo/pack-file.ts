/**
 * The one writer of pack files: a pack's blobs in the order given, then its sealed header and trailer (the layout
 * of pack.ts, {@link packTail}), to a new file, hashed in the same pass for the pack's id.
 *
 * The blobs come from the ranges of a staged file (a pack assembled from the blobs appended to it as they came), or
 * from memory (a blob too large to stage twice). The bytes are written by the addon's pack kernel where it is built
 * (one thread-pool job, bypassing the page cache where the file system allows), else by {@link portablePackFileWriter}
 * with Node's calls and node:crypto. Both write the same bytes: the choice is made once per run (`Kernels`).
 *
 * Contract: the file at `path` MUST NOT exist (it is created exclusively); on failure it may exist, partly written,
 * and the caller removes it. An `Error` whose `code` is the errno name (`EEXIST`, `ENOSPC`, `EIO` for a range past
 * the end of the staged file, …) is thrown as Node's own file calls throw it.
 *
 * @module
 */
import { createHash } from 'node:crypto';
import { type FileHandle, open } from 'node:fs/promises';
import type { SealKeys } from '../crypto/envelope.js';
import { type PackEntry, packTail } from './pack.js';

/** Byte ranges of a staged file, copied into a pack before its in-memory parts. */
export interface StagedRanges {
  readonly path: string;
  /** Offset, length pairs, in the order they are written. */
  readonly ranges: Float64Array;
}

/** Writes `from`'s ranges (if any), then `parts`, to a new file at `path`; resolves to the SHA-256 of all of it. */
export type PackFileWriter = (path: string, parts: readonly Uint8Array[], from?: StagedRanges) => Promise<Buffer>;

/** Slices per writev call (the POSIX minimum of IOV_MAX). */
export const IOV_MAX = 1024;
/** Bytes copied at a time where the addon is not built. */
const COPY_BYTES = 1024 * 1024;

/**
 * Writes the pack whose blobs are `entries` (in file order, offsets from 0) to a new file at `path` and returns its
 * id. The blobs' sealed bytes are `blobs`: the ranges of a staged file, or in-memory slices.
 */
export async function writePackFile(
  keys: SealKeys,
  path: string,
  entries: readonly PackEntry[],
  blobs: StagedRanges | readonly Buffer[],
  writer: PackFileWriter | null,
): Promise<Buffer> {
  const tail = packTail(keys, entries);
  const write = writer ?? portablePackFileWriter;
  return 'ranges' in blobs ? write(path, tail, blobs) : write(path, [...blobs, ...tail]);
}

/** The pack file writer where the addon is not built: Node's file calls, node:crypto for the hash. */
export async function portablePackFileWriter(path: string, parts: readonly Uint8Array[], from?: StagedRanges): Promise<Buffer> {
  const hash = createHash('sha256');
  const source = from ? await open(from.path, 'r') : undefined;
  try {
    const file = await open(path, 'wx');
    try {
      if (source && from) {
        const buffer = Buffer.allocUnsafe(COPY_BYTES);
        for (let i = 0; i < from.ranges.length; i += 2) {
          let at = from.ranges[i]!;
          let left = from.ranges[i + 1]!;
          while (left > 0) {
            const { bytesRead } = await source.read(buffer, 0, Math.min(left, buffer.length), at);
            if (bytesRead === 0) throw Object.assign(new Error(`EIO: ${from.path} ends before byte ${at + left}`), { code: 'EIO' });
            const piece = buffer.subarray(0, bytesRead);
            hash.update(piece);
            await writeAll(file, [piece]);
            at += bytesRead;
            left -= bytesRead;
          }
        }
      }
      for (const p of parts) hash.update(p);
      for (let i = 0; i < parts.length; i += IOV_MAX) await writeAll(file, parts.slice(i, i + IOV_MAX));
    } finally {
      await file.close();
    }
  } finally {
    await source?.close();
  }
  return hash.digest();
}

/** Writes every byte of `parts`, looping over short writes (a filling disk writes what fits, then fails). */
export async function writeAll(file: FileHandle, parts: readonly Uint8Array[]): Promise<void> {
  let remaining = parts.filter((p) => p.length > 0);
  while (remaining.length > 0) {
    const { bytesWritten } = await file.writev(remaining);
    let n = bytesWritten;
    const rest: Uint8Array[] = [];
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
