// Loading the vault index: objects read a few at a time and added as they arrive, superseded objects never listed
// whatever the listing order, damaged entries passed over like damaged objects, and a store failure failing the
// load only after every read in flight has ended.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ObjectType } from '../../src/crypto/object-type.js';
import { joinSealed, sealObject } from '../../src/crypto/envelope.js';
import { type IndexEntry, encodeIndex } from '../../src/repo/index-file.js';
import { writeIndexObject } from '../../src/repo/index-writer.js';
import { Folder, objectName } from '../../src/repo/layout.js';
import { Vault } from '../../src/repo/vault.js';
import type { CallOptions, GetOptions, StoreObjectInfo } from '../../src/transfer/store.js';
import { VaultpathError } from '../../src/errors.js';
import { PassThroughStore } from '../support/pass-through-store.js';
import { PASSPHRASE, type VaultFixture, makeVault } from '../support/vaults.js';

let f: VaultFixture;
beforeEach(async () => {
  f = await makeVault();
});
afterEach(() => f.cleanup());

const entry = (n: number, pack = 0xaa): IndexEntry => ({
  id: Buffer.alloc(32, n),
  type: ObjectType.data,
  codec: 0,
  packId: Buffer.alloc(32, pack),
  offset: 0,
  length: 100,
  plaintextLength: 52,
});

/** Lists index objects in the order `order` gives their ids (the local store lists by name). */
class OrderedListing extends PassThroughStore {
  constructor(
    inner: PassThroughStore['inner'],
    readonly order: (names: string[]) => string[],
  ) {
    super(inner);
  }
  override async *list(prefix: string, options?: CallOptions): AsyncIterable<StoreObjectInfo> {
    const all: StoreObjectInfo[] = [];
    for await (const o of this.inner.list(prefix, options)) all.push(o);
    if (!prefix.startsWith('index')) return yield* all;
    const byName = new Map(all.map((o) => [o.name, o]));
    for (const name of this.order(all.map((o) => o.name))) yield byName.get(name)!;
  }
}

describe('vault.loadIndex', () => {
  for (const supersedingFirst of [true, false]) {
    it(`never lists what a superseded object lists, whether the superseding object is read ${supersedingFirst ? 'first' : 'last'}`, async () => {
      const old = await writeIndexObject(f.store, f.vault.keys, [entry(1), entry(2, 0xbb)]);
      const compacted = await writeIndexObject(f.store, f.vault.keys, [entry(1)], [old]);
      const other = await writeIndexObject(f.store, f.vault.keys, [entry(3)]);
      const names = [compacted, old, other].map((id) => objectName(Folder.index, id));
      const ordered = supersedingFirst ? names : [names[1]!, names[2]!, names[0]!];
      const vault = await Vault.open(new OrderedListing(f.store, () => ordered), PASSPHRASE);
      const index = await vault.loadIndex();
      expect(index.has(entry(1).id)).toBe(true);
      expect(index.has(entry(3).id)).toBe(true);
      expect(index.has(entry(2).id)).toBe(false);
      expect(index.hasPack(Buffer.alloc(32, 0xbb))).toBe(false);
      expect(index.size).toBe(2);
    });
  }

  it('passes over an object with a damaged entry, records it, and still honours what it supersedes', async () => {
    const old = await writeIndexObject(f.store, f.vault.keys, [entry(1), entry(2)]);
    await writeIndexObject(f.store, f.vault.keys, [entry(3)]);
    // Authentic (sealed under the vault's keys) but its second entry's type is not one a pack holds.
    const plain = encodeIndex({ entries: [entry(4), entry(5)], supersedes: [old] });
    plain[4 + 32 + 4 + 52 + 48] = ObjectType.snapshot;
    const id = Buffer.alloc(32, 0x42);
    await f.store.put(objectName(Folder.index, id), joinSealed(sealObject(f.vault.keys, ObjectType.index, id, plain)));
    const index = await f.vault.loadIndex();
    expect(index.damaged).toEqual([{ object: objectName(Folder.index, id), error: expect.objectContaining({ code: 'VP_MALFORMED_OBJECT', message: expect.stringMatching(/entry 1 has type 7/) }) }]);
    expect([1, 2, 3, 4, 5].map((n) => index.has(entry(n).id))).toEqual([false, false, true, false, false]);
  });

  it('reads several objects at once but never more than eight, and a failed read fails the load after the others end', async () => {
    for (let i = 0; i < 30; i++) await writeIndexObject(f.store, f.vault.keys, [entry(i + 1)]);
    let inFlight = 0;
    let most = 0;
    let ended = 0;
    let listed = false;
    const waiting: (() => void)[] = [];
    const release = (): void => {
      // Reads are held until eight are in flight or the listing has ended: the loader decides how many overlap.
      if (inFlight >= 8 || listed) for (const go of waiting.splice(0)) go();
    };
    class Gated extends PassThroughStore {
      failOn?: string;
      override async get(name: string, options?: GetOptions): Promise<Buffer> {
        if (!name.startsWith('index/')) return this.inner.get(name, options);
        inFlight++;
        most = Math.max(most, inFlight);
        try {
          const gate = new Promise<void>((go) => waiting.push(go));
          release();
          await gate;
          if (name === this.failOn) throw new VaultpathError('VP_STORE_IO', 'the disk went away');
          return await this.inner.get(name, options);
        } finally {
          inFlight--;
          ended++;
          release();
        }
      }
      override async *list(prefix: string, options?: CallOptions): AsyncIterable<StoreObjectInfo> {
        listed = false;
        for await (const o of this.inner.list(prefix, options)) yield o;
        listed = true;
        release();
      }
    }
    const store = new Gated(f.store);
    const vault = await Vault.open(store, PASSPHRASE);
    const index = await vault.loadIndex();
    expect(index.size).toBe(30);
    expect(most).toBe(8);

    const names: string[] = [];
    for await (const o of f.store.list('index/')) names.push(o.name);
    store.failOn = names[3];
    ended = 0;
    await expect(vault.loadIndex()).rejects.toMatchObject({ code: 'VP_STORE_IO' });
    expect(inFlight).toBe(0);
    expect(ended).toBeGreaterThan(4);
  });
});
