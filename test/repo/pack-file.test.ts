// The one writer of pack files: from a staged file's ranges or from memory, by the addon's kernel or the portable
// writer, a pack's bytes are the same, its id is their SHA-256, and its header lists each blob where it lies.
import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type PackFileWriter, portablePackFileWriter, writePackFile } from '../../src/repo/pack-file.js';
import { PACK_TRAILER_LENGTH, type PackEntry, openPackHeader, readPackTrailer } from '../../src/repo/pack.js';
import { ObjectType } from '../../src/crypto/object-type.js';
import { openBlob, sealBlob } from '../../src/crypto/envelope.js';
import { nativeKernels } from '../../src/native/ports.js';
import { seededBytes } from '../support/seeded.js';
import { type VaultFixture, makeVault } from '../support/vaults.js';

let f: VaultFixture;
beforeEach(async () => {
  f = await makeVault();
});
afterEach(() => f.cleanup());

const writers: [string, PackFileWriter | null][] = [
  ['portable', null],
  ['portable, named', portablePackFileWriter],
  ...(nativeKernels.packWriter() ? [['the addon', nativeKernels.packWriter()] as [string, PackFileWriter]] : []),
];

describe('writePackFile', () => {
  it('writes the same pack from a staged file in a shuffled order or from memory, with every writer', async () => {
    const plains = [3000, 70_000, 1, 12_345].map((n, i) => seededBytes(n, i));
    const sealed = plains.map((p) => {
      const id = f.vault.ids.id([p]);
      return { id, plain: p, sealed: sealBlob(f.vault.keys, ObjectType.data, id, [p]) };
    });
    // Staged in the order they came; the pack takes them in another.
    const staged = f.path('pending');
    await writeFile(staged, Buffer.concat(sealed.flatMap((s) => s.sealed.parts)));
    const at: number[] = [];
    sealed.reduce((o, s) => (at.push(o), o + s.sealed.length), 0);
    const order = [2, 0, 3, 1];
    const entries: PackEntry[] = [];
    const ranges = new Float64Array(2 * order.length);
    let offset = 0;
    for (const [k, i] of order.entries()) {
      const s = sealed[i]!;
      entries.push({ type: ObjectType.data, codec: 0, id: s.id, offset, length: s.sealed.length, plaintextLength: s.plain.length });
      ranges[2 * k] = at[i]!;
      ranges[2 * k + 1] = s.sealed.length;
      offset += s.sealed.length;
    }
    const packs: Buffer[] = [];
    for (const [name, writer] of writers) {
      for (const source of ['staged', 'memory'] as const) {
        const path = f.path(`pack-${packs.length}`);
        const blobs = source === 'staged' ? { path: staged, ranges } : order.flatMap((i) => sealed[i]!.sealed.parts);
        const id = await writePackFile(f.vault.keys, path, entries, blobs, writer);
        const bytes = await readFile(path);
        expect(createHash('sha256').update(bytes).digest().equals(id), `${name}, ${source}`).toBe(true);
        packs.push(bytes);
      }
    }
    // The header is sealed under a fresh salt each time: the blobs are the same bytes, and each header lists them.
    for (const bytes of packs) {
      expect(bytes.subarray(0, offset).equals(packs[0]!.subarray(0, offset))).toBe(true);
      const headerLength = readPackTrailer(bytes.subarray(bytes.length - PACK_TRAILER_LENGTH), bytes.length, 'pack');
      const listed = openPackHeader(f.vault.keys, bytes.subarray(bytes.length - PACK_TRAILER_LENGTH - headerLength, bytes.length - PACK_TRAILER_LENGTH), bytes.length, 'pack');
      expect(listed.map((e) => [e.id.toString('hex'), e.offset, e.length])).toEqual(entries.map((e) => [e.id.toString('hex'), e.offset, e.length]));
      for (const e of listed) {
        const plain = openBlob(f.vault.keys, ObjectType.data, e.id, bytes.subarray(e.offset, e.offset + e.length));
        expect(f.vault.ids.matches(e.id, plain)).toBe(true);
      }
    }
  });

  it('refuses to write over a file that exists', async () => {
    const path = f.path('taken');
    await writeFile(path, 'x');
    for (const [name, writer] of writers) {
      await expect(writePackFile(f.vault.keys, path, [], [], writer), name).rejects.toMatchObject({ code: 'EEXIST' });
    }
    expect(await readFile(path, 'utf8')).toBe('x');
  });
});
