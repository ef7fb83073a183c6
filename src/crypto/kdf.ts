/**
 * Argon2id: from passphrase bytes to a 256-bit key-encryption key.
 *
 * The parameters and the salt live in each key slot. Parameters read from a vault come from whoever wrote the
 * vault, so they are checked against {@link KDF_BOUNDS} before the KDF runs: a slot that asks for 64 GiB of memory
 * is refused with `VP_KDF_PARAMS`, not attempted.
 *
 * Where the native addon is built (Linux; native/argon2.c, an Argon2id written from RFC 9106 with its own BLAKE2b),
 * the derivation runs there, on a libuv worker thread: 0.07–0.1 s for the default 64 MiB instead of about 0.5 s,
 * and the calling thread stays free for work that does not need the key (a backup's scan, reading the vault's
 * objects). An abort stops the fill within a few hundred blocks. Lanes (p > 1) are filled in turn, not at once.
 *
 * Without the addon, derivations of real cost (at least {@link KDF_WORKER_MIN_KIB} of memory) run @noble/hashes on
 * a worker thread (kdf-worker.ts), which an abort terminates at once. Cheap ones (tests), and any run where a
 * worker cannot be started, use the async variant of @noble/hashes on the calling thread, which yields to the
 * event loop every few milliseconds and stops between slices when aborted. All paths give the same key.
 *
 * @module
 */
import { nativeFunction } from '../native.js';
import { Worker } from 'node:worker_threads';
import { VaultpathError, throwIfAborted } from '../errors.js';
import { checkBytes } from '../bytes.js';

/** Argon2id cost parameters (RFC 9106), as stored in a key slot. */
export interface KdfParams {
  /** Memory cost in KiB (Argon2 `m`). */
  readonly memoryKiB: number;
  /** Passes over memory (Argon2 `t`). */
  readonly iterations: number;
  /** Lanes (Argon2 `p`). */
  readonly parallelism: number;
}

/**
 * The cost of new key slots: 64 MiB, one pass, one lane.
 *
 * Measured at about 0.07 s on this project's 2-core reference machine with the native addon (about 0.45 s with
 * @noble/hashes, the fallback), and above OWASP's Argon2id floor (46 MiB, t = 1). Every CLI run pays it once.
 * Raising `iterations` adds about 0.04 s a pass natively (0.3 s with @noble/hashes); raising memory costs an
 * attacker more than it costs us.
 */
export const DEFAULT_KDF_PARAMS: KdfParams = Object.freeze({ memoryKiB: 64 * 1024, iterations: 1, parallelism: 1 });

/** Inclusive bounds on parameters accepted from a vault or a caller. */
export interface KdfBounds {
  readonly memoryKiB: { readonly min: number; readonly max: number };
  readonly iterations: { readonly min: number; readonly max: number };
  readonly parallelism: { readonly min: number; readonly max: number };
}

/**
 * The default bounds. Memory tops out at 2 GiB (a backup agent shares its machine; @noble/hashes itself cannot
 * address 4 GiB); 64 passes of 2 GiB would already take minutes. The minimums are Argon2's own (m ≥ 8·p KiB).
 */
export const KDF_BOUNDS: KdfBounds = Object.freeze({
  memoryKiB: Object.freeze({ min: 8, max: 2 * 1024 * 1024 }),
  iterations: Object.freeze({ min: 1, max: 64 }),
  parallelism: Object.freeze({ min: 1, max: 16 }),
});

/** Length of the salt stored in each key slot. */
export const KDF_SALT_LENGTH = 32;

/**
 * Checks `params` against `bounds` without running anything.
 *
 * @throws {VaultpathError} `VP_KDF_PARAMS` naming the parameter, its value and the accepted range.
 */
export function checkKdfParams(params: KdfParams, bounds: KdfBounds = KDF_BOUNDS): void {
  const check = (label: string, value: number, range: { min: number; max: number }, unit = ''): void => {
    if (!Number.isSafeInteger(value) || value < range.min || value > range.max) {
      throw new VaultpathError(
        'VP_KDF_PARAMS',
        `Argon2id ${label} is ${value}${unit}; the accepted range is ${range.min}${unit} to ${range.max}${unit}. ` +
          'The key slot was not tried. If the vault is yours, add a new key slot with default parameters.',
      );
    }
  };
  check('memory', params.memoryKiB, bounds.memoryKiB, ' KiB');
  check('iterations', params.iterations, bounds.iterations);
  check('parallelism', params.parallelism, bounds.parallelism);
  if (params.memoryKiB < 8 * params.parallelism) {
    throw new VaultpathError(
      'VP_KDF_PARAMS',
      `Argon2id memory (${params.memoryKiB} KiB) must be at least 8 KiB per lane (${params.parallelism} lanes).`,
    );
  }
}

export interface DeriveKeyOptions {
  /** Stops the derivation between slices; the promise then rejects with `VP_ABORTED`. */
  readonly signal?: AbortSignal;
  /** Bounds to check the parameters against. @default KDF_BOUNDS */
  readonly bounds?: KdfBounds;
}

/**
 * Derives a 32-byte key from passphrase bytes with Argon2id (version 0x13).
 *
 * @throws {VaultpathError} `VP_KDF_PARAMS` before any work if the parameters are out of bounds;
 *   `VP_ABORTED` if `signal` aborts.
 * @example
 * ```ts
 * const kek = await deriveKey(passphraseBytes(p), salt, DEFAULT_KDF_PARAMS, { signal });
 * ```
 */
export async function deriveKey(
  passphrase: Uint8Array,
  salt: Uint8Array,
  params: KdfParams,
  options: DeriveKeyOptions = {},
): Promise<Uint8Array> {
  return deriveKeyWith(nativeKdfAvailable() ? 'native' : 'noble', passphrase, salt, params, options);
}

/**
 * {@link deriveKey} through a chosen implementation: `native` (the addon; throws if it is not built) or `noble`
 * (@noble/hashes, on a worker thread for derivations of real cost). For tests that hold both to the same answers.
 *
 * @internal
 */
export async function deriveKeyWith(
  implementation: 'native' | 'noble',
  passphrase: Uint8Array,
  salt: Uint8Array,
  params: KdfParams,
  options: DeriveKeyOptions = {},
): Promise<Uint8Array> {
  checkBytes(passphrase, undefined, 'passphrase');
  checkBytes(salt, KDF_SALT_LENGTH, 'salt');
  checkKdfParams(params, options.bounds);
  const { signal } = options;
  throwIfAborted(signal);
  if (implementation === 'native') {
    const addon = loadNative();
    if (!addon) throw new Error('the native Argon2id is not available on this machine');
    return deriveNative(addon, passphrase, salt, params, signal);
  }
  if (params.memoryKiB * params.iterations >= KDF_WORKER_MIN_KIB) {
    const key = await deriveOnWorker(passphrase, salt, params, signal);
    if (key) return key;
  }
  try {
    // Loaded on first use: a CLI run that derives natively or on the worker never compiles it on this thread.
    const { argon2idAsync } = await import('@noble/hashes/argon2.js');
    return await argon2idAsync(passphrase, salt, {
      m: params.memoryKiB,
      t: params.iterations,
      p: params.parallelism,
      dkLen: 32,
      // Argon2 needs m KiB plus a little; the bound check above already capped m.
      maxmem: params.memoryKiB * 1024 + 1024 * 1024,
      asyncTick: 10,
      onProgress: signal ? () => throwIfAborted(signal) : undefined,
    });
  } catch (e) {
    throwIfAborted(signal);
    throw e;
  }
}

/** The addon's Argon2id (native/argon2_napi.c): a 32-byte tag, computed on a libuv worker thread. */
interface NativeArgon2 {
  argon2id(passphrase: Uint8Array, salt: Uint8Array, t: number, memoryKiB: number, p: number, cancel?: Int32Array): Promise<Uint8Array>;
}

/** The addon, or `null` when it is not built (not Linux, or the install could not compile it). */
function loadNative(): NativeArgon2 | null {
  const argon2id = nativeFunction<NativeArgon2['argon2id']>('argon2id');
  return argon2id ? { argon2id } : null;
}

/** True when the native Argon2id is built and loads on this machine ({@link deriveKey} then uses it). */
export function nativeKdfAvailable(): boolean {
  return loadNative() !== null;
}

/**
 * Argon2id in the addon. The addon copies passphrase and salt before returning and wipes its copies, its block
 * memory and the tag when done. On abort the promise rejects at once with `VP_ABORTED` and the fill stops within a
 * few hundred blocks; a key that arrives after an abort is wiped.
 */
function deriveNative(addon: NativeArgon2, passphrase: Uint8Array, salt: Uint8Array, params: KdfParams, signal: AbortSignal | undefined): Promise<Uint8Array> {
  const cancel = new Int32Array(1);
  const job = addon.argon2id(passphrase, salt, params.iterations, params.memoryKiB, params.parallelism, cancel);
  return new Promise((resolve, reject) => {
    let settled = false;
    const onAbort = (): void => {
      Atomics.store(cancel, 0, 1);
      if (settled) return;
      settled = true;
      try {
        throwIfAborted(signal);
      } catch (e) {
        reject(e);
      }
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    job.then(
      (key) => {
        signal?.removeEventListener('abort', onAbort);
        if (settled) key.fill(0);
        else resolve(key);
        settled = true;
      },
      (e: unknown) => {
        signal?.removeEventListener('abort', onAbort);
        if (!settled) reject(new Error(`Argon2id failed: ${(e as Error).message ?? String(e)}`));
        settled = true;
      },
    );
  });
}

/** Derivations that touch at least this much memory (KiB × passes) run on a worker thread. */
export const KDF_WORKER_MIN_KIB = 4 * 1024;

/** Where the compiled worker is: beside this module, or in dist/ when this module runs from source (tests). */
function workerUrl(): URL {
  return import.meta.url.endsWith('.ts') ? new URL('../../dist/crypto/kdf-worker.js', import.meta.url) : new URL('./kdf-worker.js', import.meta.url);
}

/** A worker started ahead of need by {@link prepareKdf}, not yet given a job. */
let prepared: Worker | undefined;

function startWorker(): Worker | undefined {
  try {
    return new Worker(workerUrl());
  } catch {
    return undefined;
  }
}

/**
 * Starts a key-derivation worker ahead of need (a CLI command that will open a vault calls this first), so that
 * its start-up overlaps the caller's own; the next derivation of real cost uses it. An unused prepared worker does
 * not keep the process alive. With the native addon there is no worker to start: this only loads the addon.
 */
export function prepareKdf(): void {
  if (prepared || loadNative()) return; // the native derivation needs no worker
  prepared = startWorker();
  prepared?.unref();
  // A prepared worker that fails to load is dropped; the derivation then starts a worker of its own or runs here.
  const w = prepared;
  w?.once('error', () => prepared === w && (prepared = undefined));
  w?.once('exit', () => prepared === w && (prepared = undefined));
}

/**
 * Argon2id on a worker thread; resolves to undefined when no worker could be started or it failed to load (the
 * caller then derives on this thread). Rejects with `VP_ABORTED` when `signal` aborts (the worker is terminated).
 */
function deriveOnWorker(passphrase: Uint8Array, salt: Uint8Array, params: KdfParams, signal: AbortSignal | undefined): Promise<Uint8Array | undefined> {
  const worker = prepared ?? startWorker();
  prepared = undefined;
  if (!worker) return Promise.resolve(undefined);
  worker.ref(); // a pending derivation keeps the process alive
  return new Promise((resolve, reject) => {
    let settled = false;
    const done = (f: () => void): void => {
      if (settled) return;
      settled = true;
      signal?.removeEventListener('abort', onAbort);
      f();
    };
    const onAbort = (): void => {
      done(() => {
        void worker.terminate();
        try {
          throwIfAborted(signal);
        } catch (e) {
          reject(e);
        }
      });
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    worker.once('message', (m: { key?: Uint8Array; error?: string }) =>
      done(() => (m.key ? resolve(new Uint8Array(m.key.buffer, m.key.byteOffset, m.key.byteLength)) : reject(new Error(`Argon2id failed: ${m.error}`)))),
    );
    // A worker that cannot load (its module missing) or dies: derive on this thread instead.
    worker.once('error', () => done(() => resolve(undefined)));
    worker.once('exit', () => done(() => resolve(undefined)));
    worker.postMessage({ passphrase: Uint8Array.from(passphrase), salt: Uint8Array.from(salt), m: params.memoryKiB, t: params.iterations, p: params.parallelism });
  });
}
