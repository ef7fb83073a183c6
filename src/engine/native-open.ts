/**
 * The addon's blob opener (native/blob_crypto.c), so the restore's bulk decryption and id checks leave the event
 * loop: a blob is read from an open local copy of its pack, authenticated, decrypted in place and its plaintext
 * checked against its id on the libuv thread pool, the blobs asked for in one turn of the event loop sharing a job
 * (batch.ts). The restore's files in flight then open their chunks on several threads at once.
 *
 * Same checks, same order and same errors as `Vault.openBlobAt` (which does the work on the calling thread when
 * the addon is not built): cut short, then authentication, then codec, then id. Nothing but the plaintext of a blob
 * that passed every check is handed back; the bytes of one that did not are freed inside the addon.
 *
 * @module
 */
import { VaultpathError } from '../errors.js';
import { BLOB_OVERHEAD, authFailed, unknownCodec, type SealKeys } from '../crypto/envelope.js';
import type { ChunkIdKeys } from '../crypto/chunk-id.js';
import { type BlobLocation, blobCutShort, blobIdMismatch, blobWhere } from '../repo/vault.js';
import { errnoName, nativeFunction } from '../native.js';
import { batched } from './batch.js';

/** The addon's `openBlobs` as it is called (see native/blob_crypto.c). @internal */
export type AddonOpenBlobs = (
  specs: Float64Array,
  ids: Uint8Array,
  sealKey: Uint8Array,
  chunkIdKey: Uint8Array,
) => Promise<(Buffer | { outcome: number; got: number })[]>;

/** Blobs opened in one thread-pool job at most. */
const OPEN_BATCH = 16;
/** The longest blob the addon opens (a chunk is at most a few MiB). */
const MAX_BLOB = 1 << 30;

const OPEN_SHORT = -1;
const OPEN_AUTH = -2;
const OPEN_ID = -3;
const OPEN_CODEC = -4;

/**
 * Opens blob `id`, which `at` places in the pack whose local copy is open as `fd`; resolves to its plaintext.
 * @throws {VaultpathError} `VP_MALFORMED_OBJECT` (the copy ends early), `VP_AUTH_FAILED`, `VP_UNKNOWN_CODEC`,
 *   `VP_ID_MISMATCH`, `VP_STORE_IO` (the read failed).
 */
export type BlobOpener = (fd: number, at: BlobLocation, id: Uint8Array) => Promise<Buffer>;

/** The native blob opener under `keys`, or `null` when the addon is not built here. */
export function nativeBlobOpener(keys: SealKeys & ChunkIdKeys): BlobOpener | null {
  const openBlobs = nativeFunction<AddonOpenBlobs>('openBlobs');
  if (!openBlobs) return null;
  const open = batched(OPEN_BATCH, (blobs: { fd: number; at: BlobLocation; id: Uint8Array }[]) => {
    const specs = new Float64Array(blobs.length * 5);
    blobs.forEach((b, i) => specs.set([b.fd, b.at.offset, b.at.length, b.at.type, b.at.codec], i * 5));
    return openBlobs(specs, Buffer.concat(blobs.map((b) => b.id)), keys.sealKey, keys.chunkIdKey);
  });
  return async (fd, at, id) => {
    // An index entry no blob can have fails this blob alone here, not the batch it would join in the addon.
    if (!Number.isSafeInteger(at.offset) || at.offset < 0 || !Number.isSafeInteger(at.length) || at.length < BLOB_OVERHEAD || at.length > MAX_BLOB) {
      throw new VaultpathError('VP_MALFORMED_OBJECT', `${blobWhere(at, id)} has an impossible place in its pack (offset ${at.offset}, length ${at.length}); the index is damaged. Run "vaultpath verify".`);
    }
    const r = await open({ fd, at, id });
    if (r instanceof Uint8Array) return r;
    const where = blobWhere(at, id);
    switch (r.outcome) {
      case OPEN_SHORT:
        throw blobCutShort(where, r.got, at.length);
      case OPEN_AUTH:
        throw authFailed(where);
      case OPEN_CODEC:
        throw unknownCodec(where, at.codec);
      case OPEN_ID:
        throw blobIdMismatch(where);
      default:
        throw new VaultpathError('VP_STORE_IO', `Reading ${where} from its downloaded copy failed (${errnoName(r.outcome)}). Check the recovery folder's disk.`);
    }
  };
}
