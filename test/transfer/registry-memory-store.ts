/**
 * A second kind of store, written against the Store contract alone: `mem://NAME` is a vault held in this process's
 * memory, one Map per NAME. It exists to show what a new kind costs (this module plus one registerStoreKind call)
 * and is held to the same conformance suite as the built-in kinds. An object appears only once its whole body has
 * been read, so a body that fails half-way leaves nothing behind.
 */
import { VaultpathError, throwIfAborted } from '../../src/errors.js';
import { type StoreKind } from '../../src/transfer/registry.js';
import { type Body, type CallOptions, type GetOptions, type PutOptions, type Store, type StoreObjectInfo, bodyStream, checkName } from '../../src/transfer/store.js';

const vaults = new Map<string, Map<string, Buffer>>();

export class MemoryStore implements Store {
  readonly location: string;
  readonly #objects: Map<string, Buffer>;

  constructor(location: string, objects: Map<string, Buffer>) {
    this.location = location;
    this.#objects = objects;
  }

  async put(name: string, body: Body, options: PutOptions = {}): Promise<void> {
    checkName(name);
    throwIfAborted(options.signal);
    const pieces: Uint8Array[] = [];
    for await (const piece of bodyStream(body)) {
      throwIfAborted(options.signal);
      pieces.push(piece);
    }
    if (options.ifNotExists && this.#objects.has(name)) throw new VaultpathError('VP_ALREADY_EXISTS', `${name} already exists in ${this.location}.`);
    this.#objects.set(name, Buffer.concat(pieces));
  }

  async get(name: string, options: GetOptions = {}): Promise<Buffer> {
    checkName(name);
    throwIfAborted(options.signal);
    const data = this.#objects.get(name);
    if (!data) throw new VaultpathError('VP_NOT_FOUND', `${name} does not exist in ${this.location}.`);
    const offset = options.offset ?? 0;
    return Buffer.from(data.subarray(offset, options.length === undefined ? undefined : offset + options.length));
  }

  async stat(name: string, options: CallOptions = {}): Promise<StoreObjectInfo | undefined> {
    checkName(name);
    throwIfAborted(options.signal);
    const data = this.#objects.get(name);
    return data ? { name, size: data.length } : undefined;
  }

  async *list(prefix: string, options: CallOptions = {}): AsyncIterable<StoreObjectInfo> {
    for (const [name, data] of [...this.#objects]) {
      throwIfAborted(options.signal);
      if (name.startsWith(prefix)) yield { name, size: data.length };
    }
  }

  async delete(name: string, options: CallOptions = {}): Promise<void> {
    checkName(name);
    throwIfAborted(options.signal);
    this.#objects.delete(name);
  }
}

/** The kind: `mem://NAME`; `create` makes the named vault, otherwise it must exist. */
export const memoryKind: StoreKind = {
  name: 'mem',
  schemes: ['mem'],
  async open(location, { create, signal }) {
    throwIfAborted(signal);
    const key = location.slice('mem://'.length).replace(/\/+$/, '');
    let objects = vaults.get(key);
    if (!objects) {
      if (!create) throw new VaultpathError('VP_NOT_FOUND', `No vault at ${location}.`);
      vaults.set(key, (objects = new Map()));
    }
    return new MemoryStore(location, objects);
  },
};

/** Forgets the named vault. */
export function dropMemoryVault(location: string): void {
  vaults.delete(location.slice('mem://'.length).replace(/\/+$/, ''));
}
