/**
 * The conformance suite every Store must pass (restic's backend test suite, kopia's VerifyStorage). Each backend's
 * test file calls `storeConformance` with a factory that gives a fresh, empty store.
 */
import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ReplayableBody, Store } from '../../src/transfer/store.js';

export interface StoreFixture {
  readonly store: Store;
  cleanup(): Promise<void>;
}

async function names(store: Store, prefix: string): Promise<string[]> {
  const out: string[] = [];
  for await (const o of store.list(prefix)) out.push(o.name);
  return out.sort();
}

function replayable(data: Buffer, pieceSize: number): ReplayableBody {
  return {
    size: data.length,
    async *stream() {
      for (let o = 0; o < data.length; o += pieceSize) yield data.subarray(o, o + pieceSize);
    },
  };
}

export function storeConformance(label: string, makeStore: () => Promise<StoreFixture>): void {
  describe(`${label}: the Store contract`, () => {
    let fixture: StoreFixture;
    let store: Store;
    beforeEach(async () => {
      fixture = await makeStore();
      store = fixture.store;
    });
    afterEach(() => fixture.cleanup());

    it('gives back exactly what was put', async () => {
      const data = randomBytes(100_000);
      await store.put('snapshots/aa', data);
      expect((await store.get('snapshots/aa')).equals(data)).toBe(true);
    });

    it('stores empty objects', async () => {
      await store.put('locks/empty', Buffer.alloc(0));
      expect((await store.get('locks/empty')).length).toBe(0);
      expect(await store.stat('locks/empty')).toEqual({ name: 'locks/empty', size: 0 });
    });

    it('streams a replayable body, twice if asked', async () => {
      const data = randomBytes(3 * 1024 * 1024 + 17);
      const body = replayable(data, 1024 * 1024);
      await store.put('data/00/one', body);
      await store.put('data/00/two', body);
      expect((await store.get('data/00/one')).equals(data)).toBe(true);
      expect((await store.get('data/00/two')).equals(data)).toBe(true);
    });

    it('reads byte ranges, and a range past the end returns what exists', async () => {
      const data = randomBytes(1000);
      await store.put('data/11/x', data);
      expect((await store.get('data/11/x', { offset: 10, length: 20 })).equals(data.subarray(10, 30))).toBe(true);
      expect((await store.get('data/11/x', { offset: 990, length: 100 })).equals(data.subarray(990))).toBe(true);
      expect((await store.get('data/11/x', { offset: 500 })).equals(data.subarray(500))).toBe(true);
    });

    it('replaces an object on a plain put', async () => {
      await store.put('index/i', Buffer.from('first'));
      await store.put('index/i', Buffer.from('second'));
      expect((await store.get('index/i')).toString()).toBe('second');
    });

    it('refuses to replace with ifNotExists, keeping the original', async () => {
      await store.put('snapshots/s', Buffer.from('original'), { ifNotExists: true });
      await expect(store.put('snapshots/s', Buffer.from('other'), { ifNotExists: true })).rejects.toMatchObject({ code: 'VP_ALREADY_EXISTS' });
      expect((await store.get('snapshots/s')).toString()).toBe('original');
    });

    it('reports a missing object: get rejects VP_NOT_FOUND, stat says undefined, delete succeeds', async () => {
      await expect(store.get('snapshots/missing')).rejects.toMatchObject({ code: 'VP_NOT_FOUND' });
      expect(await store.stat('snapshots/missing')).toBeUndefined();
      await store.delete('snapshots/missing');
    });

    it('lists by prefix, across fan-out folders, each name once, with sizes', async () => {
      await store.put('data/00/a', Buffer.alloc(1));
      await store.put('data/ff/b', Buffer.alloc(2));
      await store.put('index/c', Buffer.alloc(3));
      await store.put('config', Buffer.alloc(4));
      expect(await names(store, 'data/')).toEqual(['data/00/a', 'data/ff/b']);
      expect(await names(store, 'index/')).toEqual(['index/c']);
      expect(await names(store, 'snapshots/')).toEqual([]);
      const sizes: Record<string, number> = {};
      for await (const o of store.list('')) sizes[o.name] = o.size;
      expect(sizes).toEqual({ 'data/00/a': 1, 'data/ff/b': 2, 'index/c': 3, config: 4 });
    });

    it('deletes', async () => {
      await store.put('locks/l', Buffer.from('x'));
      await store.delete('locks/l');
      expect(await store.stat('locks/l')).toBeUndefined();
    });

    it.each(['../escape', '/etc/passwd', 'a/../../b', '', 'data//x', 'a\\b', 'snap shots/x', 'x/./y'])('refuses the name %j', async (name) => {
      await expect(store.put(name, Buffer.alloc(1))).rejects.toMatchObject({ code: 'VP_INVALID_NAME' });
      await expect(store.get(name)).rejects.toMatchObject({ code: 'VP_INVALID_NAME' });
    });

    it('starts nothing once aborted, and leaves no object behind', async () => {
      const controller = new AbortController();
      controller.abort();
      await expect(store.put('snapshots/aborted', Buffer.alloc(10), { signal: controller.signal })).rejects.toMatchObject({ code: 'VP_ABORTED' });
      expect(await store.stat('snapshots/aborted')).toBeUndefined();
      await expect(store.get('config', { signal: controller.signal })).rejects.toMatchObject({ code: 'VP_ABORTED' });
    });

    it('never shows a partial object when the body fails half-way', async () => {
      const failing: ReplayableBody = {
        size: 2000,
        async *stream() {
          yield Buffer.alloc(1000, 1);
          throw new Error('the source broke');
        },
      };
      await expect(store.put('data/22/partial', failing)).rejects.toThrow();
      expect(await store.stat('data/22/partial')).toBeUndefined();
      expect(await names(store, '')).toEqual([]);
    });
  });
}
