// The addon knows no vault format: it derives each object key from the label it is given and authenticates the
// associated-data prefix it is given, so crypto/envelope.ts alone defines the format. Checked against an independent
// implementation (@noble) under a label and prefixes the vault format never uses.
import { closeSync, openSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gcm } from '@noble/ciphers/aes.js';
import { hmac } from '@noble/hashes/hmac.js';
import { expand } from '@noble/hashes/hkdf.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { concatBytes, utf8ToBytes } from '@noble/hashes/utils.js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { OPEN_RESULT_SLOTS, OpenOutcome, nativeFunction } from '../../src/native/addon.js';
import { seededBytes } from '../support/seeded.js';

const sealKey = seededBytes(32, 1);
const chunkIdKey = seededBytes(32, 2);
const label = utf8ToBytes('another/format/key');
const prefixes = [new Uint8Array(0), Uint8Array.of(0xaa, 0xbb), seededBytes(16, 3)];

/** salt ‖ AES-256-GCM(HKDF-Expand(sealKey, label ‖ salt), 0¹², prefix ‖ salt ‖ id) ‖ tag, by @noble. */
function refSeal(prefix: Uint8Array, id: Uint8Array, plaintext: Uint8Array, salt: Uint8Array): Uint8Array {
  const key = expand(sha256, sealKey, concatBytes(label, salt), 32);
  return concatBytes(salt, gcm(key, new Uint8Array(12), concatBytes(prefix, salt, id)).encrypt(plaintext));
}

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vaultpath-format-free-'));
});
afterEach(() => rm(dir, { recursive: true, force: true }));

describe.runIf(process.platform === 'linux')('the native crypto kernels', () => {
  it('seal chunks and files under the label and prefix they are given', async () => {
    const sealParts = nativeFunction('sealParts')!;
    const sealFiles = nativeFunction('sealFiles')!;
    const data = seededBytes(70_000, 4);
    const id = hmac(sha256, chunkIdKey, data);
    await writeFile(join(dir, 'f'), data);
    for (const [i, prefix] of prefixes.entries()) {
      const salt = seededBytes(32, 10 + i);
      const chunk = await sealParts([data.subarray(0, 1000), data.subarray(1000)], sealKey, chunkIdKey, label, prefix, salt, null);
      expect(chunk.id).toEqual(Buffer.from(id));
      // Compared whole with equals: a diff of 70 kB would be slow to print and unreadable.
      expect(chunk.sealed!.equals(refSeal(prefix, id, data, salt)), `prefix of ${prefix.length} bytes`).toBe(true);
      const [file] = await sealFiles([join(dir, 'f')], [data.length], sealKey, chunkIdKey, label, prefix, salt);
      expect(file).toMatchObject({ errno: 0, id: Buffer.from(id) });
      expect((file as { sealed: Buffer }).sealed.equals(refSeal(prefix, id, data, salt)), `prefix of ${prefix.length} bytes`).toBe(true);
    }
  });

  it('open each blob under its own prefix, refuse it under another, and leave unchecked what they are told not to hash', async () => {
    const openBlobs = nativeFunction('openBlobs')!;
    const data = prefixes.map((_, i) => seededBytes(5000 + i, 20 + i));
    const ids = data.map((d) => hmac(sha256, chunkIdKey, d));
    const sealed = data.map((d, i) => refSeal(prefixes[2]!.subarray(0, 4 * i), ids[i]!, d, seededBytes(32, 30 + i)));
    await writeFile(join(dir, 'pack'), Buffer.concat(sealed));
    const fd = openSync(join(dir, 'pack'), 'r');
    try {
      const specs = (check: number) => {
        let at = 0;
        return Float64Array.from(sealed.flatMap((s) => [fd, (at += s.length) - s.length, s.length, check]));
      };
      // One prefix length a call: blob i is sealed under the first 4·i bytes, so each call opens one blob right.
      for (let i = 0; i < sealed.length; i++) {
        const own = Buffer.concat(sealed.map(() => prefixes[2]!.subarray(0, 4 * i)));
        const results = await openBlobs(specs(1), Buffer.concat(ids), own, sealKey, chunkIdKey, label);
        results.forEach((r, j) => {
          if (j === i) expect(Buffer.isBuffer(r) && r.equals(data[i]!), `blob ${i}`).toBe(true);
          else expect(r).toEqual({ outcome: OpenOutcome.auth, got: sealed[j]!.length });
        });
      }
      const unchecked = await openBlobs(specs(0), Buffer.concat(ids), Buffer.alloc(0), sealKey, chunkIdKey, label);
      expect(unchecked[0]).toEqual({ outcome: OpenOutcome.unchecked, got: sealed[0]!.length });
      const otherLabel = await openBlobs(specs(1), Buffer.concat(ids), Buffer.alloc(0), sealKey, chunkIdKey, utf8ToBytes('vaultpath/v1/object-key'));
      expect(otherLabel[0]).toEqual({ outcome: OpenOutcome.auth, got: sealed[0]!.length });
    } finally {
      closeSync(fd);
    }
  });

  it('write a blob opened under the prefix given into its target, and nothing under another', async () => {
    const openBlobsInto = nativeFunction('openBlobsInto')!;
    const data = seededBytes(9000, 40);
    const id = hmac(sha256, chunkIdKey, data);
    const prefix = prefixes[1]!;
    const sealed = refSeal(prefix, id, data, seededBytes(32, 41));
    await writeFile(join(dir, 'pack'), sealed);
    await writeFile(join(dir, 'out'), '');
    const fd = openSync(join(dir, 'pack'), 'r');
    const out = openSync(join(dir, 'out'), 'r+');
    try {
      const spec = Float64Array.of(fd, 0, sealed.length, 1);
      const refused = await openBlobsInto(spec, id, Uint8Array.of(0xaa, 0xbc), sealKey, chunkIdKey, label, Float64Array.of(out, -1, 0));
      expect(refused[0]).toBe(OpenOutcome.auth);
      expect(readFileSync(join(dir, 'out'))).toHaveLength(0);
      const written = await openBlobsInto(spec, id, prefix, sealKey, chunkIdKey, label, Float64Array.of(out, -1, 0));
      expect([...written.subarray(0, OPEN_RESULT_SLOTS)]).toEqual([0, sealed.length]);
      expect(readFileSync(join(dir, 'out')).equals(data)).toBe(true);
    } finally {
      closeSync(fd);
      closeSync(out);
    }
  });
});
