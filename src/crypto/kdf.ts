/**
 * Argon2id: from passphrase bytes to a 256-bit key-encryption key.
 *
 * The parameters and the salt live in each key slot. Parameters read from a vault come from whoever wrote the
 * vault, so they are checked against {@link KDF_BOUNDS} before the KDF runs: a slot that asks for 64 GiB of memory
 * is refused with `VP_KDF_PARAMS`, not attempted. Bounds a caller passes may narrow that range, never go past what
 * Argon2 defines or 4 GiB of memory.
 *
 * Three implementations give the same key, chosen once in this order ({@link kdfImplementation}):
 * - `node`: Node's own `crypto.argon2` (OpenSSL), where the runtime has it (Node 24.7 and later), on the libuv pool;
 * - `node-rs`: @node-rs/argon2, a prebuilt binding (installed as the optional package for this platform), on the
 *   libuv pool: about 0.03 s for the default 64 MiB on the 2-core reference machine;
 * - `noble`: @noble/hashes, portable and about twenty times slower. Derivations of real cost (at least
 *   {@link KDF_WORKER_MIN_KIB} of memory) run on a worker thread (kdf-worker.ts), which an abort terminates at once;
 *   cheap ones (tests), and any run where a worker cannot be started, use the async variant on the calling thread,
 *   which yields to the event loop every few milliseconds and stops between slices when aborted.
 *
 * Aborts: the promise rejects with `VP_ABORTED` as soon as the signal fires, whichever implementation runs. A
 * derivation that has started on the libuv pool cannot be stopped: it runs to its end in the background (holding its
 * memory and a pool thread until then) and its key is wiped unread. @node-rs/argon2 drops one still queued behind
 * others; Node's `crypto.argon2` takes no signal. The docs of `deriveKey`'s `signal` say so too.
 *
 * @module
 */
import { createRequire } from 'node:module';
import * as nodeCrypto from 'node:crypto';
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
 * Measured at about 0.03 s on this project's 2-core reference machine with @node-rs/argon2 (about 0.55 s with
 * @noble/hashes, the fallback), and above OWASP's Argon2id floor (46 MiB, t = 1). Every CLI run pays it once.
 * Raising `iterations` adds a pass's worth each time; raising memory costs an attacker more than it costs us.
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
  // Never wider than what Argon2 itself defines, whatever bounds a caller passes.
  const within = (r: { min: number; max: number }, l: { min: number; max: number }) => ({ min: Math.max(r.min, l.min), max: Math.min(r.max, l.max) });
  check('memory', params.memoryKiB, within(bounds.memoryKiB, ARGON2_LIMITS.memoryKiB), ' KiB');
  check('iterations', params.iterations, within(bounds.iterations, ARGON2_LIMITS.iterations));
  check('parallelism', params.parallelism, within(bounds.parallelism, ARGON2_LIMITS.parallelism));
  if (params.memoryKiB < 8 * params.parallelism) {
    throw new VaultpathError(
      'VP_KDF_PARAMS',
      `Argon2id memory (${params.memoryKiB} KiB) must be at least 8 KiB per lane (${params.parallelism} lanes).`,
    );
  }
}

/**
 * What Argon2 itself defines, and the most memory any implementation here is asked for: every check is narrowed to
 * these, so bounds looser than these cannot send an implementation parameters it would misread or a 5 GiB fill.
 */
const ARGON2_LIMITS: KdfBounds = Object.freeze({
  memoryKiB: Object.freeze({ min: 8, max: 4 * 1024 * 1024 }),
  iterations: Object.freeze({ min: 1, max: 0xffff_ffff }),
  parallelism: Object.freeze({ min: 1, max: 0xff_ffff }),
});

export interface DeriveKeyOptions {
  /**
   * Rejects the promise with `VP_ABORTED` at once. A derivation already running on the libuv pool cannot be stopped:
   * it finishes in the background and its key is discarded.
   */
  readonly signal?: AbortSignal;
  /** Bounds to check the parameters against. @default KDF_BOUNDS */
  readonly bounds?: KdfBounds;
}

/** The Argon2id implementations, in the order {@link kdfImplementation} prefers them. */
export type KdfImplementation = 'node' | 'node-rs' | 'noble';

/** Node's `crypto.argon2` (Node 24.7+), declared here since the type definitions for Node 20 lack it. */
export type NodeArgon2 = (
  algorithm: 'argon2id',
  parameters: { message: Uint8Array; nonce: Uint8Array; parallelism: number; tagLength: number; memory: number; passes: number },
  callback: (err: Error | null, derivedKey: Uint8Array) => void,
) => void;

/** The part of @node-rs/argon2 used here: the raw tag (`algorithm` 2 is Argon2id, `version` 1 is 0x13). */
export interface NodeRsArgon2 {
  hashRaw(
    password: Uint8Array,
    options: { algorithm: 2; version: 1; memoryCost: number; timeCost: number; parallelism: number; outputLen: number; salt: Uint8Array },
    abortSignal?: AbortSignal,
  ): Promise<Uint8Array>;
}

/**
 * Where the fast implementations come from, each `null` when absent. The defaults look at the running Node and load
 * the library; tests pass their own to see the choice and the fallbacks.
 *
 * @internal
 */
export interface KdfProviders {
  node(): NodeArgon2 | null;
  nodeRs(): NodeRsArgon2 | null;
}

/** Node's `crypto.argon2`, or `null` on a runtime without it (Node before 24.7, which includes 20 and 22). */
export function nodeArgon2(): NodeArgon2 | null {
  const fn = (nodeCrypto as unknown as { argon2?: unknown }).argon2;
  return typeof fn === 'function' ? (fn as NodeArgon2) : null;
}

/**
 * @node-rs/argon2 loaded through `specifier`, or `null` when it cannot be: the package or this platform's prebuilt
 * binary is missing (an install that skipped optional packages, a platform without a prebuilt), or it fails to load.
 *
 * @internal
 */
export function loadNodeRsArgon2(specifier = '@node-rs/argon2'): NodeRsArgon2 | null {
  try {
    const lib = createRequire(import.meta.url)(specifier) as Partial<NodeRsArgon2> | undefined;
    return typeof lib?.hashRaw === 'function' ? (lib as NodeRsArgon2) : null;
  } catch {
    return null;
  }
}

let nodeRsLoaded: NodeRsArgon2 | null | undefined;

/** The default providers: the library is loaded once, on first use. */
const DEFAULT_KDF_PROVIDERS: KdfProviders = Object.freeze({
  node: nodeArgon2,
  nodeRs: () => (nodeRsLoaded === undefined ? (nodeRsLoaded = loadNodeRsArgon2()) : nodeRsLoaded),
});

/**
 * The implementation {@link deriveKey} uses here: Node's own where the runtime has it, else @node-rs/argon2 where it
 * loads, else @noble/hashes.
 */
export function kdfImplementation(providers: KdfProviders = DEFAULT_KDF_PROVIDERS): KdfImplementation {
  if (providers.node()) return 'node';
  if (providers.nodeRs()) return 'node-rs';
  return 'noble';
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
  return deriveKeyWith(kdfImplementation(), passphrase, salt, params, options);
}

/**
 * {@link deriveKey} through a chosen implementation (which throws if `providers` lack it). For tests that hold every
 * implementation to the same answers.
 *
 * @internal
 */
export async function deriveKeyWith(
  implementation: KdfImplementation,
  passphrase: Uint8Array,
  salt: Uint8Array,
  params: KdfParams,
  options: DeriveKeyOptions = {},
  providers: KdfProviders = DEFAULT_KDF_PROVIDERS,
): Promise<Uint8Array> {
  checkBytes(passphrase, undefined, 'passphrase');
  checkBytes(salt, KDF_SALT_LENGTH, 'salt');
  checkKdfParams(params, options.bounds);
  const { signal } = options;
  throwIfAborted(signal);
  if (implementation === 'node') {
    const argon2 = providers.node();
    if (!argon2) throw new Error("Node's crypto.argon2 is not available in this runtime");
    return deriveOnPool(signal, (input) =>
      new Promise<Uint8Array>((resolve, reject) =>
        argon2(
          'argon2id',
          { message: input, nonce: Uint8Array.from(salt), parallelism: params.parallelism, tagLength: 32, memory: params.memoryKiB, passes: params.iterations },
          (err, key) => (err ? reject(err) : resolve(key)),
        ),
      ),
      passphrase,
    );
  }
  if (implementation === 'node-rs') {
    const lib = providers.nodeRs();
    if (!lib) throw new Error('@node-rs/argon2 is not available on this machine');
    const options_ = {
      algorithm: 2,
      version: 1,
      memoryCost: params.memoryKiB,
      timeCost: params.iterations,
      parallelism: params.parallelism,
      outputLen: 32,
      salt: Uint8Array.from(salt),
    } as const;
    return deriveOnPool(signal, (input) => lib.hashRaw(input, options_, signal), passphrase);
  }
  if (params.memoryKiB * params.iterations >= KDF_WORKER_MIN_KIB) {
    const key = await deriveOnWorker(passphrase, salt, params, signal);
    if (key) return key;
  }
  try {
    // Loaded on first use: a CLI run that derives on the pool or on the worker never compiles it on this thread.
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

/**
 * Runs `derive` on a copy of the passphrase (so that the caller may wipe its own bytes as soon as this settles,
 * while a derivation it abandoned still reads the copy) and settles with its key, copied into memory of its own.
 * On abort it rejects with `VP_ABORTED` at once; the derivation, which cannot be stopped, runs on, and its key and
 * the copy of the passphrase are wiped when it ends.
 */
function deriveOnPool(signal: AbortSignal | undefined, derive: (passphrase: Uint8Array) => Promise<Uint8Array>, passphrase: Uint8Array): Promise<Uint8Array> {
  const input = Buffer.from(passphrase);
  return new Promise((resolve, reject) => {
    let settled = false;
    const onAbort = (): void => {
      if (settled) return;
      settled = true;
      try {
        throwIfAborted(signal);
      } catch (e) {
        reject(e);
      }
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    const finish = (): void => {
      signal?.removeEventListener('abort', onAbort);
      input.fill(0);
    };
    let job: Promise<Uint8Array>;
    try {
      job = derive(input);
    } catch (e) {
      job = Promise.reject(e as Error);
    }
    job.then(
      (tag) => {
        finish();
        if (!settled) {
          settled = true;
          resolve(Uint8Array.from(tag));
        }
        tag.fill(0);
      },
      (e: unknown) => {
        finish();
        if (settled) return;
        settled = true;
        reject(new Error(`Argon2id failed: ${(e as Error)?.message ?? String(e)}`));
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
 * not keep the process alive. Where Node's Argon2id or @node-rs/argon2 is there, no worker is needed: this only
 * loads the library.
 */
export function prepareKdf(): void {
  if (prepared || kdfImplementation() !== 'noble') return;
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
