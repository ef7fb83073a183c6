// The sealing workers: one message identifies and seals a chunk, or identifies it only and seals it on request
// (a changed file's chunks are mostly known: only the new ones are sealed). Every way gives the same id and a blob
// the portable code opens.
import { afterAll, describe, expect, it } from 'vitest';
import { SealPool } from '../../src/repo/seal-pool.js';
import { VaultKeys } from '../../src/crypto/keys.js';
import { ChunkIdentifier } from '../../src/crypto/chunk-id.js';
import { ObjectType } from '../../src/crypto/object-type.js';
import { joinSealed, openBlob } from '../../src/crypto/envelope.js';
import { FIXED_MASTER_KEY, seededBytes } from '../support/seeded.js';

const keys = VaultKeys.fromMasterKey(FIXED_MASTER_KEY);
const pool = new SealPool(keys, 1);
afterAll(() => pool.close());

describe('the sealing pool', () => {
  const data = seededBytes(700_000, 41);
  // Shared memory travels by reference, as the backup's read buffers do; the rest is copied into the message.
  const shared = Buffer.from(new SharedArrayBuffer(data.length));
  data.copy(shared);
  const parts = [shared.subarray(0, 300_000), shared.subarray(300_000)];
  const expectedId = new ChunkIdentifier(keys).id(data);

  it('identifies and seals in one message', async () => {
    const { id, sealed } = await pool.process(ObjectType.data, parts);
    expect(id).toEqual(expectedId);
    expect(openBlob(keys, ObjectType.data, id, joinSealed(sealed))).toEqual(data);
  });

  it('identifies only, then seals under the id given, without computing it again', async () => {
    const r = await pool.identify([data.subarray(0, 300_000), data.subarray(300_000)]);
    expect(r).toEqual({ id: expectedId });
    const sealed = await pool.seal(ObjectType.tree, r.id, parts);
    expect(openBlob(keys, ObjectType.tree, expectedId, joinSealed(sealed))).toEqual(data);
    // Sealed under whatever id it is given: a wrong one makes a blob that fails to open under the right one.
    const wrong = await pool.seal(ObjectType.data, Buffer.alloc(32, 1), parts);
    expect(() => openBlob(keys, ObjectType.data, expectedId, joinSealed(wrong))).toThrow(expect.objectContaining({ code: 'VP_AUTH_FAILED' }));
  });
});
