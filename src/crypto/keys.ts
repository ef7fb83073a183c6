/**
 * The master key and the subkeys derived from it.
 *
 * A vault has one random 256-bit master key, wrapped by each key slot. Nothing is ever encrypted or hashed under
 * the master key itself: HKDF-SHA256 (RFC 5869, no salt) derives one subkey per job, each with its own label, so
 * a key used for one job can never be confused with another (domain separation):
 *
 * | label                          | length | job                                               |
 * |--------------------------------|--------|---------------------------------------------------|
 * | `vaultpath/v1/seal`            | 32     | root of the per-object AES-256-GCM keys           |
 * | `vaultpath/v1/chunk-id`        | 32     | HMAC-SHA256 key of chunk ids                      |
 * | `vaultpath/v1/chunker-gear`    | 1024   | the 256-entry FastCDC gear table                  |
 * | `vaultpath/v1/local-cache`     | 32     | HMAC-SHA256 key of local cache files (not stored) |
 *
 * @module
 */
import { hkdfSync, randomBytes } from 'node:crypto';
import { checkBytes } from '../bytes.js';

/** Length of the master key and of every symmetric subkey. */
export const KEY_LENGTH = 32;

export const SUBKEY_LABELS = Object.freeze({
  seal: 'vaultpath/v1/seal',
  chunkId: 'vaultpath/v1/chunk-id',
  chunkerGear: 'vaultpath/v1/chunker-gear',
  localCache: 'vaultpath/v1/local-cache',
});

/** Generates a new random master key from the system CSPRNG. */
export function generateMasterKey(): Uint8Array {
  return new Uint8Array(randomBytes(KEY_LENGTH));
}

/**
 * The working keys of an open vault. Holds the master key only to re-wrap it into a new key slot.
 *
 * @example
 * ```ts
 * const keys = VaultKeys.fromMasterKey(masterKey);
 * const sealed = sealObject(keys, ObjectType.snapshot, id, bytes);
 * ```
 */
export class VaultKeys {
  /** Root of the per-object sealing keys. */
  readonly sealKey: Buffer;
  /** HMAC-SHA256 key of chunk ids. */
  readonly chunkIdKey: Buffer;
  /** The gear table of the keyed chunker (256 × u32). */
  readonly gearTable: Uint32Array;
  /** HMAC-SHA256 key that authenticates files this machine keeps beside the vault (the index cache). */
  readonly localCacheKey: Buffer;
  readonly #masterKey: Uint8Array;

  private constructor(masterKey: Uint8Array) {
    this.#masterKey = Uint8Array.from(masterKey);
    this.sealKey = Buffer.from(subkey(masterKey, SUBKEY_LABELS.seal, KEY_LENGTH));
    this.chunkIdKey = Buffer.from(subkey(masterKey, SUBKEY_LABELS.chunkId, KEY_LENGTH));
    this.localCacheKey = Buffer.from(subkey(masterKey, SUBKEY_LABELS.localCache, KEY_LENGTH));
    const gear = subkey(masterKey, SUBKEY_LABELS.chunkerGear, 256 * 4);
    const view = new DataView(gear.buffer, gear.byteOffset, gear.byteLength);
    this.gearTable = new Uint32Array(256);
    for (let i = 0; i < 256; i++) this.gearTable[i] = view.getUint32(i * 4, true);
  }

  /** Derives the subkeys of `masterKey` (32 bytes). */
  static fromMasterKey(masterKey: Uint8Array): VaultKeys {
    checkBytes(masterKey, KEY_LENGTH, 'masterKey');
    return new VaultKeys(masterKey);
  }

  /** A copy of the master key, to wrap it into another key slot. */
  masterKey(): Uint8Array {
    return Uint8Array.from(this.#masterKey);
  }

  /** Overwrites every key held by this object with zeros; it is unusable afterwards. */
  wipe(): void {
    this.#masterKey.fill(0);
    this.sealKey.fill(0);
    this.chunkIdKey.fill(0);
    this.localCacheKey.fill(0);
    this.gearTable.fill(0);
  }
}

/** HKDF-SHA256 without a salt (RFC 5869: HashLen zero bytes, which HMAC pads like an empty key). */
function subkey(masterKey: Uint8Array, label: string, length: number): Uint8Array {
  return new Uint8Array(hkdfSync('sha256', masterKey, new Uint8Array(0), label, length));
}
