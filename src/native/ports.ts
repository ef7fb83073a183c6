/**
 * The ports through which backup and restore reach the native kernels, chosen once per run.
 *
 * Each port is a factory that returns the native implementation, or `null` when the addon (or the function) is not
 * built here, in which case the caller takes its portable JavaScript path. {@link nativeKernels} is the default;
 * {@link portableKernels} makes every factory return `null`, so a run (or a test) takes the portable path end to
 * end without mocking modules. Both paths write and read the same bytes: the format does not depend on the choice.
 *
 * @module
 */
import { nativeBlobOpener, nativeBlobWriter, openDirect } from './open.js';
import { nativeChunkSealer, nativeFileSealer, nativePackWriter } from './seal.js';
import { nativeWriter } from './write-files.js';
import { nativeDescriptorCalls } from '../restorer/fs-at.js';

/** The native kernels a backup or restore uses; every factory may return `null` (take the portable path). */
export interface Kernels {
  /** Seals whole small files (read, chunk id, seal) in one call: the backup's Sealer for files. */
  readonly fileSealer: typeof nativeFileSealer;
  /** Seals chunks given as parts off the event loop: the backup's Sealer for chunks. */
  readonly chunkSealer: typeof nativeChunkSealer;
  /** Writes a pack file from sealed parts (and ranges of staged files) and returns its SHA-256. */
  readonly packWriter: typeof nativePackWriter;
  /** Opens (authenticates and checks) blobs read from a pack file: the restore's BlobOpener. */
  readonly blobOpener: typeof nativeBlobOpener;
  /** Opens blobs from a pack file straight into a target file. */
  readonly blobWriter: typeof nativeBlobWriter;
  /** Writes whole small files into a folder by descriptor: the restore's FileWriter. */
  readonly fileWriter: typeof nativeWriter;
  /** Opens a pack file for direct (uncached) reads, or `undefined` where that is not possible. */
  readonly openDirect: typeof openDirect;
  /** The descriptor-relative file calls (openat family, futimens) a restore makes in its target. */
  readonly descriptorCalls: typeof nativeDescriptorCalls;
}

/** The addon's kernels where it is built, each falling back on its own when a function is missing. */
export const nativeKernels: Kernels = Object.freeze({
  fileSealer: nativeFileSealer,
  chunkSealer: nativeChunkSealer,
  packWriter: nativePackWriter,
  blobOpener: nativeBlobOpener,
  blobWriter: nativeBlobWriter,
  fileWriter: nativeWriter,
  openDirect,
  descriptorCalls: nativeDescriptorCalls,
});

/** No native kernel: every stage takes its portable JavaScript path. */
export const portableKernels: Kernels = Object.freeze({
  fileSealer: () => null,
  chunkSealer: () => null,
  packWriter: () => null,
  blobOpener: () => null,
  blobWriter: () => null,
  fileWriter: () => null,
  openDirect: () => Promise.resolve(undefined),
  descriptorCalls: () => null,
});
