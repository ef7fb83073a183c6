/**
 * File calls relative to an open folder, for the restore: every name is one entry of a folder held open as a
 * descriptor, so a folder above renamed away or swapped for a symbolic link mid-restore can never redirect a call.
 *
 * Two implementations with the same contract ({@link FsAt}):
 * - {@link addonFsAt}: the addon's openat family (native/kernels/fs_at.c), with openat2 RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS
 *   where the kernel has it.
 * - {@link procFsAt}: Node's own calls on `/proc/self/fd/<dirfd>/<name>` (Linux without the addon). The kernel
 *   resolves the `/proc/self/fd/<dirfd>` link to the open folder itself (not to whatever its path names now), then
 *   only `<name>` in it, with O_NOFOLLOW / O_EXCL for the same guarantees. Times are set to the microsecond there
 *   (Node's futimes takes a double) unless the addon's `fsSetTimes` is present.
 *
 * Which one a run takes is chosen once, from the `descriptorCalls` port (src/native/ports.ts): the addon's calls, or
 * `null` (no addon), so a test takes the `/proc` path, futimes included, by passing kernels rather than mocking.
 *
 * Contract: names are single entries (never empty, `.`, `..`, holding `/` or NUL: such a name throws EINVAL before
 * any call); nothing follows a link at a name except {@link FsAt.openDir}'s refusal (ELOOP). Failures throw an
 * `Error` whose `code` is the errno's name, as Node's calls do.
 *
 * @module
 */
import { closeSync, constants, existsSync, fstatSync, futimesSync, lstatSync, mkdirSync, openSync, readdirSync, renameSync, rmdirSync, symlinkSync, unlinkSync } from 'node:fs';
import { type AddonFunctions, errnoName, nativeFunction } from '../native/addon.js';
import { splitTimeNs } from '../repo/tree.js';

/** What {@link FsAt.stat} tells of an entry. */
export interface EntryStat {
  /** The full `st_mode` (type and permission bits). */
  readonly mode: number;
  readonly dev: bigint;
  readonly ino: bigint;
  readonly uid: number;
}

export interface FsAt {
  readonly kind: 'addon' | 'proc';
  /** Opens folder `name` of `dir` (O_DIRECTORY|O_NOFOLLOW); a link there throws ELOOP, a file ENOTDIR. */
  openDir(dir: number, name: Uint8Array): number;
  mkdir(dir: number, name: Uint8Array, mode: number): void;
  /** Creates `name` exclusively for writing (O_CREAT|O_EXCL|O_NOFOLLOW): whatever is there, even a link, throws EEXIST. */
  create(dir: number, name: Uint8Array, mode: number): number;
  /** Renames within one folder; a link at `to` is replaced, never followed. */
  rename(dir: number, from: Uint8Array, to: Uint8Array): void;
  symlink(target: string, dir: number, name: Uint8Array): void;
  unlink(dir: number, name: Uint8Array, folder: boolean): void;
  /** The entry `name` of `dir` (a link itself, not followed), or with `name` null, the open file `dir`. */
  stat(dir: number, name: Uint8Array | null): EntryStat;
  /** Sets the access and modification times of the open file `fd` to `ns` nanoseconds since the epoch. */
  setTimes(fd: number, ns: bigint): void;
  /** The names in open folder `dir`, as bytes. */
  list(dir: number): Buffer[];
}

function errnoError(rc: number, what: string): Error {
  const code = errnoName(rc);
  return Object.assign(new Error(`${what} failed (${code})`), { code });
}

function checkName(name: Uint8Array): void {
  const bad = name.length === 0 || name.includes(0x2f) || name.includes(0) || (name.length <= 2 && name.every((b) => b === 0x2e));
  if (bad) throw Object.assign(new Error('not a single safe name'), { code: 'EINVAL' });
}

const CALL_NAMES = ['fsOpenDir', 'fsMkdir', 'fsCreate', 'fsRename', 'fsSymlink', 'fsUnlink', 'fsStat', 'fsSetTimes'] as const;

/** The addon's descriptor-relative calls (native/napi/fs_at.c), as the `descriptorCalls` port hands them out. */
export type DescriptorCalls = Pick<AddonFunctions, (typeof CALL_NAMES)[number]>;

let nativeCalls: DescriptorCalls | null | undefined;

/** The addon's descriptor-relative calls, or `null` where the addon (or one of them) is not built. */
export function nativeDescriptorCalls(): DescriptorCalls | null {
  if (nativeCalls === undefined) nativeCalls = addonCalls();
  return nativeCalls;
}

function addonCalls(): DescriptorCalls | null {
  const out: Partial<DescriptorCalls> = {};
  for (const n of CALL_NAMES) {
    const fn = nativeFunction(n);
    if (!fn) return null;
    Object.assign(out, { [n]: fn });
  }
  return out as DescriptorCalls;
}

/** Lists an open folder through its `/proc/self/fd` link: the folder itself, whatever its path is now. */
function listOpen(dir: number): Buffer[] {
  return readdirSync(`/proc/self/fd/${dir}`, { encoding: 'buffer' });
}

const addonImpls = new WeakMap<DescriptorCalls, FsAt>();

/** {@link FsAt} over the addon's descriptor-relative calls `a`, or `null` where they are not built. */
export function addonFsAt(a: DescriptorCalls | null = nativeDescriptorCalls()): FsAt | null {
  if (!a) return null;
  const made = addonImpls.get(a);
  if (made) return made;
  const out = new BigInt64Array(4);
  const check = (rc: number, what: string): void => {
    if (rc !== 0) throw errnoError(rc, what);
  };
  const impl: FsAt = {
    kind: 'addon',
    openDir(dir, name) {
      const fd = a.fsOpenDir(dir, name);
      if (fd < 0) throw errnoError(-fd, 'openat');
      return fd;
    },
    mkdir: (dir, name, mode) => check(a.fsMkdir(dir, name, mode), 'mkdirat'),
    create(dir, name, mode) {
      const fd = a.fsCreate(dir, name, mode);
      if (fd < 0) throw errnoError(-fd, 'openat');
      return fd;
    },
    rename: (dir, from, to) => check(a.fsRename(dir, from, to), 'renameat'),
    symlink: (target, dir, name) => check(a.fsSymlink(target, dir, name), 'symlinkat'),
    unlink: (dir, name, folder) => check(a.fsUnlink(dir, name, folder), 'unlinkat'),
    stat(dir, name) {
      check(a.fsStat(dir, name, out), 'fstatat');
      return { mode: Number(out[0]), dev: BigInt.asUintN(64, out[1]!), ino: BigInt.asUintN(64, out[2]!), uid: Number(out[3]) };
    },
    setTimes(fd, ns) {
      const { seconds, nanoseconds } = splitTimeNs(ns);
      check(a.fsSetTimes(fd, Number(seconds), nanoseconds), 'futimens');
    },
    list: listOpen,
  };
  addonImpls.set(a, impl);
  return impl;
}

/** Whether this system has `/proc/self/fd`, which {@link procFsAt} needs. */
export function procFsAtUsable(): boolean {
  return process.platform === 'linux' && existsSync('/proc/self/fd');
}

const PROC_PREFIX = new Map<number, Buffer>();

/** `/proc/self/fd/<dir>/<name>` as bytes: names that are not UTF-8 pass through exactly. */
function at(dir: number, name: Uint8Array): Buffer {
  checkName(name);
  let prefix = PROC_PREFIX.get(dir);
  if (!prefix) {
    prefix = Buffer.from(`/proc/self/fd/${dir}/`);
    if (PROC_PREFIX.size < 4096) PROC_PREFIX.set(dir, prefix);
  }
  return Buffer.concat([prefix, name]);
}

/**
 * Node's own calls through `/proc/self/fd/<dirfd>/<name>`: the same guarantees as the addon, on Linux. Times are set
 * by the `fsSetTimes` of `calls()` where there is one (to the nanosecond), else by futimes.
 */
function procFsAtWith(calls: () => DescriptorCalls | null): FsAt {
  return {
    kind: 'proc',
    openDir: (dir, name) => openSync(at(dir, name), constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW),
    mkdir: (dir, name, mode) => mkdirSync(at(dir, name), { mode }),
    create: (dir, name, mode) => openSync(at(dir, name), constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, mode),
    rename: (dir, from, to) => renameSync(at(dir, from), at(dir, to)),
    symlink: (target, dir, name) => symlinkSync(target, at(dir, name)),
    unlink: (dir, name, folder) => (folder ? rmdirSync(at(dir, name)) : unlinkSync(at(dir, name))),
    stat(dir, name) {
      const st = name === null ? fstatSync(dir, { bigint: true }) : lstatSync(at(dir, name), { bigint: true });
      return { mode: Number(st.mode), dev: st.dev, ino: st.ino, uid: Number(st.uid) };
    },
    setTimes(fd, ns) {
      const precise = calls()?.fsSetTimes;
      const { seconds, nanoseconds } = splitTimeNs(ns);
      if (precise) {
        const rc = precise(fd, Number(seconds), nanoseconds);
        if (rc !== 0) throw errnoError(rc, 'futimens');
        return;
      }
      futimesSync(fd, ...nodeTimes(seconds, nanoseconds));
    },
    list: listOpen,
  };
}

/** {@link procFsAtWith} the addon's calls where it is built. */
export const procFsAt: FsAt = procFsAtWith(nativeDescriptorCalls);

/**
 * The descriptor calls a restore uses, chosen once per run: the addon's (`calls`) when they and its whole-file
 * writer (`writer`) are there, else `/proc/self/fd` (times set by `calls`' `fsSetTimes` if any), else `null`: no way
 * to restore without following paths.
 */
export function chooseFsAt(calls: DescriptorCalls | null, writer: boolean): FsAt | null {
  return (writer ? addonFsAt(calls) : null) ?? (procFsAtUsable() ? procFsAtWith(() => calls) : null);
}

/**
 * A time as Node's own calls take it: seconds as a double (to the microsecond) from 1970 on; before 1970 a Date (to
 * the millisecond), as Node takes a negative number of seconds to mean "now".
 */
export function nodeTimes(seconds: bigint, nanoseconds: number): [number | Date, number | Date] {
  const t = seconds >= 0n ? Number(seconds) + nanoseconds / 1e9 : new Date(Number(seconds) * 1000 + Math.floor(nanoseconds / 1e6));
  return [t, t];
}

/** Closes `fd`, ignoring a failure (there is nothing to do about one, and the descriptor is gone either way). */
export function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // already closed or EIO on close: the descriptor is released regardless
  }
}
