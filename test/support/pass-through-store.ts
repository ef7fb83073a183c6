/** A Store decorator that hands every call to `inner`: tests override the calls they observe or break. */
import type { Body, CallOptions, GetOptions, PutOptions, Store, StoreObjectInfo } from '../../src/transfer/store.js';

export class PassThroughStore implements Store {
  constructor(readonly inner: Store) {}
  get location(): string {
    return this.inner.location;
  }
  put(name: string, body: Body, options?: PutOptions): Promise<void> {
    return this.inner.put(name, body, options);
  }
  get(name: string, options?: GetOptions): Promise<Buffer> {
    return this.inner.get(name, options);
  }
  stat(name: string, options?: CallOptions): Promise<StoreObjectInfo | undefined> {
    return this.inner.stat(name, options);
  }
  list(prefix: string, options?: CallOptions): AsyncIterable<StoreObjectInfo> {
    return this.inner.list(prefix, options);
  }
  delete(name: string, options?: CallOptions): Promise<void> {
    return this.inner.delete(name, options);
  }
}

/** Records every get that reaches the inner store: counted by the prefix of the names read. */
export class CountingStore extends PassThroughStore {
  readonly gets: { name: string; offset?: number }[] = [];
  override get(name: string, options?: GetOptions): Promise<Buffer> {
    this.gets.push({ name, offset: options?.offset });
    return this.inner.get(name, options);
  }
  /** Gets of objects whose names start with `prefix` (e.g. `index/`) since the last {@link reset}. */
  count(prefix: string): number {
    return this.gets.filter((g) => g.name.startsWith(prefix)).length;
  }
  reset(): void {
    this.gets.length = 0;
  }
}
