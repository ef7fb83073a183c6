/**
 * A writing run's hold on the vault: the index it dedups against, its shared lock from before its first pack until
 * its snapshot is written, and the adoption of packs an earlier run left outside every index (FORMAT.md §11, §12).
 *
 * Life of a session:
 *
 *   open     the lock is written while the index and the other locks are read (none needs another); on a failure
 *            before anything is stored, the lock is removed again
 *   adopt    only when an earlier run's lock is still there (it may have stored packs no index lists) or an index
 *            object is damaged (it hid the blobs it listed): the vault's packs are listed, those no index lists are
 *            read and indexed, and the locks found abandoned (lock.ts) are removed
 *   commit   the snapshot is written (the caller MUST first have every pack and index object it references
 *            acknowledged: BlobSaver.finish), then the lock is removed: it has nothing left to tell
 *   abandon  a run that failed keeps its lock only when it staged a pack, which may have reached the store without
 *            an index: the next run then adopts it
 *
 * A dry run (`write: false`) takes no lock, reads no locks and adopts nothing. Locks never guard data (lock.ts): a
 * lock that cannot be removed is left, which costs the next run a pack listing, never a byte of a snapshot.
 *
 * @module
 */
import { hostname as osHostname } from 'node:os';
import type { Clock } from '../throttle/clock.js';
import type { Vault, VaultIndex } from './vault.js';
import { type Lock, isAbandoned } from './lock.js';
import type { Snapshot } from './tree.js';

export interface WriteSessionOptions {
  /** False for a dry run: no lock, no adoption, nothing written. */
  readonly write: boolean;
  /** When the run started (the lock's time), in ms since the epoch. */
  readonly started: number;
  readonly clock: Clock;
  readonly signal?: AbortSignal;
  /** Where the vault index is cached between runs (the scratch folder); none when absent. */
  readonly indexCacheDir?: string;
}

export class WriteSession {
  readonly vault: Vault;
  /** The vault's index as loaded, with what this run adopts added. */
  readonly index: VaultIndex;
  readonly #lockId: string | undefined;
  readonly #earlierLocks: readonly { id: string; lock?: Lock }[];
  readonly #write: boolean;
  readonly #clock: Clock;
  readonly #signal: AbortSignal | undefined;

  private constructor(vault: Vault, index: VaultIndex, lockId: string | undefined, earlierLocks: readonly { id: string; lock?: Lock }[], options: WriteSessionOptions) {
    this.vault = vault;
    this.index = index;
    this.#lockId = lockId;
    this.#earlierLocks = earlierLocks;
    this.#write = options.write;
    this.#clock = options.clock;
    this.#signal = options.signal;
  }

  /**
   * Loads the index and, for a writing run, takes the run's lock and reads the others; `alongside` (the parent
   * snapshot, say) runs at the same time. On any failure the lock is removed again and the error thrown.
   * @throws store errors, `VP_ABORTED`, or what `alongside` threw.
   */
  static async open<T>(vault: Vault, options: WriteSessionOptions, alongside: Promise<T>): Promise<{ session: WriteSession; alongside: T }> {
    const { signal } = options;
    // The lock goes before any pack: one left behind tells the next backup that packs may lie outside the index.
    const locking = options.write
      ? vault.writeLock({ time: new Date(options.started).toISOString(), hostname: osHostname(), pid: process.pid, exclusive: false }, { signal })
      : undefined;
    locking?.catch(() => undefined); // awaited below
    const [index, found, locks] = await Promise.all([vault.loadIndex({ signal, cacheDir: options.indexCacheDir, prefixIds: options.indexCacheDir !== undefined }), alongside, options.write ? vault.readLocks({ signal }) : []]).catch(
      async (e: unknown) => {
        const id = await locking?.catch(() => undefined);
        if (id) await vault.deleteLock(id).catch(() => undefined); // nothing was stored
        throw e;
      },
    );
    const lockId = await locking;
    return { session: new WriteSession(vault, index, lockId, locks.filter((l) => l.id !== lockId), options), alongside: found };
  }

  /**
   * Adopts packs no index lists when an earlier run left its lock, then removes the locks found abandoned; or, when
   * an index object is damaged, adopts the packs holding the blobs it hid, so what is intact is reused and earlier
   * snapshots are whole again once this run's index lands. Without either, the vault's packs are not listed at all.
   */
  async adopt(): Promise<void> {
    const signal = this.#signal;
    if (this.#earlierLocks.length > 0) {
      await this.vault.adoptOrphanPacks(this.index, { signal });
      const now = this.#clock.now();
      const here = osHostname();
      for (const { id, lock } of this.#earlierLocks) {
        if (lock && isAbandoned(lock, { now, hostname: here })) await this.vault.deleteLock(id, { signal }).catch(() => undefined);
      }
    } else if (this.index.damaged.length > 0 && this.#write) {
      await this.vault.adoptOrphanPacks(this.index, { signal });
    }
  }

  /**
   * Writes `snapshot` and removes the run's lock; returns the snapshot's id. Everything the snapshot references
   * MUST be acknowledged and indexed before this is called.
   */
  async commit(snapshot: Snapshot): Promise<string> {
    const id = await this.vault.writeSnapshot(snapshot, { signal: this.#signal });
    await this.release();
    return id;
  }

  /** Ends a failed run: its lock is kept only when a staged pack may have reached the store outside any index. */
  async abandon(packsStaged: number): Promise<void> {
    if (packsStaged === 0) await this.release();
    else await this.index.close();
  }

  /** Removes the run's lock (nothing of this run, or everything, is outside the index), and lets the index go. */
  async release(): Promise<void> {
    await this.index.close();
    if (this.#lockId) await this.vault.deleteLock(this.#lockId).catch(() => undefined);
  }
}
