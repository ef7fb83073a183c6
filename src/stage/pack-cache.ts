/**
 * The restore's recovery folder: the packs a restore reads, downloaded whole into a run folder of this user's
 * (`run-<pid>-<host>-<random>`, 0700), opened once, read at positions, kept until the restore's plan has no read of
 * them left, within a byte budget, and removed with the run folder when the restore ends.
 *
 * A killed restore's run folder is removed by the next restore that opens the same recovery folder (only this host's,
 * this user's, and only when its process is gone); it keeps a record of its target (`<dev>:<ino>`) until a restore
 * into that target has swept the temporary files it left there, so a target no killed run wrote into is never
 * searched. At most {@link MAX_RECORDS} such records are kept.
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import { closeSync, lstatSync, openSync, readFileSync, readSync, readdirSync, unlinkSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { toHex } from '../bytes.js';
import { throwIfAborted } from '../errors.js';
import { HOST_TAG, isGone } from '../processes.js';
import { Folder, objectName } from '../repo/layout.js';
import type { BlobLocation, Vault } from '../repo/vault.js';
import { downloadTo } from '../transfer/store.js';

/** The smallest read buffer made. */
const MIN_BUFFER = 64 * 1024;

/**
 * What the restore's plan says it will read from one pack: `reads` counts the blob reads (each one a
 * {@link PackCache.withPack} call) still to come, `bytes` how far into the pack they reach (a lower bound of its size,
 * used to make room before it is downloaded), `runs` when: the ordinals of the files that read it (in the order of
 * the restoring walk) as at most {@link MAX_RUNS} runs `[first, last]`, flattened. One per pack, not per blob: packs
 * hold ~16 MiB, blobs ~1 MiB, and a pack read by files far apart more than {@link MAX_RUNS} times has its last run
 * stretched (it then looks needed sooner than it is, so it is kept rather than dropped).
 */
export interface PackReads {
  reads: number;
  bytes: number;
  readonly runs: number[];
}

/** Runs of files kept per pack in {@link PackReads}. */
export const MAX_RUNS = 8;

/** Counts a read of pack `key` at `offset + length` by file `ordinal` (ordinals never decrease) in `plan`. */
export function planRead(plan: Map<string, PackReads>, key: string, end: number, ordinal: number): void {
  const reads = plan.get(key);
  if (!reads) {
    plan.set(key, { reads: 1, bytes: end, runs: [ordinal, ordinal] });
    return;
  }
  reads.reads++;
  if (end > reads.bytes) reads.bytes = end;
  const runs = reads.runs;
  // A file next to the last reader extends its run, as does any file once the runs are all taken.
  if (ordinal <= runs[runs.length - 1]! + 1 || runs.length >= MAX_RUNS * 2) runs[runs.length - 1] = ordinal;
  else runs.push(ordinal, ordinal);
}

/** The ordinal of the next file at or after `position` that reads a pack of `runs` (`position` when none is left). */
function nextRead(runs: readonly number[], position: number): number {
  for (let i = 0; i < runs.length; i += 2) if (runs[i + 1]! >= position) return Math.max(runs[i]!, position);
  return position; // only files already started read it still
}

export interface PackCacheOptions {
  /** Bytes of packs held at most, downloads under way included (a pack being read is held past it while it is read). */
  readonly capacity: number;
  readonly vault: Vault;
  /** The restore's target as `<dev>:<ino>`, recorded for the sweep after a kill. */
  readonly target: string;
  /** Read buffers kept for reuse (one per file read at once). */
  readonly spareBuffers: number;
  /**
   * The reads the restore will make, by pack (hex id), from its plan: a pack is kept until its last planned read is
   * done, then removed at once. Without it, packs past `capacity` are dropped least recently used first.
   */
  readonly plan?: Map<string, PackReads> | undefined;
  readonly signal?: AbortSignal | undefined;
}

interface Entry {
  ready: Promise<{ fd: number; size: number }>;
  /** The pack once downloaded and open. */
  got: { fd: number; size: number } | undefined;
  /** Calls of withPack on it that have not returned (waiting for the download, or reading). */
  users: number;
}

/**
 * The recovery folder: packs downloaded whole, each opened once and read at positions by every file that needs it.
 *
 * With the restore's plan (reads per pack), a pack stays until its last planned read is done and is removed then;
 * before a download, room is made for it within `capacity` (downloads under way count): while packs are being read or
 * downloaded, the download waits for them to finish; only when nothing is under way and the recovery folder is still
 * full of packs that later files will read is one of them dropped: the one whose next reader comes last (it is
 * downloaded again when needed, counted in `refetched`). A single pack larger than `capacity` is downloaded alone.
 * So each pack is downloaded once per restore unless the packs that files read in between do not fit, and the
 * folder holds more than `capacity` only while a pack being read is kept past it.
 *
 * Blobs are read into buffers that the caller hands back with `recycle` once opened, and that serve later reads:
 * a fresh buffer per blob (up to 8 MiB) costs page faults on every read. At most `spareBuffers` are kept.
 */
export class PackCache {
  readonly #dir: string;
  readonly #capacity: number;
  readonly #vault: Vault;
  readonly #signal: AbortSignal | undefined;
  /** Packs here or being downloaded, least recently used first. */
  readonly #packs = new Map<string, Entry>();
  readonly #plan: Map<string, PackReads> | undefined;
  /** Bytes of packs on disk, plus the estimates of downloads under way. */
  #held = 0;
  /** Downloads under way and reads running: each ends by itself, and may make room when it does. */
  #working = 0;
  #waiting: (() => void)[] = [];
  readonly #spare: Buffer[] = [];
  readonly #spareBuffers: number;

  /** The ordinal (as in the plan's runs) of the file the restoring walk reached: where next reads are counted from. */
  position = 0;

  /** Packs downloaded, their bytes, and downloads of a pack already downloaded once in this run. */
  readonly stats = { packs: 0, bytes: 0, refetched: 0 };
  readonly #seen = new Set<string>();

  private constructor(dir: string, options: PackCacheOptions) {
    this.#dir = dir;
    this.#capacity = options.capacity;
    this.#vault = options.vault;
    this.#signal = options.signal;
    this.#spareBuffers = options.spareBuffers;
    this.#plan = options.plan;
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
   * stays open (it is not dropped) until what `use` returns has settled. Each call is one of the plan's reads.
   */
  async withPack<T>(at: BlobLocation, use: (fd: number) => T | Promise<T>): Promise<T> {
    const key = toHex(at.packId);
    let entry = this.#packs.get(key);
    if (entry) {
      this.#packs.delete(key); // re-insert: most recently used last
      this.#packs.set(key, entry);
    } else {
      const created: Entry = { ready: undefined!, got: undefined, users: 0 };
      created.ready = this.#download(at.packId, key, created);
      entry = created;
      this.#packs.set(key, created);
      created.ready.catch(() => this.#packs.get(key) === created && this.#packs.delete(key));
    }
    entry.users++;
    try {
      const { fd } = await entry.ready;
      this.#working++;
      try {
        return await use(fd);
      } finally {
        this.#working--;
      }
    } finally {
      entry.users--;
      this.#readDone(key, entry);
    }
  }

  /**
   * Counts one planned read of pack `key` as done: the pack is removed once no read is left and none is running.
   * Then whoever waits for room looks again.
   */
  #readDone(key: string, entry: Entry | undefined): void {
    const planned = this.#plan?.get(key);
    if (planned) {
      planned.reads--;
      if (planned.reads <= 0) this.#plan!.delete(key);
    }
    if (entry && this.#plan && !this.#plan.has(key) && entry.users === 0 && entry.got && this.#packs.get(key) === entry) this.#drop(key, entry);
    this.#wake();
  }

  /**
   * Counts a planned read of the pack that holds `at` as done without reading it: the file that was to read it
   * failed or was not restored, so the pack need not wait for it.
   */
  skip(at: BlobLocation): void {
    const key = toHex(at.packId);
    this.#readDone(key, this.#packs.get(key));
  }

  /** Removes pack `key` (downloaded, not being read) from the folder. */
  #drop(key: string, entry: Entry): void {
    this.#packs.delete(key);
    const got = entry.got!;
    closeSync(got.fd);
    try {
      unlinkSync(join(this.#dir, key));
    } catch {
      // removed with the run folder at the end
    }
    this.#held -= got.size;
  }

  #wake(): void {
    const waiting = this.#waiting;
    this.#waiting = [];
    for (const w of waiting) w();
  }

  /**
   * Reserves `need` bytes for a download and counts it as under way: waits while reads or downloads under way may free room; drops packs no one
   * is reading (least recently used first) only once nothing is under way. Past `capacity` only when nothing else is
   * held.
   */
  async #room(need: number): Promise<void> {
    for (;;) {
      throwIfAborted(this.#signal);
      if (this.#held + need <= this.#capacity || this.#held === 0) break;
      // A pack downloaded that its callers are about to read counts as being read (its readers run next).
      // The pack dropped is the one whose next reader comes last (least recently used among equals): the one a
      // download again costs least, as the packs read before then had the room.
      let victim: [string, Entry] | undefined;
      let victimNext = -1;
      let busy = this.#working > 0;
      for (const e of this.#packs) {
        if (!e[1].got) continue;
        if (e[1].users > 0) {
          busy = true;
          continue;
        }
        const runs = this.#plan?.get(e[0])?.runs;
        const next = runs ? nextRead(runs, this.position) : Infinity;
        if (next > victimNext) {
          victim = e;
          victimNext = next;
        }
      }
      if (busy) {
        await new Promise<void>((wake) => this.#waiting.push(wake));
        continue;
      }
      if (!victim) break; // nothing here to drop: this download goes past capacity
      this.#drop(...victim);
    }
    // Counted as under way at once, not once the caller resumes: another waiter may look in between.
    this.#held += need;
    this.#working++;
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

  async #download(packId: Buffer, key: string, entry: Entry): Promise<{ fd: number; size: number }> {
    // A pack the plan does not know (or no plan) is sized once it is here: room is made for it then, after it.
    const estimate = this.#plan?.get(key)?.bytes ?? 0;
    if (estimate > 0) await this.#room(estimate);
    else this.#working++;
    try {
      const path = join(this.#dir, key);
      const size = await downloadTo(this.#vault.store, objectName(Folder.data, packId), path, { signal: this.#signal });
      // Known as here before anyone waiting for room looks again (in `finally`), not once `ready` has settled.
      entry.got = { fd: openSync(path, 'r'), size };
      this.#held += size - estimate;
      this.stats.packs++;
      this.stats.bytes += size;
      if (this.#seen.has(key)) this.stats.refetched++;
      else this.#seen.add(key);
      if (estimate === 0) this.#evict(key);
      return entry.got;
    } catch (e) {
      this.#held -= estimate;
      throw e;
    } finally {
      this.#working--;
      this.#wake();
    }
  }

  /** After a download not planned: drops packs no one is reading, least recently used first, past `capacity`. */
  #evict(keep: string): void {
    for (const [key, entry] of this.#packs) {
      if (this.#held <= this.#capacity) break;
      if (key === keep || entry.users > 0 || !entry.got) continue;
      this.#drop(key, entry);
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
