/**
 * The restore's recovery folder: the packs a restore reads, downloaded whole into a run folder of this user's
 * (`run-<pid>-<host>-<random>`, 0700), opened once, read at positions, dropped least recently used first past a
 * byte budget, and removed with the run folder when the restore ends.
 *
 * A killed restore's run folder is removed by the next restore that opens the same recovery folder (only this host's,
 * this user's, and only when its process is gone); it keeps a record of its target (`<dev>:<ino>`) until a restore
 * into that target has swept the temporary files it left there, so a target no killed run wrote into is never
 * searched. At most {@link MAX_RECORDS} such records are kept.
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import { closeSync, lstatSync, openSync, readFileSync, readSync, readdirSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { toHex } from '../bytes.js';
import { HOST_TAG, isGone } from '../processes.js';
import { Folder, objectName } from '../repo/layout.js';
import type { BlobLocation, Vault } from '../repo/vault.js';
import { downloadTo } from '../transfer/store.js';

/** The smallest read buffer made. */
const MIN_BUFFER = 64 * 1024;

export interface PackCacheOptions {
  /** Bytes of packs held at most (a pack in use is held past it until its readers are done). */
  readonly capacity: number;
  readonly vault: Vault;
  /** The restore's target as `<dev>:<ino>`, recorded for the sweep after a kill. */
  readonly target: string;
  /** Read buffers kept for reuse (one per file read at once). */
  readonly spareBuffers: number;
  readonly signal?: AbortSignal | undefined;
}

/**
 * The recovery folder: packs downloaded whole, each opened once and read at positions by every file that needs it.
 * Past `capacity` bytes, packs no reader is using are dropped, least recently used first. One download per pack.
 *
 * Blobs are read into buffers that the caller hands back with `recycle` once opened, and that serve later reads:
 * a fresh buffer per blob (up to 8 MiB) costs page faults on every read. At most `spareBuffers` are kept.
 */
export class PackCache {
  readonly #dir: string;
  readonly #capacity: number;
  readonly #vault: Vault;
  readonly #signal: AbortSignal | undefined;
  readonly #packs = new Map<string, { ready: Promise<{ fd: number; size: number }>; users: number }>();
  #held = 0;
  readonly #spare: Buffer[] = [];

  readonly #spareBuffers: number;

  private constructor(dir: string, options: PackCacheOptions) {
    this.#dir = dir;
    this.#capacity = options.capacity;
    this.#vault = options.vault;
    this.#signal = options.signal;
    this.#spareBuffers = options.spareBuffers;
  }

  /**
   * Opens a run folder in recovery folder `root` for a restore into `options.target` (`<dev>:<ino>`), first removing
   * the runs of killed restores; `sweep` says whether one of those wrote into this target (see
   * {@link removeStaleRuns}).
   */
  static async open(root: string, options: PackCacheOptions): Promise<{ cache: PackCache; sweep: boolean }> {
    const base = resolve(root);
    await mkdir(base, { recursive: true });
    const sweep = await removeStaleRuns(base, options.target);
    const dir = join(base, `run-${process.pid}-${HOST_TAG}-${randomBytes(4).toString('hex')}`);
    await mkdir(dir, { mode: 0o700 });
    await writeFile(join(dir, TARGET_RECORD), options.target, { mode: 0o600 });
    return { cache: new PackCache(dir, options), sweep };
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
    if (whole && this.#spare.length < this.#spareBuffers) this.#spare.push(whole);
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

const STALE_RUN = /^run-(\d+)-([0-9a-f]{8})-[0-9a-f]+$/;
/** The file in a run folder that names the run's target (`<dev>:<ino>`), kept once the run's packs are removed. */
const TARGET_RECORD = 'target';
/** Killed runs whose target is still to be swept, kept at most (the oldest beyond are forgotten). */
const MAX_RECORDS = 64;

/**
 * Removes the runs of restores killed on this host from recovery folder `base`: `run-<pid>-<host>-…` folders of
 * this user whose process is gone. Another user's, another host's, or a live process's run is left alone.
 *
 * A killed run may have left temporary files anywhere in its target, so its folder keeps one small record, the
 * target's `<dev>:<ino>`, until a restore into that target sweeps it. Returns whether this restore's target
 * (`target`, the same form) must be swept: a killed run restored into it, or a run left no record.
 */
async function removeStaleRuns(base: string, target: string): Promise<boolean> {
  let names: string[];
  try {
    names = readdirSync(base);
  } catch {
    return false;
  }
  const uid = process.geteuid?.();
  let sweep = false;
  const kept: { path: string; mtimeMs: number }[] = [];
  for (const name of names) {
    const m = STALE_RUN.exec(name);
    if (!m || m[2] !== HOST_TAG || !isGone(Number(m[1]))) continue;
    const path = join(base, name);
    try {
      const st = lstatSync(path);
      if (!st.isDirectory() || (uid !== undefined && st.uid !== uid)) continue;
      const record = readRecord(path);
      if (record === undefined || record === target) {
        sweep = true;
        await rm(path, { recursive: true, force: true });
        continue;
      }
      for (const entry of readdirSync(path)) if (entry !== TARGET_RECORD) await rm(join(path, entry), { recursive: true, force: true });
      kept.push({ path, mtimeMs: st.mtimeMs });
    } catch {
      // removed meanwhile, or not removable: left for a later run
    }
  }
  kept.sort((a, b) => b.mtimeMs - a.mtimeMs);
  for (const { path } of kept.slice(MAX_RECORDS)) await rm(path, { recursive: true, force: true }).catch(() => undefined);
  return sweep;
}

/** The target a run folder names, or `undefined` when it has no readable record. */
function readRecord(run: string): string | undefined {
  try {
    const text = readFileSync(join(run, TARGET_RECORD), 'utf8');
    return /^\d+:\d+$/.test(text) ? text : undefined;
  } catch {
    return undefined;
  }
}
