/**
 * The archiver's file reader: opens a source file the scan saw, checks it is still that file, and yields its data
 * as chunks to save. A backup reads exactly what it scanned.
 *
 * Files are opened through their folder's descriptor (`access`) with O_NOFOLLOW and O_NONBLOCK and checked by fstat
 * (or by the addon's sealer, before it reads a byte) to be the regular file of the device and inode the scan saw.
 * Anything else found in its place (a symbolic link, a FIFO, a device, another file or folder) is reported as
 * `replaced` and left out: no other file's bytes are ever stored under its name, and no open waits on a FIFO. A
 * sparse file's data regions are asked of the descriptor being read; its holes are recorded, never read.
 *
 * How a file is read is a detail of its size, not of what is done with it (file-saver.ts saves every chunk alike):
 *
 * - `whole`: a file that is one chunk, read, identified and sealed in a thread-pool job of the addon, with the other
 *   small files of the same turn (BlobSaver.sealFile); it yields one blob sealed already.
 * - `small`: up to {@link SMALL_FILE} bytes, read with synchronous calls: for small files the promise-based file
 *   API costs far more than the reads (measured here: 4 to 9 s of overhead per 10,000 files, against 0.2 s for
 *   open/read/fstat/close done synchronously, about 20 µs per file on the calling thread).
 * - `stream`: read in 1 MiB pieces, one piece ahead, so the disk works while the last piece is chunked.
 *
 * Memory stays bounded whatever the file sizes: pieces are buffers of a shared {@link ReadBuffers} pool, given back
 * once every chunk cut from them is saved ({@link SourceFile.saved}); a chunk is at most the chunker's maximum.
 *
 * @module
 */
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import { throwIfAborted } from '../errors.js';
import { chunkStream } from '../chunk/fastcdc.js';
import { dataExtents } from '../scan/probe.js';
import { sameFile } from '../scan/folder.js';
import type { ProbedEntry } from '../scan/attributes.js';
import type { ScanEntry } from '../scan/scan.js';
import type { Vault } from '../repo/vault.js';
import type { BlobData, BlobSaver } from '../repo/blob-saver.js';
import { ReadBuffers } from './read-buffers.js';
import type { RunReport } from './report.js';

/** Bytes read at a time. */
export const READ_SIZE = 1024 * 1024;
/** Files up to this size are read with synchronous calls (`small`). */
export const SMALL_FILE = 1024 * 1024;
/**
 * Read buffers kept for reuse: what one large file holds at once (a chunk being cut, two in flight, one read ahead:
 * up to 3 × 8 MiB + 1 MiB) with the smaller files beside it.
 */
const FREE_READ_BUFFERS = 32;

/** How a file is read (see the module's header). */
export type ReadMode = 'whole' | 'small' | 'stream';

/** A chunk of a file to save, and where its data ends among the bytes read. */
export interface FileChunk {
  readonly blob: BlobData;
  readonly end: number;
}

/** The size and times of a file after it was read. */
export interface StatAfter {
  readonly size: bigint;
  readonly mtimeNs: bigint;
  readonly ctimeNs: bigint;
}

/** A source file open for reading. */
export interface SourceFile {
  /** Its data as chunks, in file order. @throws {SourceReadError} when a read fails. */
  readonly chunks: AsyncIterable<FileChunk> | Iterable<FileChunk>;
  /** Gives back the read buffers that hold only data before `end`: every chunk ending there is saved. */
  saved(end: number): void;
  /** Its size and times once read. @throws {SourceReadError} */
  after(): Promise<StatAfter>;
  /** Data bytes read so far. */
  readonly bytes: number;
  /** Its holes (sparse files): offset, length pairs. */
  readonly holes: readonly [number, number][];
  close(): Promise<void>;
}

/** A read of a source file failed: the file's problem, reported per file, never the backup's. */
export class SourceReadError extends Error {
  constructor(cause: unknown) {
    super(`reading the source failed: ${String((cause as Error).message ?? cause)}`, { cause });
  }
}

/** True when a file's size or times after reading differ from the scan's, or the bytes read fall short of its size. */
export function changedWhileRead(before: ProbedEntry, after: StatAfter, bytesAccounted: number): boolean {
  return after.size !== BigInt(before.size) || after.mtimeNs !== before.mtimeNs || after.ctimeNs !== before.ctimeNs || bytesAccounted !== before.size;
}

/**
 * How a source file is opened: read-only, never through a symbolic link put in its place (ELOOP), and without
 * blocking, so a FIFO put in its place is opened at once (and then refused, not being a regular file), never waited
 * on. Reads of a regular file ignore O_NONBLOCK.
 */
const OPEN_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK | constants.O_NOCTTY;

export class FileReader {
  readonly #vault: Vault;
  readonly #saver: BlobSaver;
  readonly #report: RunReport;
  readonly #signal: AbortSignal | undefined;
  readonly #buffers = new ReadBuffers(READ_SIZE, FREE_READ_BUFFERS);

  constructor(vault: Vault, saver: BlobSaver, report: RunReport, signal: AbortSignal | undefined) {
    this.#vault = vault;
    this.#saver = saver;
    this.#report = report;
    this.#signal = signal;
  }

  /** How a file of `size` bytes and decision `decision` is read: the walk and the reader must agree on this. */
  mode(size: number, decision: ScanEntry['decision']['kind']): ReadMode {
    if (size > SMALL_FILE || decision === 'backup-sparse') return 'stream';
    return this.#saver.sealsWholeFiles && size > 0 && size < this.#vault.config.chunker.minSize ? 'whole' : 'small';
  }

  /**
   * Opens scanned file `e` read as `mode`; undefined (reported) when it cannot be opened, is not the file the scan
   * saw, or (small and whole files, read at once) cannot be read.
   */
  async open(e: ScanEntry, mode: ReadMode): Promise<SourceFile | undefined> {
    if (mode === 'whole') return this.#whole(e);
    if (mode === 'small') return this.#small(e);
    return this.#stream(e);
  }

  async #whole(e: ScanEntry): Promise<SourceFile | undefined> {
    const stats = e.stats!;
    const r = await this.#saver.sealFile(e.access ?? e.path, stats.size, { dev: stats.dev, ino: stats.ino });
    if ('code' in r) {
      if (r.step === 'open') await this.#report.openFailed(e, r);
      else await this.#report.readFailed(e, r.code);
      return undefined;
    }
    this.#report.c.bytesRead += r.bytes;
    const chunks: FileChunk[] = r.blob ? [{ blob: r.blob, end: r.bytes }] : [];
    return { chunks, saved: () => undefined, after: () => Promise.resolve(r.after), bytes: r.bytes, holes: [], close: () => Promise.resolve() };
  }

  async #small(e: ScanEntry): Promise<SourceFile | undefined> {
    const stats = e.stats!;
    let fd: number;
    try {
      fd = openSync(e.access ?? e.path, OPEN_FLAGS);
    } catch (err) {
      await this.#report.openFailed(e, err);
      return undefined;
    }
    let other: string | undefined;
    try {
      other = sameFile(fstatSync(fd, { bigint: true }), stats);
    } catch (err) {
      closeSync(fd);
      await this.#report.readFailed(e, (err as NodeJS.ErrnoException).code ?? 'error');
      return undefined;
    }
    if (other !== undefined) {
      closeSync(fd);
      await this.#report.replaced(e, other);
      return undefined;
    }
    let buf: Buffer;
    let after: StatAfter;
    try {
      // A reused read buffer (shared memory, for a chunk large enough for the sealing worker); given back once saved.
      buf = this.#buffers.acquire().subarray(0, stats.size);
      let done = 0;
      while (done < stats.size) {
        const n = readSync(fd, buf, done, stats.size - done, done);
        if (n === 0) break;
        done += n;
      }
      buf = buf.subarray(0, done);
      after = fstatSync(fd, { bigint: true });
    } catch (err) {
      await this.#report.readFailed(e, (err as NodeJS.ErrnoException).code ?? 'error');
      return undefined;
    } finally {
      closeSync(fd);
    }
    this.#report.c.bytesRead += buf.length;
    let held: Buffer | undefined = buf;
    return {
      chunks: this.#chunks([buf]),
      saved: (end) => {
        if (held && end >= buf.length) this.#buffers.release(held);
        held = undefined;
      },
      after: () => Promise.resolve(after),
      bytes: buf.length,
      holes: [],
      close: () => Promise.resolve(),
    };
  }

  async #stream(e: ScanEntry): Promise<SourceFile | undefined> {
    const stats = e.stats!;
    let file: FileHandle;
    try {
      file = await open(e.access ?? e.path, OPEN_FLAGS);
    } catch (err) {
      await this.#report.openFailed(e, err);
      return undefined;
    }
    const size = stats.size;
    let extents: [number, number][] | undefined;
    try {
      const other = sameFile(await file.stat({ bigint: true }).catch((err: unknown) => {
        throw new SourceReadError(err);
      }), stats);
      if (other !== undefined) {
        await file.close().catch(() => undefined);
        await this.#report.replaced(e, other);
        return undefined;
      }
      // Sparse files: read the data regions only; the holes are recorded, never stored. Asked of the descriptor
      // being read: another file renamed over the path meanwhile cannot lend its holes.
      extents = e.decision.kind === 'backup-sparse' ? dataExtents(file.fd) : undefined;
    } catch (err) {
      await file.close().catch(() => undefined);
      throw err;
    }
    const regions: [number, number][] = extents ?? [[0, size]];
    const holes: [number, number][] = [];
    if (extents) {
      let pos = 0;
      for (const [start, end] of extents) {
        if (start > pos) holes.push([pos, start - pos]);
        pos = end;
      }
      if (pos < size) holes.push([pos, size - pos]);
    }
    // Read buffers go back for reuse once every chunk that has bytes in them is saved: chunks are saved in stream
    // order, so a buffer is free when the saved chunks reach its end.
    const held: { buf: Buffer; end: number }[] = [];
    const c = this.#report.c;
    let bytes = 0;
    const source = readRegions(file, regions, this.#buffers, this.#signal, (buf) => {
      c.bytesRead += buf.length;
      bytes += buf.length;
      held.push({ buf, end: bytes });
    });
    return {
      chunks: this.#chunks(source),
      saved: (end) => {
        while (held.length > 0 && held[0]!.end <= end) this.#buffers.release(held.shift()!.buf);
      },
      after: () =>
        file.stat({ bigint: true }).catch((err: unknown) => {
          throw new SourceReadError(err);
        }),
      get bytes() {
        return bytes;
      },
      holes,
      close: () => file.close().catch(() => undefined),
    };
  }

  async *#chunks(source: Iterable<Buffer> | AsyncIterable<Buffer>): AsyncGenerator<FileChunk> {
    for await (const chunk of chunkStream(source, this.#vault.keys.gearTable, this.#vault.config.chunker, { signal: this.#signal })) {
      yield { blob: { parts: chunk.parts, length: chunk.length }, end: chunk.offset + chunk.length };
    }
  }
}

/**
 * Reads the regions in 1 MiB pieces into buffers of `buffers`, one piece ahead, so the disk works while the last
 * piece is chunked. `onRead` sees each piece before it is yielded; giving the buffers back is the caller's job.
 */
async function* readRegions(
  file: FileHandle,
  regions: readonly [number, number][],
  buffers: ReadBuffers,
  signal: AbortSignal | undefined,
  onRead: (buf: Buffer) => void,
): AsyncGenerator<Buffer> {
  const pieces = function* (): Generator<[number, number]> {
    for (const [start, end] of regions) for (let pos = start; pos < end; pos += READ_SIZE) yield [pos, Math.min(READ_SIZE, end - pos)];
  };
  const read = async ([pos, n]: [number, number]): Promise<Buffer> => {
    // Shared memory: a chunk's slices reach the sealing worker by reference, not by copy.
    const buf = buffers.acquire().subarray(0, n);
    let done = 0;
    while (done < n) {
      const { bytesRead } = await file.read(buf, done, n - done, pos + done).catch((e: unknown) => {
        throw new SourceReadError(e);
      });
      if (bytesRead === 0) break; // the file shrank while being read; the caller notices and reports it
      done += bytesRead;
    }
    return done === n ? buf : buf.subarray(0, done);
  };
  const it = pieces();
  let next = it.next();
  let pending = next.done ? undefined : read(next.value);
  while (pending) {
    throwIfAborted(signal);
    const buf = await pending;
    next = it.next();
    pending = next.done || buf.length === 0 ? undefined : read(next.value);
    if (buf.length === 0) return;
    onRead(buf);
    yield buf;
  }
}
