/**
 * The sealed-object envelope of vault format v1: AES-256-GCM with a fresh key for every object.
 *
 * Two forms share one construction. A standalone object (config, index, snapshot, lock) is a file of its own and
 * starts with a 4-byte visible header; a blob inside a pack (data chunk, tree, pack header) is stored bare, and
 * its header bytes come from the pack header or the index instead. Bare blobs are indistinguishable from random
 * bytes, so someone holding a pack cannot find where one blob ends and the next begins, and cannot learn chunk
 * sizes (the chunk-size fingerprinting of eprint 2025/532).
 *
 * ```
 *  standalone object                         blob in a pack (bare)
 *  offset  size  field                       offset  size  field
 *  0       1     format version (0x01)       -       -     (version, type, codec from the pack header / index)
 *  1       1     object type
 *  2       1     codec (0x00 = none)
 *  3       1     reserved (0x00)
 *  4       32    salt (random)               0       32    salt (random)
 *  36      n     ciphertext                  32      n     ciphertext
 *  36+n    16    GCM tag                     32+n    16    GCM tag
 *  overhead 52 bytes                         overhead 48 bytes
 *
 *  associated data (68 bytes, both forms) = version ‖ type ‖ codec ‖ 0x00 ‖ salt ‖ object id (32 bytes)
 * ```
 *
 * Object key: K = HKDF-Expand(sealKey, "vaultpath/v1/object-key" ‖ salt, 32), which is the single HMAC
 * HMAC-SHA256(sealKey, "vaultpath/v1/object-key" ‖ salt ‖ 0x01) (RFC 5869 §2.3; the extract step is skipped
 * because sealKey is already uniformly random). Nonce: twelve zero bytes.
 *
 * Why the nonce never repeats under a key: every object gets its own key, from a 256-bit salt drawn afresh from
 * the CSPRNG for that object, so each key seals exactly one message and the fixed nonce is used once per key.
 * Two objects share a key only if two salts collide: after 2^48 objects across every worker, restart and machine
 * writing into a vault, that chance is below 2^-160. No counter or state exists that a crash, a restore of an old
 * vault copy, or a second machine could set back (tarsnap 2011, borg's counter reuse after rollback).
 *
 * Why the associated data: it binds the format version, the object type, the codec, the salt and the object's id.
 * An object is opened only under the type and id the reader expects, so a data chunk can never be accepted as
 * a tree or snapshot (CVE-2023-36811), and objects cannot be swapped or renamed. Nothing is decompressed or parsed
 * before the tag is checked.
 *
 * @module
 */
import { createCipheriv, createDecipheriv, createHmac, randomFillSync } from 'node:crypto';
import { VaultpathError } from '../errors.js';
import { type ByteParts, asParts, checkBytes, toHex } from '../bytes.js';
import { type ObjectTypeCode, describeType, objectTypeName } from './object-type.js';

/** The envelope format version this code writes and reads. */
export const ENVELOPE_VERSION = 1;
/** Bytes of the visible header of a standalone object. */
export const OBJECT_HEADER_LENGTH = 4;
/** Length of the per-object salt. */
export const SALT_LENGTH = 32;
/** Bytes of the GCM tag after the ciphertext. */
export const TAG_LENGTH = 16;
/** Bytes a bare blob has beyond its (encoded) plaintext. */
export const BLOB_OVERHEAD = SALT_LENGTH + TAG_LENGTH;
/** Bytes a standalone object has beyond its (encoded) plaintext. */
export const OBJECT_OVERHEAD = OBJECT_HEADER_LENGTH + BLOB_OVERHEAD;
/** Length of an object id. */
export const OBJECT_ID_LENGTH = 32;

/** Compression codecs. Only `none` exists in v1; the byte is reserved so compression can come without a new format. */
export const Codec = { none: 0 } as const;
export type CodecCode = (typeof Codec)[keyof typeof Codec];

const OBJECT_KEY_LABEL = Buffer.from('vaultpath/v1/object-key', 'utf8');

/**
 * The object key's label, HKDF-Expand's info before the salt (a copy): the native kernels, which know no format,
 * take it as an argument.
 */
export function objectKeyLabel(): Buffer {
  return Buffer.from(OBJECT_KEY_LABEL);
}

/**
 * The associated data's first four bytes, version ‖ type ‖ codec ‖ reserved (a standalone object's visible header
 * too); salt ‖ id follow. The native kernels take them as given.
 */
export function aadPrefix(type: number, codec: number = Codec.none, reserved = 0): Buffer {
  return Buffer.of(ENVELOPE_VERSION, type, codec, reserved);
}
const ONE = Buffer.of(1);
const ZERO_NONCE = Buffer.alloc(12);

/** The keys sealing needs: only the seal root (a {@link VaultKeys} fits). */
export interface SealKeys {
  readonly sealKey: Uint8Array;
}

/**
 * A sealed object or blob as slices, in order: [header,] salt, ciphertext (one slice per plaintext slice), tag.
 * They are kept apart so an 8 MiB chunk is never copied just to put 32 bytes in front of it; write them in order
 * (e.g. with `writev`), or {@link joinSealed} them for small objects.
 */
export interface SealedObject {
  readonly parts: readonly Buffer[];
  /** Total length in bytes. */
  readonly length: number;
}

/** The sealed bytes as one buffer (copies). */
export function joinSealed(sealed: SealedObject): Buffer {
  return Buffer.concat(sealed.parts as Buffer[], sealed.length);
}

// Salts are drawn from the CSPRNG in batches: one 32-byte draw per object costs more than the draw itself.
const saltPool = Buffer.alloc(SALT_LENGTH * 256);
let saltOffset = saltPool.length;
/** A fresh random salt for one object (drawn from the CSPRNG in batches; never handed out twice). @internal */
export function freshSalt(): Buffer {
  if (saltOffset === saltPool.length) {
    randomFillSync(saltPool);
    saltOffset = 0;
  }
  // Copy out and wipe, so no salt is ever handed out twice.
  const salt = Buffer.from(saltPool.subarray(saltOffset, saltOffset + SALT_LENGTH));
  saltPool.fill(0, saltOffset, saltOffset + SALT_LENGTH);
  saltOffset += SALT_LENGTH;
  return salt;
}

/**
 * Seals `plaintext` as a standalone object of `type` stored under `id` (config, index, snapshot, lock).
 *
 * @param keys the vault's keys (only `sealKey` is used).
 * @param type the object type, bound into the associated data.
 * @param id the 32-byte id the object will be stored and looked up under, bound into the associated data.
 * @param plaintext the object's bytes, as one buffer or as slices in order (never copied).
 * @throws {TypeError | RangeError} on a malformed id, key or type.
 * @example
 * ```ts
 * const bytes = joinSealed(sealObject(keys, ObjectType.snapshot, snapshotId, json));
 * ```
 */
export function sealObject(keys: SealKeys, type: ObjectTypeCode, id: Uint8Array, plaintext: ByteParts): SealedObject {
  return seal(keys, type, id, plaintext, freshSalt(), true);
}

/**
 * Seals `plaintext` as a bare blob of `type` under `id`, to be placed in a pack (data chunk, tree, pack header).
 *
 * @example
 * ```ts
 * const sealed = sealBlob(keys, ObjectType.data, chunkId, chunk.parts);
 * await file.writev(sealed.parts);
 * ```
 */
export function sealBlob(keys: SealKeys, type: ObjectTypeCode, id: Uint8Array, plaintext: ByteParts): SealedObject {
  return seal(keys, type, id, plaintext, freshSalt(), false);
}

/**
 * The construction behind {@link sealObject} and {@link sealBlob}, with a caller-chosen salt. Only for golden
 * vectors: a salt used twice under one seal key repeats a (key, nonce) pair. Not exported from the package entry.
 * @internal
 */
export function seal(
  keys: SealKeys,
  type: ObjectTypeCode,
  id: Uint8Array,
  plaintext: ByteParts,
  salt: Uint8Array,
  withHeader: boolean,
): SealedObject {
  checkBytes(keys.sealKey, 32, 'sealKey');
  checkBytes(id, OBJECT_ID_LENGTH, 'id');
  checkBytes(salt, SALT_LENGTH, 'salt');
  if (objectTypeName(type) === undefined) throw new RangeError(`"type" is not a known object type: ${type}`);
  const header = aadPrefix(type);
  const saltBuf = Buffer.from(salt);
  const cipher = createCipheriv('aes-256-gcm', objectKey(keys.sealKey, salt), ZERO_NONCE);
  cipher.setAAD(Buffer.concat([header, saltBuf, id]));
  const out: Buffer[] = withHeader ? [header, saltBuf] : [saltBuf];
  let length = (withHeader ? OBJECT_HEADER_LENGTH : 0) + BLOB_OVERHEAD;
  // GCM is a stream cipher: encrypting slice by slice gives the same bytes as encrypting the whole.
  for (const p of asParts(plaintext)) {
    const c = cipher.update(p);
    out.push(c);
    length += c.length;
  }
  const final = cipher.final();
  if (final.length !== 0) {
    out.push(final);
    length += final.length;
  }
  out.push(cipher.getAuthTag());
  return { parts: out, length };
}

export interface OpenOptions {
  /** Names the object in error messages, e.g. `snapshot 3fa4…` or `blob 91c2… in pack 07be…`. */
  readonly where?: string;
}

/**
 * Authenticates and opens a standalone object that must be of `type` and stored under `id`.
 *
 * @returns the plaintext; returned only after the tag has been checked.
 * @throws {VaultpathError} `VP_MALFORMED_OBJECT` (too short), `VP_UNSUPPORTED_VERSION`, `VP_OBJECT_TYPE` (the
 *   header names another type), `VP_AUTH_FAILED` (damaged, tampered, swapped, or another vault's key),
 *   `VP_UNKNOWN_CODEC` (authentic, but compressed by a codec this version does not know).
 * @example
 * ```ts
 * const json = openObject(keys, ObjectType.snapshot, id, await readFile(path));
 * ```
 */
export function openObject(keys: SealKeys, type: ObjectTypeCode, id: Uint8Array, sealed: Uint8Array, options: OpenOptions = {}): Buffer {
  const where = options.where ?? `${describeType(type)} ${toHex(id)}`;
  if (sealed.length < OBJECT_OVERHEAD) {
    throw new VaultpathError(
      'VP_MALFORMED_OBJECT',
      `${where} is ${sealed.length} bytes, shorter than the ${OBJECT_OVERHEAD}-byte envelope; it is truncated or not a vaultpath object.`,
    );
  }
  const version = sealed[0]!;
  if (version !== ENVELOPE_VERSION) {
    throw new VaultpathError(
      'VP_UNSUPPORTED_VERSION',
      `${where} has format version ${version}; this vaultpath reads version ${ENVELOPE_VERSION} only. Upgrade vaultpath to read it.`,
    );
  }
  if (sealed[1] !== type) {
    throw new VaultpathError(
      'VP_OBJECT_TYPE',
      `${where} was expected to be of type ${describeType(type)} but its header says ${describeType(sealed[1]!)}; ` +
        'the vault has been damaged or tampered with. Run a vault check.',
    );
  }
  return open(keys, type, sealed[2]!, sealed[3]!, id, sealed.subarray(OBJECT_HEADER_LENGTH), where);
}

export interface OpenBlobOptions extends OpenOptions {
  /** The blob's codec, from its pack header or index entry. @default Codec.none */
  readonly codec?: number;
}

/**
 * Authenticates and opens a bare blob read from a pack. Its type and codec come from the index or pack header;
 * a wrong claim fails authentication.
 *
 * @throws {VaultpathError} `VP_MALFORMED_OBJECT`, `VP_AUTH_FAILED`, `VP_UNKNOWN_CODEC`.
 */
export function openBlob(keys: SealKeys, type: ObjectTypeCode, id: Uint8Array, sealed: Uint8Array, options: OpenBlobOptions = {}): Buffer {
  const where = options.where ?? `${describeType(type)} ${toHex(id)}`;
  if (sealed.length < BLOB_OVERHEAD) {
    throw new VaultpathError(
      'VP_MALFORMED_OBJECT',
      `${where} is ${sealed.length} bytes, shorter than the ${BLOB_OVERHEAD}-byte envelope; the pack or index is damaged.`,
    );
  }
  return open(keys, type, options.codec ?? Codec.none, 0, id, sealed, where);
}

/** Opens `body` = salt ‖ ciphertext ‖ tag against the associated data built from the other arguments. */
function open(keys: SealKeys, type: number, codec: number, reserved: number, id: Uint8Array, body: Uint8Array, where: string): Buffer {
  checkBytes(keys.sealKey, 32, 'sealKey');
  checkBytes(id, OBJECT_ID_LENGTH, 'id');
  const salt = body.subarray(0, SALT_LENGTH);
  const tagStart = body.length - TAG_LENGTH;
  const decipher = createDecipheriv('aes-256-gcm', objectKey(keys.sealKey, salt), ZERO_NONCE);
  decipher.setAAD(Buffer.concat([aadPrefix(type, codec, reserved), salt, id]));
  decipher.setAuthTag(body.subarray(tagStart));
  let plaintext: Buffer;
  try {
    plaintext = decipher.update(body.subarray(SALT_LENGTH, tagStart));
    const final = decipher.final();
    if (final.length !== 0) plaintext = Buffer.concat([plaintext, final]);
  } catch (cause) {
    throw authFailed(where, cause);
  }
  if (codec !== Codec.none) throw unknownCodec(where, codec);
  return plaintext;
}

/** `VP_AUTH_FAILED` for the object named by `where`. @internal */
export function authFailed(where: string, cause?: unknown): VaultpathError {
  return new VaultpathError(
    'VP_AUTH_FAILED',
    `${where} failed authentication: it is damaged, was altered, was stored under another name, ` +
      'or belongs to another vault. Run a vault check; restore from another copy if it persists.',
    { cause },
  );
}

/** `VP_UNKNOWN_CODEC` for an authentic object named by `where`, encoded with `codec`. @internal */
export function unknownCodec(where: string, codec: number): VaultpathError {
  return new VaultpathError('VP_UNKNOWN_CODEC', `${where} is compressed with codec ${codec}, which this vaultpath does not know. Upgrade vaultpath.`);
}

/** The per-object key: HKDF-Expand(sealKey, label ‖ salt, 32) = HMAC(sealKey, label ‖ salt ‖ 0x01). */
function objectKey(sealKey: Uint8Array, salt: Uint8Array): Buffer {
  return createHmac('sha256', sealKey).update(OBJECT_KEY_LABEL).update(salt).update(ONE).digest();
}
