/**
 * The vault index kept in one local file, so that a load reads only the index objects written since, instead of
 * every object of the vault: the agent's scratch folder holds it (one file a vault, named by the vault's id).
 *
 * The file is the index as one sorted run of whole-id records (blob-index.ts) plus the ids of the index objects it
 * covers, authenticated by HMAC-SHA256 under the vault's local-cache key (keys.ts), so it is trusted only by a
 * holder of the vault's keys and never across vaults.
 *
 * Read with `prefixes`, only 12-byte id prefixes stay in memory (under 32 bytes a blob with the location) and the
 * file stays open: the rest of an id is read back from it (one `pread` of 32 bytes) to confirm a match, since the
 * prefix run and the file's run hold the same records in the same order. What a reader holds then is a copy of the
 * file as it was when read (a newer cache replaces the file by a rename and never writes into it). It is a cache, not part of the vault: a file that is missing, short,
 * damaged, written by another version or for another vault is not an error; the load reads the vault instead (and
 * writes a new file).
 *
 * Layout (integers little-endian):
 *
 * | bytes | field                                                               |
 * |-------|---------------------------------------------------------------------|
 * | 8     | magic `VPIDXC01`                                                    |
 * | 4     | key words of a record: 8 (whole ids)                                |
 * | 4     | pack count P                                                        |
 * | 4     | index object count O                                                |
 * | 4     | superseded object count S                                           |
 * | 8     | record count N                                                      |
 * | 32·P  | pack ids, in ordinal order                                          |
 * | 32·O  | ids of the index objects the records list                           |
 * | 32·S  | ids of index objects those objects supersede                        |
 * | N     | codecs                                                              |
 * | 0–3   | zeros, to a multiple of 4                                           |
 * | 4·(k+4)·N | records, sorted by key (blob-index.ts)                          |
 * | 32    | HMAC-SHA256 of everything before                                    |
 *
 * Contracts: a write goes to a temporary file that is renamed over the old one, so a reader sees the old file or
 * the new one; files are created 0600 and never opened through a symbolic link. A read checks every count against
 * the file's size before it allocates, and authenticates the whole file before anything in it is used.
 *
 * @module
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { constants, readSync } from 'node:fs';
import { type FileHandle, open, rename, unlink } from 'node:fs/promises';
import { endianness } from 'node:os';
import { throwIfAborted } from '../errors.js';
import { BlobIndex, type BlobIndexSnapshot } from './blob-index.js';

const MAGIC = Buffer.from('VPIDXC01', 'latin1');
const HEADER = 32;
const MAC = 32;
/** Bytes read or written in one call: a record area can pass what one Buffer holds. */
const SLICE = 256 * 1024 * 1024;
/** Key words of the file's records (whole ids), and words of a whole and of a prefix record (blob-index.ts). */
const WHOLE = 8;
const WHOLE_STRIDE = 12;
const PREFIX_STRIDE = 7;

/** What a cache file holds. */
export interface IndexCache {
  /** One sorted run: whole ids, or 12-byte prefixes when read with `prefixes`. */
  readonly index: BlobIndex;
  /** Ids (hex) of the index objects whose entries the index holds. */
  readonly objects: ReadonlySet<string>;
  /** Ids (hex) of the index objects those objects supersede (never to be read while the cache holds). */
  readonly superseded: ReadonlySet<string>;
  /**
   * With prefixes: whether record `p` of the index's run has the whole id `id` (read back from the file). A read
   * that fails answers false: the blob is then taken for new and stored again, never taken for stored.
   */
  readonly confirm?: (p: number, id: Uint8Array) => boolean;
  /** Lets the file go (with prefixes, it is held open for {@link confirm}). */
  close(): Promise<void>;
}

/** The cache file of the vault whose id (hex) is `vaultId`, in `dir`. */
export function indexCacheName(vaultId: string): string {
  return `index-${vaultId}.cache`;
}

const layout = (k: number, packs: number, objects: number, count: number): { records: number; size: number } => {
  const records = HEADER + 32 * packs + 32 * objects + Math.ceil(count / 4) * 4; // objects: listed and superseded
  return { records, size: records + 4 * (k + 4) * count + MAC };
};

/**
 * Reads the cache file at `path`, or `undefined` when there is none that this vault's `key` authenticates (absent,
 * short, damaged, another vault's or another layout's), or on a big-endian machine (records are kept in memory
 * order).
 */
export async function readIndexCache(
  path: string,
  key: Buffer,
  options: { signal?: AbortSignal; prefixes?: boolean } = {},
): Promise<IndexCache | undefined> {
  if (endianness() !== 'LE') return undefined;
  let file: FileHandle;
  try {
    file = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch {
    return undefined;
  }
  let read: IndexCache | undefined;
  try {
    read = await readOpened(file, key, options);
    return read;
  } catch (e) {
    if ((e as { code?: string }).code === 'VP_ABORTED') throw e;
    return undefined; // a file that changed or failed under the read is no cache either
  } finally {
    if (!read?.confirm) await file.close();
  }
}

async function readOpened(file: FileHandle, key: Buffer, options: { signal?: AbortSignal; prefixes?: boolean }): Promise<IndexCache | undefined> {
  const { size } = await file.stat();
  if (size < HEADER + MAC) return undefined;
  const header = Buffer.alloc(HEADER);
  await readFully(file, header, 0);
  const packs = header.readUInt32LE(12);
  const objects = header.readUInt32LE(16);
  const superseded = header.readUInt32LE(20);
  const count = header.readUInt32LE(24) + header.readUInt32LE(28) * 2 ** 32;
  if (!header.subarray(0, 8).equals(MAGIC) || header.readUInt32LE(8) !== WHOLE) return undefined;
  const at = layout(WHOLE, packs, objects + superseded, count);
  if (at.size !== size) return undefined;
  const mac = createHmac('sha256', key).update(header);
  const front = Buffer.alloc(at.records - HEADER);
  await readFully(file, front, HEADER);
  mac.update(front);
  // Whole records straight into the run; or a slice at a time, keeping each record's prefix and location.
  const prefixes = options.prefixes ?? false;
  const records = new Uint32Array(count * (prefixes ? PREFIX_STRIDE : WHOLE_STRIDE));
  const slice = prefixes ? new Uint32Array(Math.min(count, Math.floor(SLICE / (4 * WHOLE_STRIDE))) * WHOLE_STRIDE) : undefined;
  const total = 4 * WHOLE_STRIDE * count;
  const step = slice ? slice.byteLength : SLICE;
  for (let o = 0; o < total; o += step) {
    throwIfAborted(options.signal);
    const n = Math.min(step, total - o);
    const part = slice ? Buffer.from(slice.buffer, 0, n) : Buffer.from(records.buffer, o, n);
    await readFully(file, part, at.records + o);
    mac.update(part);
    if (slice) keepPrefixes(slice, n / (4 * WHOLE_STRIDE), records, o / (4 * WHOLE_STRIDE));
  }
  const tag = Buffer.alloc(MAC);
  await readFully(file, tag, size - MAC);
  if (!timingSafeEqual(mac.digest(), tag)) return undefined;
  const packIds = front.subarray(0, 32 * packs);
  const ids = (from: number, n: number): Set<string> => {
    const out = new Set<string>();
    for (let i = 0, o = from; i < n; i++, o += 32) out.add(front.toString('hex', o, o + 32));
    return out;
  };
  // A copy, so the rest of `front` (pack ids, interned again by the index) is let go.
  const codecs = new Uint8Array(front.subarray(32 * (packs + objects + superseded), 32 * (packs + objects + superseded) + count));
  const whole = Buffer.alloc(32);
  return {
    index: BlobIndex.fromSnapshot({ fullIds: !prefixes, count, records, codecs, packIds }),
    objects: ids(32 * packs, objects),
    superseded: ids(32 * (packs + objects), superseded),
    confirm: prefixes
      ? (p, id) => {
          try {
            return readSync(file.fd, whole, 0, 32, at.records + 4 * WHOLE_STRIDE * p) === 32 && bigEndianWordsEqual(whole, id);
          } catch {
            return false;
          }
        }
      : undefined,
    close: () => file.close(),
  };
}

/** Copies the key's first 3 words and the 4 location words of `n` whole records into `out` from record `first`. */
function keepPrefixes(whole: Uint32Array, n: number, out: Uint32Array, first: number): void {
  for (let r = 0, i = 0, o = first * PREFIX_STRIDE; r < n; r++, i += WHOLE_STRIDE, o += PREFIX_STRIDE) {
    out[o] = whole[i]!;
    out[o + 1] = whole[i + 1]!;
    out[o + 2] = whole[i + 2]!;
    out[o + 3] = whole[i + 8]!;
    out[o + 4] = whole[i + 9]!;
    out[o + 5] = whole[i + 10]!;
    out[o + 6] = whole[i + 11]!;
  }
}

/** Whether the 8 key words at the start of `record` (as a little-endian machine holds them) spell `id`. */
function bigEndianWordsEqual(record: Buffer, id: Uint8Array): boolean {
  for (let j = 0; j < 32; j += 4) {
    if (record[j] !== id[j + 3] || record[j + 1] !== id[j + 2] || record[j + 2] !== id[j + 1] || record[j + 3] !== id[j]) return false;
  }
  return true;
}

/**
 * Writes `index` (see {@link BlobIndex.snapshot}), the ids (hex) of the index objects it lists and of those they
 * supersede to `path`.
 */
export async function writeIndexCache(
  path: string,
  key: Buffer,
  index: BlobIndexSnapshot,
  lists: { readonly objects: Iterable<string>; readonly superseded: Iterable<string> },
  options: { signal?: AbortSignal } = {},
): Promise<void> {
  if (endianness() !== 'LE') return;
  if (!index.fullIds) throw new TypeError('the index cache holds whole ids');
  const listed = [...lists.objects];
  const superseded = [...lists.superseded];
  const k = WHOLE;
  const packs = index.packIds.length / 32;
  const at = layout(k, packs, listed.length + superseded.length, index.count);
  const front = Buffer.alloc(at.records);
  MAGIC.copy(front, 0);
  front.writeUInt32LE(k, 8);
  front.writeUInt32LE(packs, 12);
  front.writeUInt32LE(listed.length, 16);
  front.writeUInt32LE(superseded.length, 20);
  front.writeUInt32LE(index.count % 2 ** 32, 24);
  front.writeUInt32LE(Math.floor(index.count / 2 ** 32), 28);
  index.packIds.copy(front, HEADER);
  let o = HEADER + index.packIds.length;
  for (const id of [...listed, ...superseded]) o += front.write(id, o, 32, 'hex');
  front.set(index.codecs, o);
  const temporary = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  const file = await open(temporary, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  try {
    const mac = createHmac('sha256', key).update(front);
    await writeFully(file, front, 0);
    const bytes = Buffer.from(index.records.buffer, index.records.byteOffset, index.records.byteLength);
    for (let p = 0; p < bytes.length; p += SLICE) {
      throwIfAborted(options.signal);
      const part = bytes.subarray(p, p + SLICE);
      mac.update(part);
      await writeFully(file, part, at.records + p);
    }
    await writeFully(file, mac.digest(), at.size - MAC);
    await file.close();
    await rename(temporary, path);
  } catch (e) {
    await file.close().catch(() => undefined);
    await unlink(temporary).catch(() => undefined);
    throw e;
  }
}

async function writeFully(file: FileHandle, from: Buffer, position: number): Promise<void> {
  for (let done = 0; done < from.length; ) {
    const { bytesWritten } = await file.write(from, done, from.length - done, position + done);
    done += bytesWritten;
  }
}

async function readFully(file: FileHandle, into: Buffer, position: number): Promise<void> {
  for (let done = 0; done < into.length; ) {
    const { bytesRead } = await file.read(into, done, into.length - done, position + done);
    if (bytesRead === 0) throw new Error('the file ended early');
    done += bytesRead;
  }
}
