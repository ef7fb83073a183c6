/**
 * The addon's whole-file writer (native/write_file.c), for restoring small files off the event loop.
 *
 * The files asked for in one turn of the event loop are written by one libuv thread-pool job (batch.ts). For each
 * file, the job refuses a folder at the final path (EISDIR), creates the temporary name exclusively with O_NOFOLLOW
 * (mode 0600), writes the chunks in order, sets the mode (permission bits only) and both times to the nanosecond,
 * closes, and renames the temporary file over the final path (a rename replaces a link there, it never follows it). On failure the temporary file it created is removed and the promise resolves
 * to the errno's name; it resolves to `undefined` on success. The chunks are not copied: their bytes must not
 * change until the promise settles.
 *
 * {@link nativeWriter} is `null` where the addon is not built (not Linux, or the install could not compile it);
 * the caller then writes with Node's own calls.
 *
 * @module
 */
import { errnoName, nativeFunction } from '../native.js';
import { batched } from './batch.js';

/** The addon's `writeFiles` as it is called (see native/write_file.c). @internal */
export type AddonWriteFiles = (
  files: readonly { temp: string; path: string; chunks: readonly Uint8Array[]; mode: number; seconds: number; nanoseconds: number }[],
) => Promise<Int32Array>;

/** Files written by one thread-pool job at most. */
const WRITE_BATCH = 16;

/** Writes one whole file; resolves to `undefined` on success, else the errno's name (`EEXIST`, `ELOOP`, …). */
export type NativeWriteFile = (temp: string, path: string, chunks: readonly Uint8Array[], mode: number, mtimeNs: bigint) => Promise<string | undefined>;

let loaded: NativeWriteFile | null | undefined;

/** The native writer, or `null` when the addon is not built or has no writer. Loaded once. */
export function nativeWriter(): NativeWriteFile | null {
  if (loaded !== undefined) return loaded;
  const writeFiles = nativeFunction<AddonWriteFiles>('writeFiles');
  const write = writeFiles ? batched(WRITE_BATCH, writeFiles) : undefined;
  loaded = write
    ? async (temp, path, chunks, mode, mtimeNs) => {
        const nanoseconds = ((mtimeNs % 1_000_000_000n) + 1_000_000_000n) % 1_000_000_000n; // 0..999999999, also before 1970
        const seconds = (mtimeNs - nanoseconds) / 1_000_000_000n;
        const rc = await write({ temp, path, chunks, mode, seconds: Number(seconds), nanoseconds: Number(nanoseconds) });
        return rc === 0 ? undefined : errnoName(rc);
      }
    : null;
  return loaded;
}
