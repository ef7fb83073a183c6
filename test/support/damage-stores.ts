/**
 * Store decorators that inject faults into a real store (they wrap a LocalStore on the real file system): a put that
 * fails, a raw errno error, a record of every write, and a hook run when a listing ends.
 */
import type { Body, CallOptions, GetOptions, PutOptions, Store, StoreObjectInfo } from '../../src/transfer/store.js';
import { PassThroughStore } from './pass-through-store.js';

/** Fails the `n`th put (counted from 1) with a raw error, as a broken disk or decorator would, before it writes. */
export class FailNthPutStore extends PassThroughStore {
  puts = 0;
  constructor(inner: Store, readonly n: number, readonly error: () => unknown = () => Object.assign(new Error('EIO: i/o error, write'), { code: 'EIO', errno: -5 })) {
    super(inner);
  }
  override async put(name: string, body: Body, options?: PutOptions): Promise<void> {
    if (++this.puts === this.n) throw this.error();
    return this.inner.put(name, body, options);
  }
}

/** Throws a raw (untyped) error from `get`, `list` or `stat` for names starting with `prefix`. */
export class RawErrorStore extends PassThroughStore {
  constructor(inner: Store, readonly prefix: string, readonly error: () => unknown, readonly calls: ReadonlySet<'get' | 'list' | 'stat'> = new Set(['get'])) {
    super(inner);
  }
  override get(name: string, options?: GetOptions): Promise<Buffer> {
    // Thrown, not returned as a rejection: a decorator broken this way must be caught too.
    if (this.calls.has('get') && name.startsWith(this.prefix)) throw this.error();
    return this.inner.get(name, options);
  }
  override stat(name: string, options?: CallOptions): Promise<StoreObjectInfo | undefined> {
    if (this.calls.has('stat') && name.startsWith(this.prefix)) return Promise.reject(this.error());
    return this.inner.stat(name, options);
  }
  override async *list(prefix: string, options?: CallOptions): AsyncIterable<StoreObjectInfo> {
    let n = 0;
    for await (const o of this.inner.list(prefix, options)) {
      if (this.calls.has('list') && prefix.startsWith(this.prefix) && ++n === 2) throw this.error();
      yield o;
    }
  }
}

/** Records every write (put and delete) by name. */
export class RecordingStore extends PassThroughStore {
  readonly writes: string[] = [];
  override put(name: string, body: Body, options?: PutOptions): Promise<void> {
    this.writes.push(`put ${name}`);
    return this.inner.put(name, body, options);
  }
  override delete(name: string, options?: CallOptions): Promise<void> {
    this.writes.push(`delete ${name}`);
    return this.inner.delete(name, options);
  }
}

/**
 * Runs `hook(prefix)` once a listing of `prefix` has yielded its last object (before the caller sees that it has
 * ended): another writer's work lands exactly between two of the reader's steps.
 */
export class AfterListStore extends PassThroughStore {
  readonly listed: string[] = [];
  constructor(inner: Store, readonly hook: (prefix: string) => Promise<void>) {
    super(inner);
  }
  override async *list(prefix: string, options?: CallOptions): AsyncIterable<StoreObjectInfo> {
    this.listed.push(prefix);
    yield* this.inner.list(prefix, options);
    await this.hook(prefix);
  }
}
