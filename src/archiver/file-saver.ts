/**
 * The archiver's file saver: one file that must be read becomes its tree node. Its chunks (file-reader.ts) are
 * saved one after another through the vault's port (BlobSaver.saveBlob), at most two in flight per file, in order,
 * and the node lists their ids. However the file was read (sealed whole by the addon, read at once, or streamed),
 * every chunk takes this one path.
 *
 * Contracts:
 * - Files run several at once ({@link FILES_IN_FLIGHT}; files sealed whole by the addon many more, weighed by size,
 *   so a job seals a batch of them), large ones one at a time: memory stays bounded by the limits, not the files.
 * - Only a failure to read the source is the file's problem (reported, the file left out); anything else (the
 *   vault, the scratch cache, an abort) fails the backup and is never reported as an unreadable source file.
 * - A file whose size or times changed while it was read is stored as read, with a warning.
 * - Encrypted files (`backup-full`) are stored whole every time (`storeDuplicate`): their chunks are never taken
 *   from earlier backups.
 *
 * @module
 */
import { Limiter } from '../limit.js';
import { ObjectType } from '../crypto/object-type.js';
import type { ScanEntry } from '../scan/scan.js';
import type { TreeNode } from '../repo/tree.js';
import { type BlobSaver, type SavedBlob, SEAL_BATCH, SEAL_BATCH_BYTES } from '../repo/blob-saver.js';
import { type FileChunk, type FileReader, type ReadMode, type SourceFile, SourceReadError, changedWhileRead } from './file-reader.js';
import type { FileBase } from './parent.js';
import type { RunReport } from './report.js';

/** Files backed up at once: enough to overlap one file's open/read/close with another's hashing. */
const FILES_IN_FLIGHT = 4;
/** Files larger than this are backed up one at a time (memory), the others up to FILES_IN_FLIGHT at once. */
const LARGE_FILE = 8 * 1024 * 1024;
/**
 * Bytes of files sealed whole in flight at once (read, sealed, or waiting to be packed), besides their count
 * (SEAL_BATCH × 4): enough for four full sealing jobs. Counted in files alone, 64 files of 256 KiB held 16–20 MiB
 * of sealed bytes at the peak of a first backup; files of a few KiB are bounded by their count, as before.
 */
const WHOLE_FILE_BYTES = 4 * SEAL_BATCH_BYTES;

export class FileSaver {
  readonly #saver: BlobSaver;
  readonly #reader: FileReader;
  readonly #report: RunReport;
  readonly #dryRun: boolean;
  readonly #files = new Limiter(FILES_IN_FLIGHT);
  /** Files sealed whole by the addon (one chunk each): enough in flight for several batches at once. */
  readonly #wholeFiles = new Limiter(SEAL_BATCH * 4, { maxWeight: WHOLE_FILE_BYTES });
  readonly #largeFiles = new Limiter(1);

  constructor(saver: BlobSaver, reader: FileReader, report: RunReport, dryRun: boolean) {
    this.#saver = saver;
    this.#reader = reader;
    this.#report = report;
    this.#dryRun = dryRun;
  }

  /**
   * Backs up file `e` (its node's fields from the scan in `base`; its node in the parent snapshot, if any, in
   * `previous`) once a slot is free; resolves to its node, or undefined when it could not be read (reported).
   */
  save(e: ScanEntry, base: FileBase, previous: TreeNode | undefined): Promise<TreeNode | undefined> {
    const size = e.stats!.size;
    if (this.#dryRun) return Promise.resolve(this.#dryRunNode(base, size, previous));
    const mode = this.#reader.mode(size, base.decision);
    const run = (): Promise<TreeNode | undefined> => this.#save(e, mode, base, previous);
    // A large file holds up to a few chunks of 8 MiB in flight: one at a time, beside the small ones. A file sealed
    // whole holds less than the chunker's minimum: many run at once, sealed a batch per job.
    if (mode === 'whole') return this.#wholeFiles.run(run, size);
    return this.#files.run(size > LARGE_FILE ? () => this.#largeFiles.run(run) : run);
  }

  /** A dry run reads nothing: the file counts as read, with no content. */
  #dryRunNode(base: FileBase, size: number, previous: TreeNode | undefined): TreeNode {
    const c = this.#report.c;
    if (base.decision === 'backup-full' && previous?.type === 'file') c.filesFullOnly++;
    c.files++;
    c.bytesRead += size;
    c.bytesDone += size;
    return { ...base, size, content: [] };
  }

  async #save(e: ScanEntry, mode: ReadMode, base: FileBase, previous: TreeNode | undefined): Promise<TreeNode | undefined> {
    const c = this.#report.c;
    const storeDuplicate = base.decision === 'backup-full';
    if (storeDuplicate && previous?.type === 'file') c.filesFullOnly++;
    // A file the parent snapshot had is probably changed in a few places: its large chunks are identified first and
    // only the new ones sealed. A new file's chunks are probably new: identified and sealed in one go.
    const likelyNew = storeDuplicate || previous?.type !== 'file';
    let file: SourceFile | undefined;
    const inFlight: { chunk: FileChunk; saving: Promise<SavedBlob> }[] = [];
    try {
      file = await this.#reader.open(e, mode);
      if (!file) return undefined;
      const content: string[] = [];
      const settle = async (): Promise<void> => {
        const { chunk, saving } = inFlight.shift()!;
        const { id, known } = await saving;
        content.push(id.toString('hex'));
        if (!known) c.bytesNew += chunk.blob.length;
        c.bytesDone += chunk.blob.length;
        file!.saved(chunk.end);
        if (mode === 'stream') this.#report.progress();
      };
      for await (const chunk of file.chunks) {
        const saving = this.#saver.saveBlob(ObjectType.data, chunk.blob, { storeDuplicate, likelyNew });
        saving.catch(() => undefined); // awaited in order by settle()
        inFlight.push({ chunk, saving });
        if (inFlight.length >= 2) await settle();
      }
      while (inFlight.length > 0) await settle();
      file.saved(Number.POSITIVE_INFINITY);
      const after = await file.after();
      const holeBytes = file.holes.reduce((s, [, l]) => s + l, 0);
      const size = file.bytes + holeBytes;
      c.files++;
      if (mode !== 'stream') this.#report.progress();
      if (changedWhileRead(e.stats!, after, size)) await this.#report.changedWhileRead(e);
      return { ...base, size, content, ...(file.holes.length > 0 ? { holes: file.holes } : {}) };
    } catch (err) {
      if (!(err instanceof SourceReadError)) throw err;
      await this.#report.readFailed(e, (err.cause as NodeJS.ErrnoException).code ?? 'error');
      return undefined;
    } finally {
      // A file that failed part-way may still have a chunk being saved: it settles before the file is done with, so
      // no blob of it reaches the saver once the walk has moved on (and the saver may be finishing).
      if (inFlight.length > 0) await Promise.allSettled(inFlight.map((x) => x.saving));
      await file?.close();
    }
  }
}
