/**
 * The vault index kept in one local file, so that a load reads only the index objects written since, instead of
 * every object of the vault: the agent's scratch folder holds it (one file a vault, named by the vault's id).
 *
 * The file is the index as one sorted run of records (blob-index.ts) plus the ids of the index objects it covers,
 * authenticated by HMAC-SHA256 under the vault's local-cache key (keys.ts), so it is trusted only by a holder of
 * the vault's keys and never across vaults. It is a cache, not part of the vault: a file that is missing, short,
 * damaged, written by another version or for another vault is not an error; the load reads the vault instead (and
 * writes a new file).
 *
 * Layout (integers little-endian):
 *
 * | bytes | field                                                               |
 * |-------|---------------------------------------------------------------------|
 * | 8     | magic `VPIDXC01`                                                    |
 * | 4     | key words of a record: 3 (12-byte id prefixes) or 8 (whole ids)    |
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
import { constants } from 'node:fs';
import { type FileHandle, open, rename, unlink } from 'node:fs/promises';
import { endianness } from 'node:os';
import { throwIfAborted } from '../errors.js';
import { BlobIndex, type BlobIndexSnapshot } from './blob-index.js';

const MAGIC = Buffer.from('VPIDXC01', 'latin1');
const HEADER = 32;
const MAC = 32;
/** Bytes read or written in one call: a record area can pass what one Buffer holds. */
const SLICE = 256 * 1024 * 1024;

/** What a cache file holds. */
export interface IndexCache {
  readonly index: BlobIndex;
  /** Ids (hex) of the index objects whose entries the index holds. */
  readonly objects: ReadonlySet<string>;
  /** Ids (hex) of the index objects those objects supersede (never to be read while the cache holds). */
  readonly superseded: ReadonlySet<string>;
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
export async function readIndexCache(path: string, key: Buffer, options: { signal?: AbortSignal } = {}): Promise<IndexCache | undefined> {
  if (endianness() !== 'LE') return undefined;
  let file: FileHandle;
  try {
    file = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch {
    return undefined;
  }
  try {
    return await readOpened(file, key, options);
  } catch (e) {
    if ((e as { code?: string }).code === 'VP_ABORTED') throw e;
    return undefined; // a file that changed or failed under the read is no cache either
  } finally {
    await file.close();
  }
}

async function readOpened(file: FileHandle, key: Buffer, options: { signal?: AbortSignal }): Promise<IndexCache | undefined> {
  const { size } = await file.stat();
  if (size < HEADER + MAC) return undefined;
  const header = Buffer.alloc(HEADER);
  await readFully(file, header, 0);
  const k = header.readUInt32LE(8);
  const packs = header.readUInt32LE(12);
  const objects = header.readUInt32LE(16);
  const superseded = header.readUInt32LE(20);
  const count = header.readUInt32LE(24) + header.readUInt32LE(28) * 2 ** 32;
  if (!header.subarray(0, 8).equals(MAGIC) || (k !== 3 && k !== 8)) return undefined;
  const at = layout(k, packs, objects + superseded, count);
  if (at.size !== size) return undefined;
  const mac = createHmac('sha256', key).update(header);
  const front = Buffer.alloc(at.records - HEADER);
  await readFully(file, front, HEADER);
  mac.update(front);
  const records = new Uint32Array(count * (k + 4));
  const bytes = Buffer.from(records.buffer, records.byteOffset, records.byteLength);
  for (let o = 0; o < bytes.length; o += SLICE) {
    throwIfAborted(options.signal);
    const part = bytes.subarray(o, o + SLICE);
    await readFully(file, part, at.records + o);
    mac.update(part);
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
  const codecs = new Uint8Array(front.buffer, front.byteOffset + 32 * (packs + objects + superseded), count);
  return {
    index: BlobIndex.fromSnapshot({ fullIds: k === 8, count, records, codecs, packIds }),
    objects: ids(32 * packs, objects),
    superseded: ids(32 * (packs + objects), superseded),
  };
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
  const listed = [...lists.objects];
  const superseded = [...lists.superseded];
  const k = index.fullIds ? 8 : 3;
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
    await file.write(front, 0, front.length, 0);
    const bytes = Buffer.from(index.records.buffer, index.records.byteOffset, index.records.byteLength);
    for (let p = 0; p < bytes.length; p += SLICE) {
      throwIfAborted(options.signal);
      const part = bytes.subarray(p, p + SLICE);
      mac.update(part);
      await file.write(part, 0, part.length, at.records + p);
    }
    await file.write(mac.digest(), 0, MAC, at.size - MAC);
    await file.close();
    await rename(temporary, path);
  } catch (e) {
    await file.close().catch(() => undefined);
    await unlink(temporary).catch(() => undefined);
    throw e;
  }
}

async function readFully(file: FileHandle, into: Buffer, position: number): Promise<void> {
  for (let done = 0; done < into.length; ) {
    const { bytesRead } = await file.read(into, done, into.length - done, position + done);
    if (bytesRead === 0) throw new Error('the file ended early');
    done += bytesRead;
  }
}
