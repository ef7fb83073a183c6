/**
 * The file writer of a restore: one file of the snapshot, from its chunks to its name in the target.
 *
 * Each chunk is located in the index, its pack taken from the recovery cache (pack-cache.ts), opened under its id
 * (authenticated, re-hashed; by the addon on the thread pool where it is built) and written to a file created
 * exclusively under a temporary name in the folder's descriptor. Once the file's length matches the snapshot, it is
 * given its mode and times through its descriptor, checked to still be the file at that name, and renamed over
 * whatever is there (a rename replaces a link, it never follows it). Small files (at most {@link SMALL_FILE}, no
 * holes) are written whole from memory: a batch per thread-pool job through the addon's whole-file writer, or with
 * synchronous calls. Sparse holes are left as holes.
 *
 * Each chunk is one of the reads the plan counted for its pack: a file that fails tells the recovery folder which of
 * its chunks it will not read (skipReads), so their packs are not kept for them.
 *
 * Contract: a file that cannot be restored fails alone (recorded in the run's errors, its temporary file removed
 * unless it was swapped, then what is there is not ours); a full target stops the run (`fatal`); `VP_ABORTED` is
 * thrown and nothing is renamed into place once the run is aborted.
 *
 * @module
 */
import { close as closeCb, closeSync, constants, fchmodSync, fstatSync, ftruncate as ftruncateCb, write as writeCb, writeSync } from 'node:fs';
import { promisify } from 'node:util';
import { VaultpathError, throwIfAborted } from '../errors.js';
import { ObjectType } from '../crypto/object-type.js';
import { BLOB_OVERHEAD } from '../crypto/envelope.js';
import type { BlobLocation } from '../repo/vault.js';
import type { TreeNode } from '../repo/tree.js';
import type { Kernels } from '../native/ports.js';
import { closeQuietly } from './fs-at.js';
import {
  CHUNKS_IN_FLIGHT, type Dir, MOVED, type RestoreContext, RestoreFileError, SWAPPED, done, fileFailed, isFull, keptMode, removeTemp,
  renameIntoPlace, stopFull, tempName,
} from './context.js';

const writeAt = promisify(writeCb);
const ftruncate = promisify(ftruncateCb);
const closeFd = promisify(closeCb);

/** Where chunk `idHex` is stored, or a {@link RestoreFileError} when the index does not have it as data. */
function locate(ctx: RestoreContext, idHex: string): [BlobLocation, Buffer] {
  const id = Buffer.from(idHex, 'hex');
  const location = ctx.index.get(id);
  if (!location || location.type !== ObjectType.data) throw new RestoreFileError(`chunk ${idHex} is not in the vault's index`);
  return [location, id];
}

/** The plaintext of data chunk `id`, stored at `location`: read from its pack, opened and checked. */
async function readChunk(ctx: RestoreContext, [location, id]: [BlobLocation, Buffer]): Promise<Buffer> {
  if (ctx.openBlob) return ctx.cache.withPack(location, (fd) => ctx.openBlob!(fd, location, id));
  const sealed = await ctx.cache.read(location);
  try {
    return ctx.vault.openBlobAt(location, id, sealed);
  } finally {
    ctx.cache.recycle(sealed); // opening decrypts into a buffer of its own: the sealed bytes are no longer needed
  }
}

/**
 * Tells the recovery folder that chunks `from` on of `content` will not be read (their file failed or was not
 * restored): their packs need not be kept for them. Chunks the index does not have as data were not planned.
 */
export function skipReads(ctx: RestoreContext, content: readonly string[], from: number): void {
  for (let i = from; i < content.length; i++) {
    const at = ctx.index.get(Buffer.from(content[i]!, 'hex'));
    if (at && at.type === ObjectType.data) ctx.cache.skip(at);
  }
}

/**
 * Files up to this size are written whole from memory: by the addon's writer on the thread pool, or without it
 * with synchronous calls (the promise API costs more than the writes).
 */
export const SMALL_FILE = 1024 * 1024;

/** Fails with a {@link RestoreFileError} when a folder is at `name` in `dir` (a file never replaces a folder). */
function refuseFolder(ctx: RestoreContext, dir: Dir, name: Buffer): void {
  let mode: number;
  try {
    mode = ctx.fs.stat(dir.fd, name).mode;
  } catch {
    return;
  }
  if ((mode & constants.S_IFMT) === constants.S_IFDIR) throw new RestoreFileError('a folder is in the way of a file');
}

/**
 * Fails with a {@link RestoreFileError} (VP_UNSAFE_PATH) unless `temp` in `dir` is still the file open as `fd`: a
 * user who swapped it for a link or another file gets nothing renamed into place.
 */
function checkStillOurs(ctx: RestoreContext, dir: Dir, temp: Buffer, fd: number): void {
  const mine = fstatSync(fd, { bigint: true });
  let there;
  try {
    there = ctx.fs.stat(dir.fd, temp);
  } catch {
    there = undefined;
  }
  if (!there || there.dev !== mine.dev || there.ino !== mine.ino) {
    throw new RestoreFileError(SWAPPED, true);
  }
}

/** Restores a file of at most {@link SMALL_FILE} bytes without holes, in one go once all its chunks are verified. */
async function restoreSmallFile(ctx: RestoreContext, node: TreeNode, dir: Dir, name: Buffer, rel: string): Promise<void> {
  const data: Buffer[] = [];
  const content = node.content!;
  let i = 0;
  try {
    for (; i < content.length; i++) data.push(await readChunk(ctx, locate(ctx, content[i]!)));
  } catch (e) {
    skipReads(ctx, content, i + 1); // the chunk that failed was read, or not in the index
    if ((e as VaultpathError).code === 'VP_ABORTED') throw e;
    ctx.errors.push({ path: rel, reason: e instanceof RestoreFileError || e instanceof VaultpathError ? e.message : String(e) });
    return;
  }
  const length = data.reduce((n, b) => n + b.length, 0);
  if (length !== node.size) {
    ctx.errors.push({ path: rel, reason: `the snapshot's chunks hold ${length} bytes, the file needs ${node.size}` });
    return;
  }
  if (ctx.fatal) return;
  const temp = tempName(ctx);
  const mode = keptMode(ctx, node, rel);
  if (ctx.writer) {
    // One thread-pool job per batch of files: the event loop never waits on the journal, and files overlap.
    const code = await ctx.writer(dir.fd, temp, name, data, mode, BigInt(node.mtimeNs));
    if (code === undefined) done(ctx, length);
    else if (isFull(code)) stopFull(ctx, rel, code);
    else ctx.errors.push({ path: rel, reason: code === 'EISDIR' ? 'a folder is in the way of a file' : code === 'VP_UNSAFE_PATH' ? SWAPPED : code === 'ENOENT' ? MOVED : code });
    return;
  }
  let fd: number | undefined;
  try {
    refuseFolder(ctx, dir, name);
    fd = ctx.fs.create(dir.fd, temp, 0o600);
    let at = 0;
    for (const b of data) for (let o = 0; o < b.length; ) {
      const n = writeSync(fd, b, o, b.length - o, at);
      o += n;
      at += n;
    }
    fchmodSync(fd, mode);
    ctx.fs.setTimes(fd, BigInt(node.mtimeNs));
    checkStillOurs(ctx, dir, temp, fd);
    closeSync(fd);
    fd = undefined;
    renameIntoPlace(ctx, dir, temp, name);
    done(ctx, length);
  } catch (e) {
    if (fd !== undefined) closeQuietly(fd);
    removeTemp(ctx, dir, temp, e);
    fileFailed(ctx, rel, e);
  }
}

/**
 * Restores file `node` as `name` in folder `dir` (open): whole from memory when small, else chunk by chunk (through
 * the addon's blob writer where it is built), holes left as holes. Failures are recorded in the run (see the header).
 *
 * @throws {VaultpathError} `VP_ABORTED` only.
 */
export async function restoreFile(ctx: RestoreContext, node: TreeNode, dir: Dir, name: Buffer, rel: string): Promise<void> {
  if (node.size! <= SMALL_FILE && !node.holes) return restoreSmallFile(ctx, node, dir, name, rel);
  const temp = tempName(ctx);
  let fd: number | undefined;
  /** The file opened again for direct I/O: the addon writes the chunks' whole pages through it. */
  let direct: Awaited<ReturnType<Kernels['openDirect']>>;
  const inFlight: Promise<void>[] = [];
  /** Chunks handed to the recovery folder so far: on failure, the rest are skipped there. */
  let requested = 0;
  try {
    refuseFolder(ctx, dir, name);
    fd = ctx.fs.create(dir.fd, temp, 0o600);
    // Through /proc/self/fd/<fd>: the very file created above, whatever its name points to by now.
    if (ctx.writeBlob) direct = await ctx.openDirect(fd);
    const file = fd;
    const target = { fd: file, direct: direct?.fd ?? -1 };
    const size = node.size!;
    // Data regions are [0, size) minus the holes, in order; the chunks fill them one after another.
    const regions: [number, number][] = [];
    let pos = 0;
    for (const [offset, length] of node.holes ?? []) {
      if (offset > pos) regions.push([pos, offset]);
      pos = offset + length;
    }
    if (pos < size) regions.push([pos, size]);
    let r = 0;
    let at = regions[0]?.[0] ?? 0;
    let written = 0;
    /** Counts `n` bytes written at `at`, moving to the next data region when this one is full. */
    const advance = (n: number, region: [number, number]): void => {
      written += n;
      at += n;
      if (at === region[1]) {
        r++;
        at = regions[r]?.[0] ?? at;
      }
    };
    for (const idHex of node.content!) {
      throwIfAborted(ctx.signal);
      if (ctx.fatal) throw ctx.fatal;
      requested++; // counted before the read: a chunk that fails here was read, or was not in the index
      const chunk = locate(ctx, idHex);
      // With the addon, a chunk that falls inside one data region goes from its pack to the file on the thread
      // pool, a few at once; its plaintext length is the stored length less the envelope (checked when opened).
      if (ctx.writeBlob) {
        const [location, id] = chunk;
        const length = location.length - BLOB_OVERHEAD;
        const region = regions[r];
        if (location.codec === 0 && length > 0 && region && at + length <= region[1]) {
          const position = at;
          const p = ctx.cache.withPack(location, (pack) => ctx.writeBlob!(pack, location, id, target, position));
          p.catch(() => undefined); // awaited below, in order; this only keeps an early failure from counting as unhandled
          inFlight.push(p);
          if (inFlight.length >= CHUNKS_IN_FLIGHT) await inFlight.shift();
          advance(length, region);
          continue;
        }
      }
      let data = await readChunk(ctx, chunk);
      while (data.length > 0) {
        const region = regions[r];
        if (!region) throw new RestoreFileError('the snapshot lists more data than the file size allows');
        const n = Math.min(data.length, region[1] - at);
        await writeFully(file, data.subarray(0, n), at);
        data = data.subarray(n);
        advance(n, region);
      }
    }
    while (inFlight.length > 0) await inFlight.shift();
    throwIfAborted(ctx.signal); // nothing is renamed into place once the restore is aborted
    const expected = regions.reduce((s, [a, b]) => s + (b - a), 0);
    if (written !== expected) throw new RestoreFileError(`the snapshot's chunks hold ${written} bytes, the file needs ${expected}`);
    await ftruncate(file, size); // trailing holes stay holes
    await direct?.close();
    direct = undefined;
    fchmodSync(file, keptMode(ctx, node, rel));
    ctx.fs.setTimes(file, BigInt(node.mtimeNs));
    checkStillOurs(ctx, dir, temp, file);
    fd = undefined;
    await closeFd(file);
    renameIntoPlace(ctx, dir, temp, name);
    done(ctx, size);
  } catch (e) {
    skipReads(ctx, node.content!, requested);
    // The addon may still be writing to the file's descriptor: close it only once nothing can, so a later file
    // that gets the same number never receives these bytes.
    await Promise.allSettled(inFlight);
    await direct?.close().catch(() => undefined);
    if (fd !== undefined) closeQuietly(fd);
    removeTemp(ctx, dir, temp, e);
    if ((e as VaultpathError).code === 'VP_ABORTED') throw e;
    if (e === ctx.fatal) return;
    fileFailed(ctx, rel, e);
  }
}

async function writeFully(fd: number, data: Uint8Array, position: number): Promise<void> {
  for (let o = 0; o < data.length; ) {
    const { bytesWritten } = await writeAt(fd, data, o, data.length - o, position + o);
    o += bytesWritten;
  }
}
