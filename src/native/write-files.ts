/**
 * The addon's whole-file writer (native/napi/write_file.c), for restoring small files off the event loop.
 *
 * The files asked for in one turn of the event loop are written by one libuv thread-pool job (batch.ts). Every file
 * is named by a folder the caller holds open (its descriptor) and single names in it, never by a path, so a folder
 * swapped for a link while the job runs cannot send a file elsewhere. For each file, the job refuses a folder at the
 * name (EISDIR), creates the temporary name exclusively with O_NOFOLLOW (mode 0600), writes the chunks in order,
 * sets the mode (permission bits only) and both times to the nanosecond (before 1970 too), checks that the temporary
 * name still holds the file it wrote, closes, and renames it over the name (a rename replaces a link there, it never
 * follows it). It resolves to `undefined` on success; else to the errno's name (the temporary file it created is
 * removed), or to `VP_UNSAFE_PATH` when the temporary name was swapped for another file or a link while it was
 * written (nothing is renamed, nothing removed). The chunks are not copied: their bytes must not change until the
 * promise settles; the folder's descriptor must stay open until then.
 *
 * {@link nativeWriter} is `null` where the addon is not built (not Linux, or the install could not compile it);
 * the caller then writes with Node's own calls.
 *
 * @module
 */
import { splitTimeNs } from '../repo/tree.js';
import { batched } from './batch.js';
import { WRITE_SWAPPED, errnoName, nativeFunction } from './addon.js';

/** Files written by one thread-pool job at most. */
const WRITE_BATCH = 16;

/**
 * Writes one whole file as `name` in the open folder `dir`, through the temporary name `temp` in the same folder;
 * resolves to `undefined` on success, else `VP_UNSAFE_PATH` or the errno's name (`EEXIST`, `EISDIR`, `ENOSPC`, …).
 */
export type NativeWriteFile = (
  dir: number,
  temp: Uint8Array | string,
  name: Uint8Array | string,
  chunks: readonly Uint8Array[],
  mode: number,
  mtimeNs: bigint,
) => Promise<string | undefined>;

let loaded: NativeWriteFile | null | undefined;

/** The native writer, or `null` when the addon is not built or has no writer. Loaded once. */
export function nativeWriter(): NativeWriteFile | null {
  if (loaded !== undefined) return loaded;
  const writeFiles = nativeFunction('writeFiles');
  const write = writeFiles ? batched(WRITE_BATCH, writeFiles) : undefined;
  loaded = write
    ? async (dir, temp, name, chunks, mode, mtimeNs) => {
        const { seconds, nanoseconds } = splitTimeNs(mtimeNs);
        const rc = await write({ dir, temp, name, chunks, mode, seconds: Number(seconds), nanoseconds });
        return rc === 0 ? undefined : rc === WRITE_SWAPPED ? 'VP_UNSAFE_PATH' : errnoName(rc);
      }
    : null;
  return loaded;
}
