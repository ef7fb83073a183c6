import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { VaultKeys, generateMasterKey } from '../../src/crypto/keys.js';
import { ObjectType } from '../../src/crypto/object-type.js';
import {
  BLOB_OVERHEAD,
  OBJECT_OVERHEAD,
  joinSealed,
  openBlob,
  openObject,
  sealBlob,
  sealObject,
} from '../../src/crypto/envelope.js';
import { isVaultpathError } from '../../src/errors.js';

const keys = VaultKeys.fromMasterKey(generateMasterKey());
const id = randomBytes(32);
const text = Buffer.from('{"tree":"abc","paths":["/home"]}');

function code(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    if (isVaultpathError(e)) return e.code;
    throw e;
  }
  return undefined;
}

describe('sealed objects', () => {
  it('open to the exact plaintext they were sealed from', () => {
    const sealed = joinSealed(sealObject(keys, ObjectType.snapshot, id, text));
    expect(sealed.length).toBe(text.length + OBJECT_OVERHEAD);
    expect(openObject(keys, ObjectType.snapshot, id, sealed)).toEqual(text);
  });

  it('start with a visible header: version 1, type, codec none, reserved zero', () => {
    const sealed = joinSealed(sealObject(keys, ObjectType.index, id, text));
    expect([...sealed.subarray(0, 4)]).toEqual([1, ObjectType.index, 0, 0]);
  });

  it('never repeat a salt, so never a key: 10,000 seals of the same plaintext all differ', () => {
    const salts = new Set<string>();
    for (let i = 0; i < 10_000; i++) {
      const sealed = sealBlob(keys, ObjectType.data, id, text);
      salts.add(sealed.parts[0]!.toString('hex'));
    }
    expect(salts.size).toBe(10_000);
  });

  it('seal slices to the same plaintext as one buffer', () => {
    const data = randomBytes(100_000);
    const sealed = joinSealed(sealBlob(keys, ObjectType.data, id, [data.subarray(0, 7), data.subarray(7, 65_536), data.subarray(65_536)]));
    expect(openBlob(keys, ObjectType.data, id, sealed)).toEqual(data);
  });

  it('seal an empty plaintext', () => {
    const sealed = joinSealed(sealObject(keys, ObjectType.lock, id, Buffer.alloc(0)));
    expect(sealed.length).toBe(OBJECT_OVERHEAD);
    expect(openObject(keys, ObjectType.lock, id, sealed).length).toBe(0);
  });
});

describe('opening refuses', () => {
  const sealed = joinSealed(sealObject(keys, ObjectType.snapshot, id, text));

  it('every single flipped bit, anywhere in the object', () => {
    for (let byte = 0; byte < sealed.length; byte++) {
      for (const bit of [0, 7]) {
        const bad = Buffer.from(sealed);
        bad[byte]! ^= 1 << bit;
        expect(code(() => openObject(keys, ObjectType.snapshot, id, bad)), `byte ${byte} bit ${bit}`).toMatch(
          /^VP_(AUTH_FAILED|UNSUPPORTED_VERSION|OBJECT_TYPE)$/,
        );
      }
    }
  });

  it('a data chunk presented as a snapshot (type confusion)', () => {
    // A chunk whose plaintext is a valid snapshot document, as in CVE-2023-36811.
    const chunk = joinSealed(sealBlob(keys, ObjectType.data, id, text));
    const forged = Buffer.concat([Buffer.of(1, ObjectType.snapshot, 0, 0), chunk]);
    expect(code(() => openObject(keys, ObjectType.snapshot, id, forged))).toBe('VP_AUTH_FAILED');
    expect(code(() => openBlob(keys, ObjectType.tree, id, chunk))).toBe('VP_AUTH_FAILED');
  });

  it('an object asked for as another type, with a clear error', () => {
    expect(() => openObject(keys, ObjectType.index, id, sealed)).toThrow(/expected to be of type index but its header says snapshot/);
  });

  it('an object stored under another id (swap or rename)', () => {
    expect(code(() => openObject(keys, ObjectType.snapshot, randomBytes(32), sealed))).toBe('VP_AUTH_FAILED');
  });

  it("another vault's key", () => {
    const other = VaultKeys.fromMasterKey(generateMasterKey());
    expect(code(() => openObject(other, ObjectType.snapshot, id, sealed))).toBe('VP_AUTH_FAILED');
  });

  it('truncated objects, down to zero bytes, as malformed or unauthentic', () => {
    for (let n = 0; n < sealed.length; n++) {
      const c = code(() => openObject(keys, ObjectType.snapshot, id, sealed.subarray(0, n)));
      expect(c, `length ${n}`).toBe(n < OBJECT_OVERHEAD ? 'VP_MALFORMED_OBJECT' : 'VP_AUTH_FAILED');
    }
    expect(code(() => openBlob(keys, ObjectType.data, id, Buffer.alloc(BLOB_OVERHEAD - 1)))).toBe('VP_MALFORMED_OBJECT');
  });

  it('a version it does not know, naming the version', () => {
    const future = Buffer.from(sealed);
    future[0] = 2;
    expect(code(() => openObject(keys, ObjectType.snapshot, id, future))).toBe('VP_UNSUPPORTED_VERSION');
    expect(() => openObject(keys, ObjectType.snapshot, id, future)).toThrow(/format version 2.*reads version 1/);
  });

  it('a blob whose codec claim is false (authentication, not decompression, decides)', () => {
    const blob = joinSealed(sealBlob(keys, ObjectType.data, id, text));
    expect(code(() => openBlob(keys, ObjectType.data, id, blob, { codec: 1 }))).toBe('VP_AUTH_FAILED');
  });
});
