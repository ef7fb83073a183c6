/**
 * The optional native addon (binding.gyp, native/*.c), loaded once for every module that uses part of it: the scan's
 * statx, the chunker's gear-hash scan, the restore's whole-file writer and blob opening, and the backup's
 * file sealing and pack hashing.
 *
 * The addon is built at install on Linux; where it is not (another platform, or a failed compile), {@link addon}
 * is `null` and each user falls back to its portable path. Users check for the function they need, so an older
 * build without it also falls back. A build whose `abiVersion` is not {@link ADDON_ABI} (left from another version
 * of the package, its functions' arguments or results laid out differently) is not used at all.
 *
 * @module
 */
import { createRequire } from 'node:module';
import { constants } from 'node:os';

/** The addon interface this code calls (native/statx.c `VP_ABI_VERSION`): raised with any change of layout. */
export const ADDON_ABI = 1;

let loaded: Readonly<Record<string, unknown>> | null | undefined;

/** The exports of a loaded addon when they are of interface {@link ADDON_ABI}, else `null` (use the portable code). */
export function usableAddon(exports: Readonly<Record<string, unknown>>): Readonly<Record<string, unknown>> | null {
  return exports['abiVersion'] === ADDON_ABI ? exports : null;
}

/** The addon's exports, or `null` when it is not built here. */
export function addon(): Readonly<Record<string, unknown>> | null {
  if (loaded !== undefined) return loaded;
  loaded = null;
  if (process.platform !== 'linux') return loaded;
  const require = createRequire(import.meta.url);
  // From src/ or dist/ the package root is one level up; from a nested build output (bench, tests), two.
  for (const candidate of ['../build/Release/vaultpath_statx.node', '../../build/Release/vaultpath_statx.node']) {
    try {
      loaded = usableAddon(require(candidate) as Record<string, unknown>);
      break;
    } catch {
      // not built here; try the next place, then let each user fall back
    }
  }
  return loaded;
}

const ERRNO_NAMES = new Map<number, string>(Object.entries(constants.errno).map(([name, n]) => [n, name]));

/** The name of an errno an addon function reports (`EEXIST`, `ELOOP`, …), or `errno N` for one this platform does not name. */
export function errnoName(errno: number): string {
  return ERRNO_NAMES.get(errno) ?? `errno ${errno}`;
}

/** The addon's function `name` with the type `T` its user declares, or `null` when the addon or the function is missing. */
export function nativeFunction<T extends (...args: never[]) => unknown>(name: string): T | null {
  const fn = addon()?.[name];
  return typeof fn === 'function' ? (fn as T) : null;
}
