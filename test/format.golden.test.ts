/**
 * Golden vectors of vault format v1 (test/vectors/format-v1.json).
 *
 * These pin the bytes that existing vaults depend on. If one fails, the change broke the format:
 * - subkeys or envelopes: every vault ever written stops opening;
 * - chunk boundaries or ids: existing vaults stop deduplicating against new backups and bloat
 *   (borg's fastcdc_test.py, kopia's TestSplitterStability and restic/chunker pin theirs for the same reason).
 * Do not update the vectors to make a test pass; introduce a new format version instead.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { type ChunkerParams, chunkStream } from '../src/chunk/fastcdc.js';
import { VaultKeys } from '../src/crypto/keys.js';
import { ChunkIdentifier } from '../src/crypto/chunk-id.js';
import { type ObjectTypeCode } from '../src/crypto/object-type.js';
import { joinSealed, openBlob, openObject, seal } from '../src/crypto/envelope.js';
import { refOpenBlob, refOpenObject } from './support/reference-envelope.js';
import { referenceBoundaries } from './support/reference-chunker.js';
import { seededBytes } from './support/seeded.js';

interface Vectors {
  masterKey: string;
  subkeys: { seal: string; chunkId: string; gearFirstFour: number[] };
  envelopes: { form: 'object' | 'blob'; type: number; id: string; salt: string; plaintextUtf8: string; sealed: string }[];
  chunker: [
    { seed: number; length: number; params: ChunkerParams; chunks: { length: number; id: string }[] },
    { seed: number; length: number; params: ChunkerParams; count: number; firstLengths: number[]; sha256OfLengthsCommaJoined: string },
  ];
}
const v = JSON.parse(readFileSync(new URL('./vectors/format-v1.json', import.meta.url), 'utf8')) as Vectors;
const hex = (s: string): Buffer => Buffer.from(s, 'hex');
const keys = VaultKeys.fromMasterKey(hex(v.masterKey));

describe('format v1 golden vectors', () => {
  it('derive the same subkeys and gear table from the fixed master key', () => {
    expect(keys.sealKey.toString('hex')).toBe(v.subkeys.seal);
    expect(keys.chunkIdKey.toString('hex')).toBe(v.subkeys.chunkId);
    expect([...keys.gearTable.slice(0, 4)]).toEqual(v.subkeys.gearFirstFour);
  });

  it.each(v.envelopes.map((e) => ({ ...e, label: `${e.form} of type ${e.type}, "${e.plaintextUtf8}"` })))(
    'seal to the pinned bytes and open, with both implementations: $label',
    (e) => {
      const type = e.type as ObjectTypeCode;
      const plain = Buffer.from(e.plaintextUtf8, 'utf8');
      const sealed = hex(e.sealed);
      expect(joinSealed(seal(keys, type, hex(e.id), plain, hex(e.salt), e.form === 'object')).toString('hex')).toBe(e.sealed);
      const opened = e.form === 'object' ? openObject(keys, type, hex(e.id), sealed) : openBlob(keys, type, hex(e.id), sealed);
      expect(opened.toString('utf8')).toBe(e.plaintextUtf8);
      const ref = e.form === 'object' ? refOpenObject(keys.sealKey, type, hex(e.id), sealed) : refOpenBlob(keys.sealKey, type, hex(e.id), sealed);
      expect(Buffer.from(ref).toString('utf8')).toBe(e.plaintextUtf8);
    },
  );

  it('cut 32 MiB of seeded data at the pinned boundaries, with the pinned chunk ids (default sizes)', async () => {
    const spec = v.chunker[0];
    const data = seededBytes(spec.length, spec.seed);
    const ids = new ChunkIdentifier(keys);
    const got: { length: number; id: string }[] = [];
    for await (const c of chunkStream([data], keys.gearTable, spec.params)) got.push({ length: c.length, id: ids.id(c.parts).toString('hex') });
    expect(got).toEqual(spec.chunks);
    expect(referenceBoundaries(data, keys.gearTable, spec.params)).toEqual(spec.chunks.map((c) => c.length));
  });

  it('cut 1 MiB of seeded data at the pinned boundaries (small sizes)', async () => {
    const spec = v.chunker[1];
    const data = seededBytes(spec.length, spec.seed);
    const lengths: number[] = [];
    for await (const c of chunkStream([data], keys.gearTable, spec.params)) lengths.push(c.length);
    expect(lengths.length).toBe(spec.count);
    expect(lengths.slice(0, spec.firstLengths.length)).toEqual(spec.firstLengths);
    expect(createHash('sha256').update(lengths.join(',')).digest('hex')).toBe(spec.sha256OfLengthsCommaJoined);
  });
});
