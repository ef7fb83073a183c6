/**
 * The scratch cache: a bounded staging folder where packs are assembled (their sealed blobs appended to a pending
 * file as they come, then copied into the pack in a random order: pack-uploader.ts) and wait between being written
 * and being acknowledged by the store.
 *
 * Capacity is 5% of the bytes the backup will read (from the scan), never less than {@link SCRATCH_FLOOR}. Before
 * any data is read, the free space of the folder's volume is checked against it, and a shortfall fails with
 * `VP_SCRATCH_SPACE` giving both sizes. Producers {@link ScratchCache.reserve} space before writing and wait while
 * the cache is full; space is released only after the store has acknowledged the pack and its file is removed, so
 * the bytes on disk never exceed the capacity (the high-water mark is tracked and tested).
 *
 * Each run works in its own subfolder named after its process; on start, subfolders of runs whose process is gone
 * (a crash, a kill) are removed, and a running backup's subfolder is never touched.
 *
 * The default folder is this user's `userFolder('scratch')`, checked by `ensureUserFolder` (`VP_UNSAFE_FOLDER` when
 * another user could change it); a folder given by path is created owner-only when missing. A run's subfolder is
 * always 0700: staged packs are sealed, but their names and sizes are still nobody else's business.
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readdir, rm, statfs, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { VaultpathError, throwIfAborted } from '../errors.js';
import { formatBytes } from '../units.js';
import { ensureUserFolder, userFolder } from './user-folders.js';
import { isGone } from '../processes.js';

/**
 * The scratch folder `root` (default: this user's), checked or created owner-only as the module comment says: where
 * runs stage packs in subfolders of their own, and where the vault index is cached (repo/index-cache.ts).
 */
export async function scratchFolder(root: string | undefined): Promise<string> {
  const base = resolve(root ?? userFolder('scratch'));
  if (base === resolve(userFolder('scratch'))) ensureUserFolder(base);
  else await mkdir(base, { recursive: true, mode: 0o700 });
  return base;
}

/** The smallest capacity: room for a few packs in flight whatever the size of the backup. */
export const SCRATCH_FLOOR = 64 * 1024 * 1024;
/** The share of the bytes to read that the cache may hold. */
export const SCRATCH_SHARE = 0.05;

/** The capacity for a backup that will read `bytesToRead` bytes. */
export function scratchCapacity(bytesToRead: number): number {
  return Math.max(SCRATCH_FLOOR, Math.ceil(bytesToRead * SCRATCH_SHARE));
}

export interface OpenScratchOptions {
  /** Bytes the cache may hold. */
  readonly capacity: number;
  readonly signal?: AbortSignal;
}

interface Waiter {
  readonly bytes: number;
  readonly resolve: () => void;
  readonly reject: (e: unknown) => void;
  readonly signal?: AbortSignal;
  onAbort?: () => void;
}

export class ScratchCache {
  /** This run's folder. */
  readonly dir: string;
  readonly capacity: number;
  #used = 0;
  #highWater = 0;
  readonly #waiters: Waiter[] = [];

  private constructor(dir: string, capacity: number) {
    this.dir = dir;
    this.capacity = capacity;
  }

  /**
   * Opens the scratch folder `root` (this user's scratch folder when undefined) for one run: removes what dead runs left, checks free space, makes this run's
   * subfolder.
   * @throws {VaultpathError} `VP_SCRATCH_SPACE` when the volume has less free space than `capacity`.
   */
  static async open(root: string | undefined, options: OpenScratchOptions): Promise<ScratchCache> {
    const base = await scratchFolder(root);
    await removeDeadRuns(base);
    const fs = await statfs(base);
    const free = Number(fs.bavail) * Number(fs.bsize);
    if (free < options.capacity) {
      throw new VaultpathError(
        'VP_SCRATCH_SPACE',
        `The scratch folder ${base} has ${formatBytes(free)} free, but this backup needs ${formatBytes(options.capacity)} ` +
          `(5% of the data to read, at least ${formatBytes(SCRATCH_FLOOR)}). Free space there or choose another folder ` +
          'with --scratch. No data was read.',
      );
    }
    throwIfAborted(options.signal);
    const dir = join(base, `run-${process.pid}-${randomBytes(4).toString('hex')}`);
    await mkdir(dir, { mode: 0o700 });
    await chmod(dir, 0o700); // whatever the umask
    await writeFile(join(dir, 'pid'), String(process.pid), { mode: 0o600 });
    return new ScratchCache(dir, options.capacity);
  }

  /** Bytes reserved now. */
  get used(): number {
    return this.#used;
  }

  /** The most bytes ever reserved at once. */
  get highWaterMark(): number {
    return this.#highWater;
  }

  /** A path in this run's folder. */
  path(name: string): string {
    return join(this.dir, name);
  }

  /**
   * Reserves `bytes`, waiting while the cache is too full. Requests are served in order. A request larger than the
   * whole capacity is refused (it could never be served).
   */
  reserve(bytes: number, signal?: AbortSignal): Promise<void> {
    try {
      throwIfAborted(signal);
    } catch (e) {
      return Promise.reject(e); // as a rejection, like every other outcome: callers may ask before they await
    }
    if (bytes > this.capacity) {
      return Promise.reject(new RangeError(`cannot reserve ${bytes} bytes in a scratch cache of ${this.capacity}`));
    }
    if (this.#waiters.length === 0 && this.#used + bytes <= this.capacity) {
      this.#take(bytes);
      return Promise.resolve();
    }
    return new Promise<void>((resolvePromise, reject) => {
      const waiter: Waiter = { bytes, resolve: resolvePromise, reject, signal };
      if (signal) {
        waiter.onAbort = () => {
          const i = this.#waiters.indexOf(waiter);
          if (i >= 0) this.#waiters.splice(i, 1);
          reject(new VaultpathError('VP_ABORTED', 'The backup was aborted while waiting for scratch space.', { cause: signal.reason }));
        };
        signal.addEventListener('abort', waiter.onAbort, { once: true });
      }
      this.#waiters.push(waiter);
    });
  }

  /** Returns `bytes` to the cache (after the staged file is gone) and wakes waiting producers. */
  release(bytes: number): void {
    this.#used -= bytes;
    if (this.#used < 0) throw new Error('scratch cache released more than it reserved');
    while (this.#waiters.length > 0 && this.#used + this.#waiters[0]!.bytes <= this.capacity) {
      const w = this.#waiters.shift()!;
      if (w.onAbort) w.signal?.removeEventListener('abort', w.onAbort);
      this.#take(w.bytes);
      w.resolve();
    }
  }

  /** Removes this run's folder. */
  async close(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
  }

  #take(bytes: number): void {
    this.#used += bytes;
    if (this.#used > this.#highWater) this.#highWater = this.#used;
  }
}

async function removeDeadRuns(base: string): Promise<void> {
  for (const name of await readdir(base).catch(() => [] as string[])) {
    const m = /^run-(\d+)-[0-9a-f]+$/.exec(name);
    if (!m) continue;
    const pid = Number(m[1]);
    // A live process (this one included: a library user may run two backups) still owns its folder.
    if (!isGone(pid)) continue;
    await rm(join(base, name), { recursive: true, force: true });
  }
}

