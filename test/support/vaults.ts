/** Vaults on the real file system for engine tests, with a cheap KDF (the KDF's cost is not what these test). */
import { createHash } from 'node:crypto';
import { lstat, opendir, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { LocalStore } from '../../src/transfer/local-store.js';
import { Vault } from '../../src/repo/vault.js';
import { ObjectType } from '../../src/crypto/object-type.js';
import type { ChunkerParams } from '../../src/chunk/fastcdc.js';
import { type BackupOptions, backup } from '../../src/engine/backup.js';
import { TEST_KDF } from './seeded.js';
import { tempDir } from './trees.js';
import { ScratchCache } from '../../src/stage/scratch-cache.js';

export const PASSPHRASE = 'correct horse battery staple';

export interface VaultFixture {
  readonly dir: string;
  readonly vault: Vault;
  readonly store: LocalStore;
  /** Folders for sources, scratch, recovery and targets under `dir`. */
  path(...parts: string[]): string;
  cleanup(): Promise<void>;
}

export async function makeVault(options: { chunker?: ChunkerParams } = {}): Promise<VaultFixture> {
  const dir = await tempDir('vaultpath-engine-');
  const store = await LocalStore.open(join(dir, 'vault'), { create: true, durable: false });
  const vault = await Vault.create(store, PASSPHRASE, { kdf: TEST_KDF, chunker: options.chunker });
  return { dir, vault, store, path: (...parts) => join(dir, ...parts), cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** A vault with a scratch cache of `capacity` bytes in its folder; `cleanup` closes the cache and removes both. */
export async function makeVaultWithScratch(capacity = 64 * 1024 * 1024): Promise<VaultFixture & { readonly scratch: ScratchCache }> {
  const f = await makeVault();
  const scratch = await ScratchCache.open(f.path('scratch'), { capacity });
  const cleanup = async (): Promise<void> => {
    await scratch.close();
    await f.cleanup();
  };
  return { ...f, scratch, cleanup };
}

/** The vault's packs (object names) that hold file data only, and those that hold folder listings (trees). */
export async function packsByContent(f: VaultFixture): Promise<{ dataPacks: string[]; treePacks: string[] }> {
  const withTrees = new Set<string>();
  for (const [, at] of (await f.vault.loadIndex()).entries()) if (at.type === ObjectType.tree) withTrees.add(at.packId.toString('hex'));
  const dataPacks: string[] = [];
  const treePacks: string[] = [];
  for await (const o of f.store.list('data/')) (withTrees.has(o.name.slice(-64)) ? treePacks : dataPacks).push(o.name);
  return { dataPacks, treePacks };
}

/** Flips every bit of byte `at` of the vault's object `name` (as `f.store.list` names it, e.g. `data/ab/ab…`). */
export async function damageObject(f: VaultFixture, name: string, at: number): Promise<void> {
  const path = f.path('vault', ...name.split('/'));
  const bytes = await readFile(path);
  bytes[at]! ^= 0xff;
  await writeFile(path, bytes);
}

/** Every entry below `root`: type, mode, size, mtime (ns), content hash or link target. */
export async function describeTree(root: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (rel: string): Promise<void> => {
    for await (const entry of await opendir(rel === '' ? root : join(root, rel))) {
      const r = rel === '' ? entry.name : `${rel}/${entry.name}`;
      const st = await lstat(join(root, r), { bigint: true });
      const mode = (Number(st.mode) & 0o7777).toString(8);
      if (entry.isDirectory()) {
        out[r] = `dir ${mode} ${st.mtimeNs}`;
        await walk(r);
      } else if (entry.isSymbolicLink()) out[r] = `link -> ${await readlink(join(root, r))}`;
      else {
        const hash = createHash('sha256').update(await readFile(join(root, r))).digest('hex').slice(0, 16);
        out[r] = `file ${mode} ${st.size} ${st.mtimeNs} ${hash}`;
      }
    }
  };
  await walk('');
  return out;
}

/**
 * A backup of `sources` aborted once the store has acknowledged at least `bytes` (in packs of 512 KiB): what it
 * rejected with, and the bytes stored when the abort was asked for.
 */
export async function backupAbortedAfter(vault: Vault, sources: string[], bytes: number, options: BackupOptions): Promise<{ error: unknown; storedAtAbort: number }> {
  const controller = new AbortController();
  let storedAtAbort = 0;
  const error = await backup(vault, sources, {
    ...options,
    targetPackSize: 512 * 1024,
    signal: controller.signal,
    onProgress: (p) => {
      if (p.bytesStored >= bytes && !controller.signal.aborted) {
        storedAtAbort = p.bytesStored;
        controller.abort();
      }
    },
  }).then(() => undefined, (e: unknown) => e);
  return { error, storedAtAbort };
}
