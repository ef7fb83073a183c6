/**
 * Key slots: the vault's master key wrapped under a passphrase.
 *
 * ```
 *  offset  size  field
 *  0       4     magic                     "VPKS" (56 50 4b 53)
 *  4       1     format version            (0x01)
 *  5       1     object type               (0x02, key slot)
 *  6       1     KDF algorithm             (0x01 = Argon2id, version 0x13)
 *  7       1     reserved                  (0x00)
 *  8       4     Argon2 memory, KiB        (u32 little-endian)
 *  12      4     Argon2 iterations         (u32 little-endian)
 *  16      4     Argon2 parallelism        (u32 little-endian)
 *  20      32    KDF salt                  (random)
 *  52      24    wrap nonce                (random, XChaCha20-Poly1305)
 *  76      48    wrapped master key        (32 bytes ciphertext ‖ 16 bytes Poly1305 tag)
 *  124     32    checksum                  (SHA-256 of bytes 0..123)
 *  156           end
 *  wrap key = Argon2id(passphrase, salt, params)     associated data = bytes 0..75 ‖ slot id (32 bytes)
 * ```
 *
 * The master key is wrapped with XChaCha20-Poly1305 from @noble/ciphers: a 24-byte random nonce is safe to draw at
 * random, and each slot's key is fresh anyway (its own salt). The associated data binds the KDF parameters and the
 * slot's id (its name in the vault), so parameters cannot be lowered and slots cannot be renamed unnoticed.
 *
 * The unkeyed checksum tells a damaged slot (a torn write, a flipped bit) from a wrong passphrase: it is checked
 * first, so damage is reported as `VP_KEY_SLOT_DAMAGED` without running the KDF, and an intact slot that does not
 * open means `VP_WRONG_PASSPHRASE`. Someone who alters a slot on purpose can recompute the checksum; such a slot
 * then reads as a wrong passphrase, which is still a refusal.
 *
 * Several slots can wrap the same master key: adding a slot under a new passphrase and removing the old one changes
 * the passphrase without re-encrypting any data.
 *
 * @module
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { VaultpathError } from '../errors.js';
import { checkBytes, toHex } from '../bytes.js';
import { ObjectType } from './object-type.js';
import { type KdfBounds, type KdfParams, DEFAULT_KDF_PARAMS, KDF_SALT_LENGTH, checkKdfParams, deriveKey } from './kdf.js';
import { passphraseBytes } from './passphrase.js';
import { KEY_LENGTH } from './keys.js';

/** Length of an encoded key slot. */
export const KEY_SLOT_LENGTH = 156;
/** Length of a key slot id (its name in the vault is the id in hex). */
export const KEY_SLOT_ID_LENGTH = 32;

const MAGIC = Buffer.from('VPKS', 'latin1');
const VERSION = 1;
const KDF_ARGON2ID = 1;
const AAD_END = 76;
const CHECKSUM_START = 124;

/** A decoded key slot: everything but the master key, which needs the passphrase. */
export interface KeySlot {
  readonly id: Buffer;
  readonly kdf: KdfParams;
  readonly salt: Buffer;
  /** The encoded slot, as stored. */
  readonly bytes: Buffer;
}

export interface CreateKeySlotOptions {
  /** Argon2id cost of the new slot. @default DEFAULT_KDF_PARAMS */
  readonly kdf?: KdfParams;
  readonly signal?: AbortSignal;
}

/**
 * Wraps `masterKey` under `passphrase` into a new key slot with a fresh id, salt and nonce.
 *
 * @throws {VaultpathError} `VP_PASSPHRASE_POLICY` if the passphrase breaks the rules for new passphrases;
 *   `VP_KDF_PARAMS` for parameters out of bounds; `VP_ABORTED`.
 * @example
 * ```ts
 * const slot = await createKeySlot(keys.masterKey(), 'a passphrase of sixteen+', { signal });
 * await store.put(`keys/${slot.id.toString('hex')}`, slot.bytes);
 * ```
 */
export async function createKeySlot(
  masterKey: Uint8Array,
  passphrase: string,
  options: CreateKeySlotOptions = {},
): Promise<KeySlot> {
  checkBytes(masterKey, KEY_LENGTH, 'masterKey');
  const secret = passphraseBytes(passphrase, { isNew: true });
  const kdf = options.kdf ?? DEFAULT_KDF_PARAMS;
  checkKdfParams(kdf);
  const id = randomBytes(KEY_SLOT_ID_LENGTH);
  const salt = randomBytes(KDF_SALT_LENGTH);
  const bytes = Buffer.alloc(KEY_SLOT_LENGTH);
  MAGIC.copy(bytes, 0);
  bytes[4] = VERSION;
  bytes[5] = ObjectType.keySlot;
  bytes[6] = KDF_ARGON2ID;
  bytes[7] = 0;
  bytes.writeUInt32LE(kdf.memoryKiB, 8);
  bytes.writeUInt32LE(kdf.iterations, 12);
  bytes.writeUInt32LE(kdf.parallelism, 16);
  salt.copy(bytes, 20);
  randomBytes(24).copy(bytes, 52);
  const cipher = xchacha();
  const kek = await deriveKey(secret, salt, kdf, { signal: options.signal });
  const wrapped = (await cipher)(kek, bytes.subarray(52, 76), aad(bytes, id)).encrypt(masterKey);
  kek.fill(0);
  bytes.set(wrapped, 76);
  checksum(bytes).copy(bytes, CHECKSUM_START);
  return { id, kdf: { ...kdf }, salt, bytes };
}

/**
 * Decodes a key slot read from the vault under the name `keys/<hex id>`, checking everything that can be checked
 * without the passphrase: length, magic, version, checksum, KDF algorithm and parameter bounds.
 *
 * @throws {VaultpathError} `VP_KEY_SLOT_DAMAGED` (truncated, not a key slot, checksum mismatch),
 *   `VP_UNSUPPORTED_VERSION`, `VP_KDF_PARAMS`.
 */
export function decodeKeySlot(id: Uint8Array, bytes: Uint8Array, bounds?: KdfBounds): KeySlot {
  checkBytes(id, KEY_SLOT_ID_LENGTH, 'id');
  // Checked in place: an object of any size under keys/ is measured before a byte of it is copied.
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const where = `Key slot ${toHex(id)}`;
  if (buf.length < 8 || !buf.subarray(0, 4).equals(MAGIC)) {
    throw damaged(`${where} is not a key slot (${buf.length} bytes, no "VPKS" magic)`);
  }
  if (buf[4] !== VERSION) {
    throw new VaultpathError(
      'VP_UNSUPPORTED_VERSION',
      `${where} has format version ${buf[4]}; this vaultpath reads version ${VERSION}. Upgrade vaultpath.`,
    );
  }
  if (buf.length !== KEY_SLOT_LENGTH) {
    throw damaged(`${where} is ${buf.length} bytes; a version-1 key slot is exactly ${KEY_SLOT_LENGTH}`);
  }
  if (!timingSafeEqual(checksum(buf), buf.subarray(CHECKSUM_START))) {
    throw damaged(`${where} does not match its checksum`);
  }
  if (buf[5] !== ObjectType.keySlot || buf[7] !== 0) throw damaged(`${where} has an invalid header`);
  if (buf[6] !== KDF_ARGON2ID) {
    throw new VaultpathError(
      'VP_UNSUPPORTED_VERSION',
      `${where} uses KDF algorithm ${buf[6]}, which this vaultpath does not know. Upgrade vaultpath.`,
    );
  }
  const kdf: KdfParams = {
    memoryKiB: buf.readUInt32LE(8),
    iterations: buf.readUInt32LE(12),
    parallelism: buf.readUInt32LE(16),
  };
  checkKdfParams(kdf, bounds);
  const copy = Buffer.from(buf);
  return { id: Buffer.from(id), kdf, salt: copy.subarray(20, 52), bytes: copy };
}

export interface OpenKeySlotOptions {
  readonly signal?: AbortSignal;
  /** Bounds the slot's KDF parameters must be within. @default KDF_BOUNDS */
  readonly bounds?: KdfBounds;
}

/**
 * Unwraps the master key from a decoded slot.
 *
 * @returns the 32-byte master key.
 * @throws {VaultpathError} `VP_PASSPHRASE_POLICY` if the passphrase could never have been set (too short);
 *   `VP_WRONG_PASSPHRASE` if the slot is intact but does not open with this passphrase; `VP_ABORTED`.
 */
export async function openKeySlot(slot: KeySlot, passphrase: string, options: OpenKeySlotOptions = {}): Promise<Uint8Array> {
  const secret = passphraseBytes(passphrase);
  const cipher = xchacha();
  const kek = await deriveKey(secret, slot.salt, slot.kdf, options);
  try {
    return (await cipher)(kek, slot.bytes.subarray(52, 76), aad(slot.bytes, slot.id)).decrypt(slot.bytes.subarray(76, CHECKSUM_START));
  } catch (cause) {
    throw new VaultpathError(
      'VP_WRONG_PASSPHRASE',
      `The passphrase does not open key slot ${toHex(slot.id)}. Check the passphrase (it is case-sensitive, and ` +
        'spaces inside it count).',
      { cause },
    );
  } finally {
    kek.fill(0);
  }
}

/**
 * Tries `passphrase` on each slot in turn and returns the first master key that unwraps.
 *
 * Damaged slots are skipped while any other slot can be tried; the error names what happened to each.
 *
 * @throws {VaultpathError} `VP_WRONG_PASSPHRASE` when every intact slot refused the passphrase;
 *   `VP_KEY_SLOT_DAMAGED` when no slot was intact; `VP_KDF_PARAMS` when no slot was usable for that reason;
 *   `VP_PASSPHRASE_POLICY`; `VP_ABORTED`.
 */
export async function unlockKeySlots(
  slots: Iterable<{ readonly id: Uint8Array; readonly bytes: Uint8Array }>,
  passphrase: string,
  options: OpenKeySlotOptions = {},
): Promise<{ masterKey: Uint8Array; slot: KeySlot }> {
  passphraseBytes(passphrase); // refuse an impossible passphrase before decoding anything
  const failures: VaultpathError[] = [];
  for (const raw of slots) {
    let slot: KeySlot;
    try {
      slot = decodeKeySlot(raw.id, raw.bytes, options.bounds);
      return { masterKey: await openKeySlot(slot, passphrase, options), slot };
    } catch (e) {
      if (!(e instanceof VaultpathError) || e.code === 'VP_ABORTED' || e.code === 'VP_PASSPHRASE_POLICY') throw e;
      failures.push(e);
    }
  }
  if (failures.length === 0) {
    throw new VaultpathError('VP_KEY_SLOT_DAMAGED', 'The vault has no key slots; it cannot be opened by any passphrase.');
  }
  const wrong = failures.find((f) => f.code === 'VP_WRONG_PASSPHRASE');
  const chosen = wrong ?? failures[0]!;
  const detail = failures.length > 1 ? ` (${failures.length} key slots tried: ${failures.map((f) => f.code).join(', ')})` : '';
  throw new VaultpathError(chosen.code, chosen.message + detail, { cause: failures.length > 1 ? new AggregateError(failures) : chosen });
}

/**
 * XChaCha20-Poly1305, loaded while the first key is being derived: a command that opens a vault starts its key
 * derivation without waiting for this module to load.
 */
function xchacha(): Promise<(typeof import('@noble/ciphers/chacha.js'))['xchacha20poly1305']> {
  const loading = import('@noble/ciphers/chacha.js').then((m) => m.xchacha20poly1305);
  loading.catch(() => undefined); // awaited once the key is derived; must not surface before that on its own
  return loading;
}

function aad(slotBytes: Buffer, id: Uint8Array): Buffer {
  return Buffer.concat([slotBytes.subarray(0, AAD_END), id]);
}

function checksum(slotBytes: Buffer): Buffer {
  return createHash('sha256').update(slotBytes.subarray(0, CHECKSUM_START)).digest();
}

function damaged(what: string): VaultpathError {
  return new VaultpathError(
    'VP_KEY_SLOT_DAMAGED',
    `${what}. The slot is damaged; open the vault with the passphrase of another key slot.`,
  );
}
