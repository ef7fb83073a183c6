/**
 * Argon2id: from passphrase bytes to a 256-bit key-encryption key.
 *
 * The parameters and the salt live in each key slot. Parameters read from a vault come from whoever wrote the
 * vault, so they are checked against {@link KDF_BOUNDS} before the KDF runs: a slot that asks for 64 GiB of memory
 * is refused with `VP_KDF_PARAMS`, not attempted. The KDF runs in the async variant of @noble/hashes, which yields
 * to the event loop every few milliseconds (progress bars keep moving) and stops between slices when aborted.
 *
 * @module
 */
import { argon2idAsync } from '@noble/hashes/argon2.js';
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
 * Measured at about 0.53 s on this project's 2-core reference machine with @noble/hashes, in line with restic's
 * calibration (0.5 s, 60 MiB of scrypt) since every CLI run pays it once, and above OWASP's Argon2id floor
 * (46 MiB, t = 1). Raising `iterations` adds about 0.2 s a pass here; raising memory costs an attacker more than
 * it costs us.
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
  checkBytes(passphrase, undefined, 'passphrase');
  checkBytes(salt, KDF_SALT_LENGTH, 'salt');
  checkKdfParams(params, options.bounds);
  const { signal } = options;
  throwIfAborted(signal);
  try {
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
