/**
 * An independent second implementation of the vault format v1 envelope, written from FORMAT.md with @noble only.
 *
 * It shares no code with src/: if the two ever disagree on a byte, the cross-implementation tests fail. It is slow
 * (noble AES-GCM runs at tens of MB/s) and exists to prove the format is what FORMAT.md says.
 */
import { gcm } from '@noble/ciphers/aes.js';
import { expand, hkdf } from '@noble/hashes/hkdf.js';
import { hmac } from '@noble/hashes/hmac.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { concatBytes, utf8ToBytes } from '@noble/hashes/utils.js';

const VERSION = 1;

export function refSubkey(masterKey: Uint8Array, label: string, length: number): Uint8Array {
  return hkdf(sha256, masterKey, undefined, utf8ToBytes(label), length);
}

function refObjectKey(sealKey: Uint8Array, salt: Uint8Array): Uint8Array {
  return expand(sha256, sealKey, concatBytes(utf8ToBytes('vaultpath/v1/object-key'), salt), 32);
}

function aad(type: number, codec: number, salt: Uint8Array, id: Uint8Array): Uint8Array {
  return concatBytes(Uint8Array.of(VERSION, type, codec, 0), salt, id);
}

/** Seals as a standalone object: version ‖ type ‖ codec ‖ 0 ‖ salt ‖ ciphertext ‖ tag. */
export function refSealObject(sealKey: Uint8Array, type: number, id: Uint8Array, plaintext: Uint8Array, salt: Uint8Array): Uint8Array {
  return concatBytes(Uint8Array.of(VERSION, type, 0, 0), refSealBlob(sealKey, type, id, plaintext, salt));
}

/** Seals as a bare blob: salt ‖ ciphertext ‖ tag. */
export function refSealBlob(sealKey: Uint8Array, type: number, id: Uint8Array, plaintext: Uint8Array, salt: Uint8Array): Uint8Array {
  const ct = gcm(refObjectKey(sealKey, salt), new Uint8Array(12), aad(type, 0, salt, id)).encrypt(plaintext);
  return concatBytes(salt, ct);
}

/** Opens a standalone object; throws if anything is off. */
export function refOpenObject(sealKey: Uint8Array, type: number, id: Uint8Array, sealed: Uint8Array): Uint8Array {
  if (sealed[0] !== VERSION || sealed[1] !== type || sealed[2] !== 0 || sealed[3] !== 0) throw new Error('bad header');
  return refOpenBlob(sealKey, type, id, sealed.subarray(4));
}

/** Opens a bare blob; throws if anything is off. */
export function refOpenBlob(sealKey: Uint8Array, type: number, id: Uint8Array, sealed: Uint8Array): Uint8Array {
  const salt = sealed.subarray(0, 32);
  return gcm(refObjectKey(sealKey, salt), new Uint8Array(12), aad(type, 0, salt, id)).decrypt(sealed.subarray(32));
}

/** The chunk id: HMAC-SHA256 under the chunk-id subkey. */
export function refChunkId(chunkIdKey: Uint8Array, data: Uint8Array): Uint8Array {
  return hmac(sha256, chunkIdKey, data);
}
