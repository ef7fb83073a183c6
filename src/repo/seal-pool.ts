/**
 * A pool of sealing workers (seal-worker.ts): one per core beyond the main thread's, at least one.
 *
 * `process(type, parts)` resolves to the chunk's id and its sealed blob; `identify(parts)` to the id only, and
 * `seal(type, id, parts)` to the blob only (for data that is probably known: seal only what turns out new). Parts backed by a SharedArrayBuffer are
 * passed by reference; others are copied. Each worker handles its messages in order; the pool sends each job to the
 * worker with the fewest jobs waiting. Workers keep the process alive while they exist (a pending reply must not
 * let the process exit mid-backup): whoever makes a pool MUST `close()` it, as the blob saver (repo/blob-saver.ts)
 * does when it is closed.
 *
 * @module
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { VaultpathError } from '../errors.js';
import type { ObjectTypeCode } from '../crypto/object-type.js';
import type { SealedObject } from '../crypto/envelope.js';

interface Job {
  resolve: (r: { id: Buffer; sealed?: SealedObject }) => void;
  reject: (e: unknown) => void;
}

/** Where the compiled worker is: beside this module, or in dist/ when this module runs from source (tests). */
function workerUrl(): URL {
  return import.meta.url.endsWith('.ts') ? new URL('../../dist/repo/seal-worker.js', import.meta.url) : new URL('./seal-worker.js', import.meta.url);
}

/**
 * Identifies and seals chunks off the event loop: {@link SealPool}'s worker threads, or the addon's thread-pool jobs
 * (`nativeChunkSealer` in src/native/seal.ts). The parts' bytes must not change until the returned promise settles.
 */
export interface ChunkSealer {
  /** The id of `parts` and `parts` sealed as a blob of `type` under it. */
  process(type: ObjectTypeCode, parts: readonly Uint8Array[]): Promise<{ id: Buffer; sealed: SealedObject }>;
  /** The id of `parts` only (for data that is probably known already: seal it with `seal` if it is not). */
  identify(parts: readonly Uint8Array[]): Promise<{ id: Buffer }>;
  /** `parts` sealed as a blob of `type` under `id` (computed before by `identify`). */
  seal(type: ObjectTypeCode, id: Uint8Array, parts: readonly Uint8Array[]): Promise<SealedObject>;
  close(): Promise<void>;
}

export class SealPool implements ChunkSealer {
  readonly #workers: { worker: Worker; jobs: Map<number, Job> }[] = [];
  #seq = 0;
  #failure: unknown;

  constructor(keys: { sealKey: Uint8Array; chunkIdKey: Uint8Array }, size = Math.max(1, availableParallelism() - 1)) {
    for (let i = 0; i < size; i++) {
      const worker = new Worker(workerUrl());
      const slot = { worker, jobs: new Map<number, Job>() };
      worker.on('message', (m: { seq: number; id?: Uint8Array; parts?: Uint8Array[]; length?: number; error?: string }) => {
        const job = slot.jobs.get(m.seq);
        if (!job) return;
        slot.jobs.delete(m.seq);
        if (m.error !== undefined) job.reject(new Error(`sealing failed: ${m.error}`));
        else {
          const id = Buffer.from(m.id!.buffer, m.id!.byteOffset, m.id!.byteLength);
          const parts = m.parts?.map((p) => Buffer.from(p.buffer, p.byteOffset, p.byteLength));
          job.resolve(parts ? { id, sealed: { parts, length: m.length! } } : { id });
        }
      });
      worker.on('error', (e) => this.#fail(slot, e));
      worker.on('exit', (code) => {
        if (slot.jobs.size > 0) this.#fail(slot, new Error(`a sealing worker exited (code ${code})`));
      });
      worker.postMessage({ keys: { sealKey: keys.sealKey, chunkIdKey: keys.chunkIdKey } });
      this.#workers.push(slot);
    }
  }

  /** The id of `parts` and `parts` sealed as a blob of `type` under it. */
  process(type: ObjectTypeCode, parts: readonly Uint8Array[]): Promise<{ id: Buffer; sealed: SealedObject }> {
    return this.#send({ type, parts }) as Promise<{ id: Buffer; sealed: SealedObject }>;
  }

  /** The id of `parts` only (for data that is probably known already: seal it with {@link seal} if it is not). */
  identify(parts: readonly Uint8Array[]): Promise<{ id: Buffer }> {
    return this.#send({ parts, seal: false });
  }

  /** `parts` sealed as a blob of `type` under `id` (computed before by {@link identify}). */
  async seal(type: ObjectTypeCode, id: Uint8Array, parts: readonly Uint8Array[]): Promise<SealedObject> {
    return ((await this.#send({ type, parts, id: Uint8Array.from(id) })) as { sealed: SealedObject }).sealed;
  }

  #send(m: { type?: ObjectTypeCode; parts: readonly Uint8Array[]; id?: Uint8Array; seal?: false }): Promise<{ id: Buffer; sealed?: SealedObject }> {
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    const slot = this.#workers.reduce((a, b) => (b.jobs.size < a.jobs.size ? b : a));
    const seq = this.#seq++;
    // Views of shared memory travel by reference; anything else is copied into the message.
    const parts = m.parts.map((p) => (p.buffer instanceof SharedArrayBuffer ? p : Uint8Array.from(p)));
    return new Promise((resolve, reject) => {
      slot.jobs.set(seq, { resolve, reject });
      slot.worker.postMessage({ ...m, seq, parts });
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.#workers.map((w) => w.worker.terminate()));
  }

  #fail(slot: { jobs: Map<number, Job> }, e: unknown): void {
    this.#failure ??= new VaultpathError('VP_WORKER', `A sealing worker failed: ${(e as Error).message ?? String(e)}`, { cause: e });
    for (const job of slot.jobs.values()) job.reject(this.#failure);
    slot.jobs.clear();
  }
}
