/**
 * The addon's blob opener (native/kernels/open_blob.c), so the restore's bulk decryption and id checks leave the event
 * loop: a blob is read from an open local copy of its pack, authenticated, decrypted in place and its plaintext
 * checked against its id on the libuv thread pool, the blobs asked for in one turn of the event loop sharing a job
 * (batch.ts). The restore's files in flight then open their chunks on several threads at once.
 *
 * {@link nativeBlobWriter} does the same and then writes the plaintext straight to a restored file at its offset, so
 * a large file's bytes never reach JavaScript: no buffer per chunk, no garbage for the collector to trace, and one
 * read buffer per pool thread instead of fresh pages for every chunk. Given the file opened a second time with
 * O_DIRECT ({@link openDirect}), it writes the whole pages of each chunk through that, past the page cache.
 *
 * Same checks, same order and same errors as `Vault.openBlobAt` (which does the work on the calling thread when
 * the addon is not built): cut short, then authentication, then codec, then id. Nothing but the plaintext of a blob
 * that passed every check is handed back; the bytes of one that did not are freed inside the addon.
 *
 * @module
 */
import { constants } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import { VaultpathError } from '../errors.js';
import { BLOB_OVERHEAD, Codec, aadPrefix, authFailed, objectKeyLabel, unknownCodec, type SealKeys } from '../crypto/envelope.js';
import type { ChunkIdKeys } from '../crypto/chunk-id.js';
import { type BlobLocation, blobCutShort, blobIdMismatch, blobWhere } from '../repo/vault.js';
import { batched } from './batch.js';
import { OPEN_RESULT_SLOTS, OPEN_SPEC_SLOTS, OPEN_TARGET_SLOTS, OpenOutcome, errnoName, nativeFunction } from './addon.js';

/** Blobs opened in one thread-pool job at most. */
const OPEN_BATCH = 16;
/** The longest blob the addon opens (a chunk is at most a few MiB). */
const MAX_BLOB = 1 << 30;

/**
 * Opens blob `id`, which `at` places in the pack whose local copy is open as `fd`; resolves to its plaintext.
 * @throws {VaultpathError} `VP_MALFORMED_OBJECT` (the copy ends early), `VP_AUTH_FAILED`, `VP_UNKNOWN_CODEC`,
 *   `VP_ID_MISMATCH`, `VP_STORE_IO` (the read failed).
 */
export type BlobOpener = (fd: number, at: BlobLocation, id: Uint8Array) => Promise<Buffer>;

/** A file a {@link BlobWriter} writes to: its descriptor, and the same file's O_DIRECT descriptor or -1. */
export interface BlobTarget {
  readonly fd: number;
  readonly direct: number;
}

/**
 * Opens blob `id` as {@link BlobOpener} does and writes its plaintext to the open file `out` at `position`; resolves
 * once it is written whole. Nothing is written for a blob that fails a check.
 * @throws what {@link BlobOpener} throws, or an `Error` whose `code` is the errno name (`ENOSPC`, …) when the write
 *   fails, as Node's own file calls throw.
 */
export type BlobWriter = (fd: number, at: BlobLocation, id: Uint8Array, out: BlobTarget, position: number) => Promise<void>;

type Job = { fd: number; at: BlobLocation; id: Uint8Array };

/** The specs, ids and associated-data prefixes of a batch, as `openBlobs` and `openBlobsInto` take them. */
function describe(blobs: readonly Job[]): [Float64Array, Buffer, Buffer] {
  const specs = new Float64Array(blobs.length * OPEN_SPEC_SLOTS);
  // Only a plaintext stored as is hashes to its id; an encoded one is authenticated, then refused as unknown.
  blobs.forEach((b, i) => specs.set([b.fd, b.at.offset, b.at.length, b.at.codec === Codec.none ? 1 : 0], i * OPEN_SPEC_SLOTS));
  return [specs, Buffer.concat(blobs.map((b) => b.id)), Buffer.concat(blobs.map((b) => aadPrefix(b.at.type, b.at.codec)))];
}

/** An index entry no blob can have fails its blob alone, here, not the batch it would join in the addon. */
function checkPlace(at: BlobLocation, id: Uint8Array): void {
  if (!Number.isSafeInteger(at.offset) || at.offset < 0 || !Number.isSafeInteger(at.length) || at.length < BLOB_OVERHEAD || at.length > MAX_BLOB) {
    throw new VaultpathError('VP_MALFORMED_OBJECT', `${blobWhere(at, id)} has an impossible place in its pack (offset ${at.offset}, length ${at.length}); the index is damaged. Run "vaultpath verify".`);
  }
}

/** The error for a blob the addon refused with `outcome` after reading `got` bytes. */
function refusal(at: BlobLocation, id: Uint8Array, outcome: number, got: number): Error {
  const where = blobWhere(at, id);
  switch (outcome) {
    case OpenOutcome.short:
      return blobCutShort(where, got, at.length);
    case OpenOutcome.auth:
      return authFailed(where);
    case OpenOutcome.unchecked:
      return unknownCodec(where, at.codec);
    case OpenOutcome.id:
      return blobIdMismatch(where);
    case OpenOutcome.write:
      return Object.assign(new Error(`writing ${where} to the restored file failed (${errnoName(got)})`), { code: errnoName(got) });
    default:
      return new VaultpathError('VP_STORE_IO', `Reading ${where} from its downloaded copy failed (${errnoName(outcome)}). Check the recovery folder's disk.`);
  }
}

/** The native blob writer under `keys`, or `null` when the addon is not built here. */
export function nativeBlobWriter(keys: SealKeys & ChunkIdKeys): BlobWriter | null {
  const openBlobsInto = nativeFunction('openBlobsInto');
  if (!openBlobsInto) return null;
  const keyLabel = objectKeyLabel();
  const write = batched(OPEN_BATCH, async (blobs: (Job & { out: BlobTarget; position: number })[]) => {
    const [specs, ids, prefixes] = describe(blobs);
    const targets = new Float64Array(blobs.length * OPEN_TARGET_SLOTS);
    blobs.forEach((b, i) => targets.set([b.out.fd, b.out.direct, b.position], i * OPEN_TARGET_SLOTS));
    const results = await openBlobsInto(specs, ids, prefixes, keys.sealKey, keys.chunkIdKey, keyLabel, targets);
    return blobs.map((_, i) => [results[OPEN_RESULT_SLOTS * i]!, results[OPEN_RESULT_SLOTS * i + 1]!] as const);
  });
  return async (fd, at, id, out, position) => {
    checkPlace(at, id);
    const [outcome, got] = await write({ fd, at, id, out, position });
    if (outcome !== 0) throw refusal(at, id, outcome, got);
  };
}

/**
 * The file open as `fd` opened a second time for direct I/O (O_DIRECT, through /proc/self/fd: the same file, not
 * whatever its name now points to), or undefined where that cannot be done (no O_DIRECT on this platform or file
 * system, no /proc). The caller closes it, after every write through it has settled.
 */
export async function openDirect(fd: number): Promise<FileHandle | undefined> {
  const direct = constants.O_DIRECT as number | undefined;
  if (direct === undefined || process.platform !== 'linux') return undefined;
  return open(`/proc/self/fd/${fd}`, constants.O_WRONLY | direct).catch(() => undefined);
}

/** The native blob opener under `keys`, or `null` when the addon is not built here. */
export function nativeBlobOpener(keys: SealKeys & ChunkIdKeys): BlobOpener | null {
  const openBlobs = nativeFunction('openBlobs');
  if (!openBlobs) return null;
  const keyLabel = objectKeyLabel();
  const open = batched(OPEN_BATCH, (blobs: Job[]) => openBlobs(...describe(blobs), keys.sealKey, keys.chunkIdKey, keyLabel));
  return async (fd, at, id) => {
    checkPlace(at, id);
    const r = await open({ fd, at, id });
    if (r instanceof Uint8Array) return r;
    throw refusal(at, id, r.outcome, r.got);
  };
}
