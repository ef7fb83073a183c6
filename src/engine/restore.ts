/**
 * `restore()`: a snapshot (or part of it) back to a target folder, verified.
 *
 *   snapshot → trees → index → packs downloaded into the recovery folder → blobs opened (authenticated, id checked)
 *   → written under a temporary name → renamed into place once complete
 *
 * Safety: a node whose name is empty, `.`, `..`, or holds `/`, `\` or NUL is refused (reported, nothing created);
 * every folder on the way is created by the restore or checked to be a real folder (never a symbolic link); files are
 * created exclusively with O_NOFOLLOW under a fresh temporary name and renamed over whatever was there (a rename
 * replaces a link, it never follows it). Nothing is written outside the target.
 *
 * A file whose data cannot be read (a missing or damaged pack) fails alone: it is named in the result's errors, its
 * temporary file is removed, and the rest is restored. Content is written as it is verified: each chunk is opened
 * under its id and re-hashed (by the addon on the thread pool where it is built, see native-open.ts), and the
 * file's length must match the snapshot before it is renamed into place.
 * Sparse holes are left as holes. Folder modes and times are set after their contents.
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, constants, lstatSync, openSync, readSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { type FileHandle, lstat, mkdir, open, rename, rm, symlink, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import picomatch from 'picomatch';
import { VaultpathError, throwIfAborted } from '../errors.js';
import { toHex } from '../bytes.js';
import { ObjectType } from '../crypto/object-type.js';
import { BLOB_OVERHEAD } from '../crypto/envelope.js';
import type { BlobLocation, Vault, VaultIndex } from '../repo/vault.js';
import { Folder, objectName } from '../repo/layout.js';
import { type Tree, type TreeNode, checkNodeName, nodeDisplayName, nodeNameBytes } from '../repo/tree.js';
import { type Clock, systemClock } from '../throttle/clock.js';
import { downloadTo } from '../transfer/store.js';
import { setTimesNs } from '../scan/probe.js';
import { Limiter } from './limit.js';
import { nativeWriter } from './native-writer.js';
import { type BlobOpener, type BlobWriter, nativeBlobOpener, nativeBlobWriter, openDirect } from './native-open.js';

export interface RestoreOptions {
  /** Globs (relative to the snapshot's root, e.g. `data/photos/**`) of files to restore. @default everything */
  readonly include?: readonly string[];
  /** Where packs are downloaded; a subfolder is made for this run and removed at the end. @default `<tmpdir>/vaultpath/recovery` */
  readonly recoveryFolder?: string;
  /**
   * The most bytes of packs the recovery folder keeps once they are not being read. Packs that files in flight are
   * reading stay until those files are done, so it can briefly hold more: at most one pack per file in flight (40).
   * @default 256 MiB
   */
  readonly recoveryBytes?: number;
  readonly clock?: Clock;
  readonly signal?: AbortSignal;
  /** Progress, called often; MUST NOT block. */
  readonly onProgress?: (p: { files: number; bytes: number }) => void;
}

export interface RestoreError {
  /** The path (relative to the target) that failed. */
  readonly path: string;
  readonly reason: string;
}

export interface RestoreResult {
  readonly snapshot: string;
  readonly files: number;
  readonly dirs: number;
  readonly bytes: number;
  readonly errors: readonly RestoreError[];
  readonly durationMs: number;
}

/**
 * Restores snapshot `ref` (`latest`, an id, or an id prefix) into `target`.
 *
 * @throws {VaultpathError} `VP_NOT_FOUND` (no such snapshot), `VP_TARGET` (the target is not a folder), store
 *   errors while reading the snapshot's trees, `VP_ABORTED`. Failures of single files are returned in `errors`.
 * @example
 * ```ts
 * const r = await restore(vault, 'latest', '/tmp/restored', { include: ['home/ann/**'] });
 * if (r.errors.length > 0) process.exitCode = 1;
 * ```
 */
export async function restore(vault: Vault, ref: string, target: string, options: RestoreOptions = {}): Promise<RestoreResult> {
  const clock = options.clock ?? systemClock;
  const started = clock.now();
  const { signal } = options;
  const snapshotId = await vault.resolveSnapshot(ref, { signal });
  const snapshot = await vault.readSnapshot(snapshotId, { signal });
  const index = await vault.loadIndex({ signal });
  const targetDir = resolve(target);
  await mkdir(targetDir, { recursive: true });
  const st = await lstat(targetDir);
  if (!st.isDirectory()) throw new VaultpathError('VP_TARGET', `The restore target ${targetDir} is not a folder.`);

  const cache = await PackCache.open(options.recoveryFolder ?? join(tmpdir(), 'vaultpath', 'recovery'), options.recoveryBytes ?? 256 * 1024 * 1024, vault, signal);
  const include = options.include && options.include.length > 0 ? picomatch([...options.include], { dot: true }) : undefined;
  const ctx: RestoreContext = {
    vault, index, cache, include, signal, files: 0, dirs: 0, bytes: 0, errors: [], progress: options.onProgress,
    tempPrefix: randomBytes(6).toString('hex'), temps: 0,
    limiter: new Limiter(FILES_IN_FLIGHT), smallFiles: new Limiter(SMALL_FILES_IN_FLIGHT), openBlob: nativeBlobOpener(vault.keys), writeBlob: nativeBlobWriter(vault.keys), pending: new Set(), folders: [],
  };
  try {
    await restoreTree(ctx, snapshot.tree, targetDir, '', () => Promise.resolve(true));
    await Promise.all(ctx.pending);
    // Folders last, children before parents: their times and modes are set once nothing more is written inside.
    for (const f of ctx.folders) {
      if (!f.made()) continue;
      ctx.dirs++;
      await setMeta(f.path, f.node).catch((e: NodeJS.ErrnoException) => ctx.errors.push({ path: f.rel, reason: `could not set mode and times (${e.code})` }));
    }
  } finally {
    await Promise.allSettled(ctx.pending);
    await cache.close();
  }
  return { snapshot: snapshotId, files: ctx.files, dirs: ctx.dirs, bytes: ctx.bytes, errors: ctx.errors, durationMs: clock.now() - started };
}

interface RestoreContext {
  readonly vault: Vault;
  readonly index: VaultIndex;
  readonly cache: PackCache;
  readonly include: ((path: string) => boolean) | undefined;
  readonly signal: AbortSignal | undefined;
  files: number;
  dirs: number;
  bytes: number;
  readonly errors: RestoreError[];
  readonly progress: ((p: { files: number; bytes: number }) => void) | undefined;
  /** Temporary names: `.vaultpath-restore-<tempPrefix>-<count>`, see {@link tempBeside}. */
  readonly tempPrefix: string;
  temps: number;
  readonly limiter: Limiter;
  /** The limit on small files restored by the addon. */
  readonly smallFiles: Limiter;
  /** The addon's blob opener (read, opened and checked on the thread pool), or `null` to do it here. */
  readonly openBlob: BlobOpener | null;
  /** The addon's blob writer (opened, checked and written to the file on the thread pool), or `null`. */
  readonly writeBlob: BlobWriter | null;
  /** File restores under way. */
  readonly pending: Set<Promise<void>>;
  /** Folders in post-order (children first), for their metadata at the end. */
  readonly folders: { node: TreeNode; path: string; rel: string; made: () => boolean }[];
}

/** Files restored at once: their opens, writes and renames overlap on the thread pool. */
const FILES_IN_FLIGHT = 8;
/** Small files restored at once by the addon (each at most {@link SMALL_FILE} bytes): a few batches' worth. */
const SMALL_FILES_IN_FLIGHT = 32;
/** Chunks of one large file being opened and written by the addon at once. */
const CHUNKS_IN_FLIGHT = 4;
/** Read buffers kept for reuse: one per file in flight. */
const SPARE_BUFFERS = FILES_IN_FLIGHT;
/** The smallest read buffer made. */
const MIN_BUFFER = 64 * 1024;

/** Starts `task` under `limiter`, holding the walk back while too many are queued. */
async function launch(ctx: RestoreContext, limiter: Limiter, task: () => Promise<void>): Promise<void> {
  while (ctx.pending.size >= SMALL_FILES_IN_FLIGHT * 2) await Promise.race(ctx.pending);
  const p = limiter.run(task);
  ctx.pending.add(p);
  void p.finally(() => ctx.pending.delete(p)).catch(() => undefined);
}

/**
 * Restores the nodes of tree `treeId` into `dir` (relative path `rel`). `ensureDir` creates `dir` on first need
 * (so a filtered restore creates only the folders it fills) and says whether it exists as a real folder.
 */
async function restoreTree(ctx: RestoreContext, treeId: string, dir: string, rel: string, ensureDir: () => Promise<boolean>): Promise<void> {
  for (let id: string | undefined = treeId; id; ) {
    throwIfAborted(ctx.signal);
    let tree: Tree;
    try {
      tree = await ctx.vault.readTree(ctx.index, id, { signal: ctx.signal });
    } catch (e) {
      if ((e as VaultpathError).code === 'VP_ABORTED') throw e;
      // A damaged or missing tree fails the folder it lists (and what is below it), not the whole restore.
      ctx.errors.push({ path: rel === '' ? '/' : rel, reason: `the folder's listing cannot be read: ${(e as Error).message}` });
      return;
    }
    for (const node of tree.nodes) {
      const name = nodeDisplayName(node);
      const nodeRel = rel === '' ? name : `${rel}/${name}`;
      const unsafe = checkNodeName(nodeNameBytes(node));
      if (unsafe) {
        ctx.errors.push({ path: `${rel === '' ? '' : `${rel}/`}${JSON.stringify(name)}`, reason: `refused: ${unsafe} could lead outside the target` });
        continue;
      }
      const path = join(dir, name);
      if (node.type === 'dir') {
        let made = false;
        let making: Promise<boolean> | undefined;
        // Concurrent files in one new folder share one attempt to make it.
        const ensure = (): Promise<boolean> =>
          (making ??= (async () => {
            if (!(await ensureDir())) return false;
            made = await makeFolder(ctx, path, nodeRel);
            return made;
          })());
        if (!ctx.include) await ensure();
        await restoreTree(ctx, node.subtree!, path, nodeRel, ensure);
        ctx.folders.push({ node, path, rel: nodeRel, made: () => made });
      } else if (node.type === 'file' || node.type === 'symlink') {
        if (ctx.include && !ctx.include(nodeRel)) continue;
        // A small file restored by the addon holds at most 1 MiB: many run at once, their blobs opened and their
        // files written a batch per thread-pool job.
        const small = node.type === 'file' && node.size! <= SMALL_FILE && !node.holes && ctx.openBlob !== null && nativeWriter() !== null;
        await launch(ctx, small ? ctx.smallFiles : ctx.limiter, async () => {
          if (!(await ensureDir())) return;
          if (node.type === 'file') await restoreFile(ctx, node, path, nodeRel);
          else await restoreLink(ctx, node, path, nodeRel);
        });
      }
    }
    id = tree.next;
  }
}

/** Makes folder `path`, or accepts one that exists as a real folder; refuses a link or a file in the way. */
async function makeFolder(ctx: RestoreContext, path: string, rel: string): Promise<boolean> {
  try {
    await mkdir(path);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') {
      ctx.errors.push({ path: rel, reason: `could not create the folder (${(e as NodeJS.ErrnoException).code})` });
      return false;
    }
  }
  const st = await lstat(path);
  if (st.isDirectory()) return true;
  ctx.errors.push({ path: rel, reason: st.isSymbolicLink() ? 'a symbolic link is in the way; it is not followed' : 'a file is in the way of a folder' });
  return false;
}

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
 * Files up to this size are written whole from memory: by the addon's writer on the thread pool, or without it
 * with synchronous calls (the promise API costs more than the writes).
 */
const SMALL_FILE = 1024 * 1024;

/** Restores a file of at most {@link SMALL_FILE} bytes without holes, in one go once all its chunks are verified. */
async function restoreSmallFile(ctx: RestoreContext, node: TreeNode, path: string, rel: string): Promise<void> {
  const data: Buffer[] = [];
  try {
    for (const idHex of node.content!) data.push(await readChunk(ctx, locate(ctx, idHex)));
  } catch (e) {
    if ((e as VaultpathError).code === 'VP_ABORTED') throw e;
    ctx.errors.push({ path: rel, reason: e instanceof RestoreFileError || e instanceof VaultpathError ? e.message : String(e) });
    return;
  }
  const length = data.reduce((n, b) => n + b.length, 0);
  if (length !== node.size) {
    ctx.errors.push({ path: rel, reason: `the snapshot's chunks hold ${length} bytes, the file needs ${node.size}` });
    return;
  }
  const temp = tempBeside(ctx, path);
  const write = nativeWriter();
  if (write) {
    // One thread-pool job per file: the event loop never waits on the journal, and files in flight overlap.
    const code = await write(temp, path, data, node.mode, BigInt(node.mtimeNs));
    if (code === undefined) {
      ctx.files++;
      ctx.bytes += length;
      ctx.progress?.({ files: ctx.files, bytes: ctx.bytes });
    } else ctx.errors.push({ path: rel, reason: code === 'EISDIR' ? 'a folder is in the way of a file' : code });
    return;
  }
  let fd: number | undefined;
  try {
    const existing = lstatSyncOrUndefined(path);
    if (existing?.isDirectory()) throw new RestoreFileError('a folder is in the way of a file');
    fd = openSync(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
    let at = 0;
    for (const b of data) for (let o = 0; o < b.length; ) {
      const n = writeSync(fd, b, o, b.length - o, at);
      o += n;
      at += n;
    }
    closeSync(fd);
    fd = undefined;
    await setMeta(temp, node);
    renameSync(temp, path);
    ctx.files++;
    ctx.bytes += length;
    ctx.progress?.({ files: ctx.files, bytes: ctx.bytes });
  } catch (e) {
    if (fd !== undefined) closeSync(fd);
    try {
      unlinkSync(temp);
    } catch {
      // not created
    }
    ctx.errors.push({ path: rel, reason: e instanceof RestoreFileError ? e.message : `${(e as NodeJS.ErrnoException).code ?? String(e)}` });
  }
}

function lstatSyncOrUndefined(path: string): ReturnType<typeof lstatSync> | undefined {
  try {
    return lstatSync(path);
  } catch {
    return undefined;
  }
}

async function restoreFile(ctx: RestoreContext, node: TreeNode, path: string, rel: string): Promise<void> {
  if (node.size! <= SMALL_FILE && !node.holes) return restoreSmallFile(ctx, node, path, rel);
  const existing = await lstat(path).catch(() => undefined);
  if (existing?.isDirectory()) {
    ctx.errors.push({ path: rel, reason: 'a folder is in the way of a file' });
    return;
  }
  const temp = tempBeside(ctx, path);
  let file: FileHandle | undefined;
  /** The file opened again for direct I/O: the addon writes the chunks' whole pages through it. */
  let direct: FileHandle | undefined;
  const inFlight: Promise<void>[] = [];
  try {
    file = await open(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
    if (ctx.writeBlob) direct = await openDirect(file.fd);
    const target = { fd: file.fd, direct: direct?.fd ?? -1 };
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
    await file.truncate(size); // trailing holes stay holes
    await direct?.close();
    direct = undefined;
    await file.close();
    file = undefined;
    await setMeta(temp, node);
    await rename(temp, path);
    ctx.files++;
    ctx.bytes += size;
    ctx.progress?.({ files: ctx.files, bytes: ctx.bytes });
  } catch (e) {
    // The addon may still be writing to the file's descriptor: close it only once nothing can, so a later file
    // that gets the same number never receives these bytes.
    await Promise.allSettled(inFlight);
    await direct?.close().catch(() => undefined);
    await file?.close().catch(() => undefined);
    await unlink(temp).catch(() => undefined);
    if ((e as VaultpathError).code === 'VP_ABORTED') throw e;
    ctx.errors.push({ path: rel, reason: e instanceof RestoreFileError || e instanceof VaultpathError ? e.message : `${(e as NodeJS.ErrnoException).code ?? String(e)}` });
  }
}

async function restoreLink(ctx: RestoreContext, node: TreeNode, path: string, rel: string): Promise<void> {
  const temp = tempBeside(ctx, path);
  try {
    await symlink(node.linkTarget!, temp);
    await rename(temp, path);
    ctx.files++;
  } catch (e) {
    await unlink(temp).catch(() => undefined);
    ctx.errors.push({ path: rel, reason: `could not create the link (${(e as NodeJS.ErrnoException).code})` });
  }
}

async function setMeta(path: string, node: TreeNode): Promise<void> {
  chmodSync(path, node.mode);
  await setTimesNs(path, BigInt(node.mtimeNs));
}

async function writeFully(file: FileHandle, data: Uint8Array, position: number): Promise<void> {
  for (let o = 0; o < data.length; ) {
    const { bytesWritten } = await file.write(data, o, data.length - o, position + o);
    o += bytesWritten;
  }
}

class RestoreFileError extends Error {}

/**
 * A temporary name in the folder of `path`, unique to this restore: a random prefix drawn once per restore and a
 * counter (a random draw per file cost more than its write). Created exclusively, so a name already taken fails
 * that file instead of opening what is there.
 */
function tempBeside(ctx: RestoreContext, path: string): string {
  return join(path, '..', `.vaultpath-restore-${ctx.tempPrefix}-${(ctx.temps++).toString(36)}`);
}

/**
 * The recovery folder: packs downloaded whole, each opened once and read at positions by every file that needs it.
 * Past `capacity` bytes, packs no reader is using are dropped, least recently used first. One download per pack.
 *
 * Blobs are read into buffers that the caller hands back with `recycle` once opened, and that serve later reads:
 * a fresh buffer per blob (up to 8 MiB) costs page faults on every read. At most {@link SPARE_BUFFERS} are kept.
 */
class PackCache {
  readonly #dir: string;
  readonly #capacity: number;
  readonly #vault: Vault;
  readonly #signal: AbortSignal | undefined;
  readonly #packs = new Map<string, { ready: Promise<{ fd: number; size: number }>; users: number }>();
  #held = 0;
  readonly #spare: Buffer[] = [];

  private constructor(dir: string, capacity: number, vault: Vault, signal: AbortSignal | undefined) {
    this.#dir = dir;
    this.#capacity = capacity;
    this.#vault = vault;
    this.#signal = signal;
  }

  static async open(root: string, capacity: number, vault: Vault, signal: AbortSignal | undefined): Promise<PackCache> {
    const dir = join(resolve(root), `run-${process.pid}-${randomBytes(4).toString('hex')}`);
    await mkdir(dir, { recursive: true });
    return new PackCache(dir, capacity, vault, signal);
  }

  /** The sealed bytes of a blob, from its pack in the recovery folder. */
  read(at: BlobLocation): Promise<Buffer> {
    return this.withPack(at, (fd) => {
      // A positional read of a downloaded pack: synchronous, as the promise API's per-call cost dwarfs it.
      const out = this.#buffer(at.length);
      const bytesRead = readSync(fd, out, 0, at.length, at.offset);
      return out.subarray(0, bytesRead);
    });
  }

  /**
   * Runs `use` on the open file of the pack that holds `at`, downloading the pack first if it is not here. The pack
   * stays open (it is not evicted) until what `use` returns has settled.
   */
  async withPack<T>(at: BlobLocation, use: (fd: number) => T | Promise<T>): Promise<T> {
    const key = toHex(at.packId);
    let entry = this.#packs.get(key);
    if (entry) {
      this.#packs.delete(key); // re-insert: most recently used last
      this.#packs.set(key, entry);
    } else {
      entry = { ready: this.#download(at.packId, key), users: 0 };
      this.#packs.set(key, entry);
      const failed = entry;
      entry.ready.catch(() => this.#packs.get(key) === failed && this.#packs.delete(key));
    }
    entry.users++;
    try {
      const { fd } = await entry.ready;
      return await use(fd);
    } finally {
      entry.users--;
    }
  }

  /** Takes back a buffer returned by `read`, once nothing refers to its bytes any more. */
  recycle(view: Buffer): void {
    const whole = view.byteOffset === 0 && view.buffer.byteLength >= MIN_BUFFER ? Buffer.from(view.buffer) : undefined;
    if (whole && this.#spare.length < SPARE_BUFFERS) this.#spare.push(whole);
  }

  /** A buffer of at least `length` bytes: a spare one that is large enough, or a new one (a power of two). */
  #buffer(length: number): Buffer {
    const i = this.#spare.findIndex((b) => b.length >= length);
    if (i >= 0) return this.#spare.splice(i, 1)[0]!;
    let size = MIN_BUFFER;
    while (size < length) size *= 2;
    return Buffer.from(new ArrayBuffer(size));
  }

  async #download(packId: Buffer, key: string): Promise<{ fd: number; size: number }> {
    const path = join(this.#dir, key);
    const size = await downloadTo(this.#vault.store, objectName(Folder.data, packId), path, { signal: this.#signal });
    const fd = openSync(path, 'r');
    this.#held += size;
    await this.#evict();
    return { fd, size };
  }

  async #evict(): Promise<void> {
    for (const [key, entry] of this.#packs) {
      if (this.#held <= this.#capacity) break;
      if (entry.users > 0) continue;
      this.#packs.delete(key);
      const got = await entry.ready.catch(() => undefined);
      if (!got) continue;
      closeSync(got.fd);
      await rm(join(this.#dir, key), { force: true });
      this.#held -= got.size;
    }
  }

  async close(): Promise<void> {
    for (const entry of this.#packs.values()) {
      const got = await entry.ready.catch(() => undefined);
      if (got) closeSync(got.fd);
    }
    this.#packs.clear();
    await rm(this.#dir, { recursive: true, force: true });
  }
}
