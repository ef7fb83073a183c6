import { describe, expect, it } from 'vitest';
import { KEY_SLOT_LENGTH, createKeySlot, decodeKeySlot, openKeySlot, unlockKeySlots } from '../../src/crypto/key-slot.js';
import { VaultKeys, generateMasterKey } from '../../src/crypto/keys.js';
import { ObjectType } from '../../src/crypto/object-type.js';
import { joinSealed, openObject, sealObject } from '../../src/crypto/envelope.js';
import { DEFAULT_KDF_PARAMS } from '../../src/crypto/kdf.js';
import { TEST_KDF } from '../support/seeded.js';

const PASS = 'correct horse battery staple';
const OTHER = 'a different but long passphrase';

async function errorOf(p: Promise<unknown>): Promise<{ code?: string; message: string }> {
  return p.then(
    () => {
      throw new Error('expected a rejection');
    },
    (e: { code?: string; message: string }) => e,
  );
}

describe('key slots', () => {
  it('unwrap the master key with the right passphrase', async () => {
    const master = generateMasterKey();
    const slot = await createKeySlot(master, PASS, { kdf: TEST_KDF });
    expect(slot.bytes.length).toBe(KEY_SLOT_LENGTH);
    const decoded = decodeKeySlot(slot.id, slot.bytes);
    expect(Buffer.from(await openKeySlot(decoded, PASS))).toEqual(Buffer.from(master));
  });

  it('open with the decomposed spelling of a composed passphrase (NFC)', async () => {
    const master = generateMasterKey();
    const composed = 'crème brûlée à la française';
    const slot = await createKeySlot(master, composed, { kdf: TEST_KDF });
    const opened = await openKeySlot(decodeKeySlot(slot.id, slot.bytes), composed.normalize('NFD'));
    expect(Buffer.from(opened)).toEqual(Buffer.from(master));
  });

  it('refuse a wrong passphrase with VP_WRONG_PASSPHRASE', async () => {
    const slot = await createKeySlot(generateMasterKey(), PASS, { kdf: TEST_KDF });
    const e = await errorOf(openKeySlot(decodeKeySlot(slot.id, slot.bytes), OTHER));
    expect(e.code).toBe('VP_WRONG_PASSPHRASE');
  });

  it('refuse a passphrase that could never have been set, before running the KDF', async () => {
    const slot = await createKeySlot(generateMasterKey(), PASS, { kdf: TEST_KDF });
    expect((await errorOf(openKeySlot(decodeKeySlot(slot.id, slot.bytes), 'short'))).code).toBe('VP_PASSPHRASE_POLICY');
  });

  it('report damage (a flipped bit, a truncation) as VP_KEY_SLOT_DAMAGED, distinct from a wrong passphrase', async () => {
    const slot = await createKeySlot(generateMasterKey(), PASS, { kdf: TEST_KDF });
    for (let byte = 0; byte < KEY_SLOT_LENGTH; byte++) {
      const bad = Buffer.from(slot.bytes);
      bad[byte]! ^= 0x10;
      let code: string | undefined;
      try {
        decodeKeySlot(slot.id, bad);
      } catch (e) {
        code = (e as { code: string }).code;
      }
      // The version byte is the one field read before the checksum (a future layout may differ).
      expect(code, `byte ${byte}`).toBe(byte === 4 ? 'VP_UNSUPPORTED_VERSION' : 'VP_KEY_SLOT_DAMAGED');
    }
    for (const length of [0, 10, 100, KEY_SLOT_LENGTH - 1]) {
      expect(() => decodeKeySlot(slot.id, slot.bytes.subarray(0, length))).toThrow(expect.objectContaining({ code: 'VP_KEY_SLOT_DAMAGED' }));
    }
  });

  it('are bound to their id: a renamed slot does not open', async () => {
    const slot = await createKeySlot(generateMasterKey(), PASS, { kdf: TEST_KDF });
    const renamed = decodeKeySlot(Buffer.alloc(32, 7), slot.bytes);
    expect((await errorOf(openKeySlot(renamed, PASS))).code).toBe('VP_WRONG_PASSPHRASE');
  });

  it('refuse out-of-bounds KDF parameters (64 GiB) before running the KDF, even with a valid checksum', async () => {
    const slot = await createKeySlot(generateMasterKey(), PASS, { kdf: TEST_KDF });
    const forged = Buffer.from(slot.bytes);
    forged.writeUInt32LE(64 * 1024 * 1024, 8);
    const { createHash } = await import('node:crypto');
    createHash('sha256').update(forged.subarray(0, 124)).digest().copy(forged, 124);
    expect(() => decodeKeySlot(slot.id, forged)).toThrow(expect.objectContaining({ code: 'VP_KDF_PARAMS' }));
    // Refused before the KDF runs: the refusal settles before any I/O callback, which a derivation reports through.
    let settled = false;
    const refused = errorOf(unlockKeySlots([{ id: slot.id, bytes: forged }], PASS)).finally(() => (settled = true));
    await new Promise((r) => setImmediate(r));
    expect(settled).toBe(true);
    expect((await refused).code).toBe('VP_KDF_PARAMS');
  });

  it('store the KDF parameters and salt, and use the default cost when none is given', async () => {
    const slot = await createKeySlot(generateMasterKey(), PASS);
    const decoded = decodeKeySlot(slot.id, slot.bytes);
    expect(decoded.kdf).toEqual(DEFAULT_KDF_PARAMS);
    expect(decoded.salt.length).toBe(32);
  });
});

describe('changing the passphrase', () => {
  it('adds a slot and removes the old one; data sealed before opens unchanged', async () => {
    const master = generateMasterKey();
    const oldSlot = await createKeySlot(master, PASS, { kdf: TEST_KDF });
    const keys = VaultKeys.fromMasterKey(master);
    const id = Buffer.alloc(32, 1);
    const sealed = joinSealed(sealObject(keys, ObjectType.snapshot, id, Buffer.from('snapshot taken before the change')));

    // Change: unlock with the old passphrase, wrap the same master key under the new one, drop the old slot.
    const { masterKey } = await unlockKeySlots([oldSlot], PASS);
    const newSlot = await createKeySlot(masterKey, OTHER, { kdf: TEST_KDF });
    const slots = [newSlot];

    const reopened = await unlockKeySlots(slots, OTHER);
    expect(reopened.slot.id).toEqual(newSlot.id);
    const keysAfter = VaultKeys.fromMasterKey(reopened.masterKey);
    expect(openObject(keysAfter, ObjectType.snapshot, id, sealed).toString()).toBe('snapshot taken before the change');
    expect((await errorOf(unlockKeySlots(slots, PASS))).code).toBe('VP_WRONG_PASSPHRASE');
  });

  it('skips a damaged slot while another slot opens', async () => {
    const master = generateMasterKey();
    const a = await createKeySlot(master, PASS, { kdf: TEST_KDF });
    const b = await createKeySlot(master, PASS, { kdf: TEST_KDF });
    const damaged = { id: a.id, bytes: a.bytes.subarray(0, 40) };
    const { masterKey } = await unlockKeySlots([damaged, b], PASS);
    expect(Buffer.from(masterKey)).toEqual(Buffer.from(master));
  });

  it('says wrong passphrase when intact slots refuse it, and damaged when none is intact', async () => {
    const slot = await createKeySlot(generateMasterKey(), PASS, { kdf: TEST_KDF });
    const damaged = { id: slot.id, bytes: slot.bytes.subarray(0, 40) };
    expect((await errorOf(unlockKeySlots([damaged, slot], OTHER))).code).toBe('VP_WRONG_PASSPHRASE');
    expect((await errorOf(unlockKeySlots([damaged], PASS))).code).toBe('VP_KEY_SLOT_DAMAGED');
    expect((await errorOf(unlockKeySlots([], PASS))).code).toBe('VP_KEY_SLOT_DAMAGED');
  });
});
