/**
 * The local-directory store: a vault in a folder, the embedded default for one machine (and for tests).
 *
 * Writes are atomic and durable: the body goes to a temporary file in `<root>/.tmp/` (same file system), is
 * fsynced, then renamed into place (or hard-linked, for create-only writes, so an existing object is never
 * replaced), and the destination folder is fsynced. A crash leaves at most a temporary file, never a partial object
 * under its final name.
 *
 * Temporary files are named `<host>.<pid>.<random>.tmp` after the writer that owns them. When a store is opened,
 * those of this host whose process is gone (a crash, a kill) are removed at once; those of a live process are kept;
 * any other (another host's, an older name) once it is an hour old.
 *
 * Owner-only, as a vault's contents are nobody else's business: folders the store creates are 0700 and files 0600,
 * whatever the umask (as restic does). Opening writes nothing: a folder that is not a vault (`snapshots --vault
 * ~/Documents`) is left exactly as it was; `.tmp/` and the object folders are made by the first write that needs them.
 *
 * A full disk (ENOSPC, EDQUOT) is a permanent `VP_STORE_FULL` error that names the vault; it is never retried and
 * never blamed on the source.
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import { type Stats, close, constants, fstat, open as fsOpen, read } from 'node:fs';
import { type FileHandle, copyFile, link, lstat, mkdir, open, opendir, readdir, rename, rm, stat, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join, resolve, sep } from 'node:path';
import { VaultpathError, throwIfAborted } from '../errors.js';
import { type Clock, systemClock } from '../throttle/clock.js';
import { isGone } from '../processes.js';
import {
  type Body,
  type CallOptions,
  type GetOptions,
  type PutOptions,
  type Store,
  type StoreObjectInfo,
  bodySize,
  bodyStream,
  checkName,
} from './store.js';

const TMP = '.tmp';
const STALE_TMP_MS = 60 * 60 * 1000;
/** Folders and files the store creates: owner-only. */
const DIR_MODE = 0o700;
const FILE_MODE = 0o600;

/** This host's name as it goes into temporary names (letters, digits, hyphens): worked out once. */
const HOST = hostname().replace(/[^A-Za-z0-9-]/g, '-').slice(0, 64) || 'host';

/** `<host>.<pid>.<16 hex>.tmp`: the host name may hold dots, so the pid and random part are read from the end. */
const TEMP_NAME = /^(.+)\.(\d+)\.[0-9a-f]{16}\.tmp$/;

export interface LocalStoreOptions {
  /** Create the folder if it does not exist. @default false */
  readonly create?: boolean;
  /** fsync files and folders (turn off only for throwaway tests). @default true */
  readonly durable?: boolean;
  /** Tells the age of leftover temporary files. @default systemClock */
  readonly clock?: Clock;
}

/**
 * One callback-style fs call as a promise. Reads use these rather than `FileHandle`: for the small objects a walk
 * reads by the hundred (trees, index objects), a FileHandle's open, read and close cost three to four times as
 * much time on the calling thread as the same three calls through callbacks.
 */
function call<T>(start: (done: (e: NodeJS.ErrnoException | null, value: T) => void) => void): Promise<T> {
  return new Promise((resolve, reject) => start((e, value) => (e ? reject(e) : resolve(value))));
}

/** Ranges up to this length are read without first asking the file's size (see get). */
const UNCLAMPED_RANGE = 1024 * 1024;

export class LocalStore implements Store {
  readonly location: string;
  readonly #root: string;
  readonly #durable: boolean;

  private constructor(root: string, durable: boolean) {
    this.#root = root;
    this.location = root;
    this.#durable = durable;
  }

  /**
   * Opens the vault folder `root`.
   * @throws {VaultpathError} `VP_NOT_FOUND` when it does not exist and `create` is false; `VP_STORE_IO`.
   */
  static async open(root: string, options: LocalStoreOptions = {}): Promise<LocalStore> {
    const abs = resolve(root);
    try {
      if (options.create) await mkdir(abs, { recursive: true, mode: DIR_MODE });
      const st = await stat(abs);
      if (!st.isDirectory()) throw new VaultpathError('VP_NOT_A_VAULT', `The vault location ${abs} is a file, not a folder; give the vault's folder.`);
    } catch (e) {
      throw storeError(e, abs, 'open the vault folder');
    }
    const store = new LocalStore(abs, options.durable ?? true);
    await store.#removeStaleTemporaries((options.clock ?? systemClock).now());
    return store;
  }

  async put(name: string, body: Body, options: PutOptions = {}): Promise<void> {
    checkName(name);
    throwIfAborted(options.signal);
    const final = this.#path(name);
    const temp = join(this.#root, TMP, `${HOST}.${process.pid}.${randomBytes(8).toString('hex')}.tmp`);
    let file: FileHandle | undefined;
    try {
      await this.#makeTempFolder();
      if (!(body instanceof Uint8Array) && body.path !== undefined && (await this.#adopt(body.path, body.size, temp))) {
        file = await open(temp, 'r');
        // A link shares the staged file's mode, a copy copies it: either way, owner-only from here on.
        await file.chmod(FILE_MODE);
      } else {
        file = await this.#writeTemp(temp, name, body, options.signal);
      }
      if (this.#durable) await file.sync();
      await file.close();
      file = undefined;
      const dir = join(final, '..');
      await mkdir(dir, { recursive: true, mode: DIR_MODE });
      if (options.ifNotExists) {
        // link() fails with EEXIST instead of replacing: an atomic create-only write.
        await link(temp, final);
        await unlink(temp);
      } else {
        await rename(temp, final);
      }
      if (this.#durable) await syncFolder(dir);
    } catch (e) {
      await file?.close().catch(() => undefined);
      await unlink(temp).catch(() => undefined);
      if ((e as NodeJS.ErrnoException).code === 'EEXIST' && options.ifNotExists) {
        throw new VaultpathError('VP_ALREADY_EXISTS', `${name} already exists in the vault at ${this.location}.`);
      }
      throw storeError(e, this.location, `write ${name}`);
    }
  }

  /**
   * Takes a local file as the body: a hard link when it is on the vault's file system (no copy at all), else a
   * kernel copy (copy_file_range). False when neither works, or the file is not the announced size.
   */
  async #adopt(path: string, size: number, temp: string): Promise<boolean> {
    try {
      if ((await stat(path)).size !== size) return false;
      try {
        await link(path, temp);
      } catch {
        await copyFile(path, temp, constants.COPYFILE_EXCL);
      }
      return true;
    } catch {
      await unlink(temp).catch(() => undefined);
      return false;
    }
  }

  async #writeTemp(temp: string, name: string, body: Body, signal: AbortSignal | undefined): Promise<FileHandle> {
    const file = await open(temp, 'wx', FILE_MODE);
    try {
      let written = 0;
      for await (const chunk of bodyStream(body)) {
        throwIfAborted(signal);
        // A write may be short (a disk filling up writes what fits and reports no error): loop until all of it is
        // written, so the next write raises ENOSPC instead of a truncated object being renamed into place.
        for (let o = 0; o < chunk.length; ) {
          const { bytesWritten } = await file.write(chunk, o, chunk.length - o);
          o += bytesWritten;
        }
        written += chunk.length;
      }
      if (written !== bodySize(body)) {
        throw new VaultpathError('VP_STORE_IO', `The body of ${name} was ${written} bytes, not the ${bodySize(body)} announced; nothing was stored.`);
      }
      return file;
    } catch (e) {
      await file.close().catch(() => undefined);
      throw e;
    }
  }

  async download(name: string, path: string, options: CallOptions = {}): Promise<number> {
    checkName(name);
    throwIfAborted(options.signal);
    const source = this.#path(name);
    try {
      await rm(path, { force: true });
      // Objects are immutable once written, so a hard link is a safe, free copy; else a kernel copy.
      await link(source, path).catch(() => copyFile(source, path));
      return (await stat(path)).size;
    } catch (e) {
      throw storeError(e, this.location, `read ${name}`);
    }
  }

  async get(name: string, options: GetOptions = {}): Promise<Buffer> {
    checkName(name);
    throwIfAborted(options.signal);
    let fd: number | undefined;
    try {
      fd = await call<number>((done) => fsOpen(this.#path(name), 'r', done));
      const offset = options.offset ?? 0;
      // A short range (a tree, an index entry's blob) is read up to the end of the file, a short read ending it,
      // without an fstat round trip; a longer one is first clamped to the file's size, so that a damaged index
      // cannot make this allocate more than the file holds.
      const length =
        options.length !== undefined && options.length <= UNCLAMPED_RANGE
          ? options.length
          : Math.max(0, Math.min(options.length ?? Infinity, (await call<Stats>((done) => fstat(fd!, done))).size - offset));
      const out = Buffer.allocUnsafe(length);
      let done = 0;
      while (done < length) {
        throwIfAborted(options.signal);
        const bytesRead = await call<number>((cb) => read(fd!, out, done, length - done, offset + done, cb));
        if (bytesRead === 0) break;
        done += bytesRead;
      }
      return done === length ? out : out.subarray(0, done);
    } catch (e) {
      throw storeError(e, this.location, `read ${name}`);
    } finally {
      if (fd !== undefined) close(fd, () => undefined); // a read-only descriptor: nothing to learn from its close
    }
  }

  async stat(name: string, options: CallOptions = {}): Promise<StoreObjectInfo | undefined> {
    checkName(name);
    throwIfAborted(options.signal);
    try {
      const st = await lstat(this.#path(name));
      return st.isFile() ? { name, size: st.size } : undefined;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw storeError(e, this.location, `examine ${name}`);
    }
  }

  async *list(prefix: string, options: CallOptions = {}): AsyncIterable<StoreObjectInfo> {
    throwIfAborted(options.signal);
    // The folder to walk is the prefix up to its last '/'; names are then filtered by the whole prefix.
    const slash = prefix.lastIndexOf('/');
    const folder = slash < 0 ? '' : prefix.slice(0, slash);
    if (folder !== '') checkName(folder);
    yield* this.#walk(folder, prefix, options.signal);
  }

  async delete(name: string, options: CallOptions = {}): Promise<void> {
    checkName(name);
    throwIfAborted(options.signal);
    try {
      await unlink(this.#path(name));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw storeError(e, this.location, `delete ${name}`);
    }
  }

  async *#walk(folder: string, prefix: string, signal: AbortSignal | undefined): AsyncIterable<StoreObjectInfo> {
    let entries;
    try {
      entries = await readdir(folder === '' ? this.#root : this.#path(folder), { withFileTypes: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw storeError(e, this.location, `list ${folder || 'the vault'}`);
    }
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const entry of entries) {
      throwIfAborted(signal);
      if (folder === '' && entry.name === TMP) continue;
      const name = folder === '' ? entry.name : `${folder}/${entry.name}`;
      if (entry.isDirectory()) {
        if (prefix.startsWith(`${name}/`) || name.startsWith(prefix)) yield* this.#walk(name, prefix, signal);
      } else if (entry.isFile() && name.startsWith(prefix)) {
        try {
          yield { name, size: (await lstat(this.#path(name))).size };
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw storeError(e, this.location, `list ${name}`);
        }
      }
    }
  }

  #path(name: string): string {
    return this.#root + sep + name.split('/').join(sep);
  }

  /** Makes `.tmp/` (owner-only) the first time a write needs it. */
  async #makeTempFolder(): Promise<void> {
    if (this.#tempReady) return;
    await mkdir(join(this.#root, TMP), { mode: DIR_MODE }).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== 'EEXIST') throw e;
    });
    this.#tempReady = true;
  }

  #tempReady = false;

  /**
   * Removes the temporary files that no writer will finish: this host's whose process is gone, and any other
   * once it is an hour old. Only an existing `.tmp/` is read; none is made.
   */
  async #removeStaleTemporaries(now: number): Promise<void> {
    const dir = join(this.#root, TMP);
    const host = HOST;
    try {
      for await (const entry of await opendir(dir)) {
        const path = join(dir, entry.name);
        const owner = TEMP_NAME.exec(entry.name);
        if (owner && owner[1] === host) {
          const pid = Number(owner[2]);
          if (isGone(pid)) await rm(path, { force: true });
          continue;
        }
        const st = await lstat(path).catch(() => undefined);
        if (st && now - st.mtimeMs > STALE_TMP_MS) await rm(path, { force: true });
      }
    } catch {
      // Best effort: a leftover temporary file is harmless, it is never read as an object.
    }
  }
}

async function syncFolder(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } catch (e) {
    // Some file systems cannot fsync a folder (EINVAL); the rename is still atomic there.
    if ((e as NodeJS.ErrnoException).code !== 'EINVAL') throw e;
  } finally {
    await handle.close();
  }
}

function storeError(e: unknown, location: string, action: string): VaultpathError {
  if (e instanceof VaultpathError) return e;
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    return new VaultpathError(
      'VP_STORE_FULL',
      `The vault at ${location} is out of space (${code}) while trying to ${action}. Free space on the vault's disk or ` +
        'move the vault; earlier snapshots are intact.',
      { cause: e },
    );
  }
  if (code === 'ENOENT') {
    return new VaultpathError('VP_NOT_FOUND', `Could not ${action}: it does not exist in the vault at ${location}.`, { cause: e });
  }
  const retryable = code === 'EAGAIN' || code === 'EBUSY' || code === 'EMFILE' || code === 'ENFILE';
  return new VaultpathError('VP_STORE_IO', `Could not ${action} in the vault at ${location} (${code ?? String(e)}).`, { cause: e, retryable });
}
