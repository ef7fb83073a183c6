/**
 * The data check of a pack (`verify --read-data`): the pack read from the store in windows of {@link PACK_WINDOW}
 * bytes (memory stays bounded whatever its size), all of its bytes hashed against its name (a pack whose bytes
 * changed is reported even when every blob in it still opens: a flipped header byte, bytes appended or cut), and
 * every blob the index places in it opened under its id (authenticated, hashed back to that id).
 *
 * Contract: damage is recorded, never thrown: by blob id (hex) for a blob that does not open or lies past the end,
 * by object name for a pack whose bytes do not hash to its name. Only `VP_ABORTED` is thrown.
 *
 * @module
 */
import { createHash } from 'node:crypto';
import { type ErrorCode, VaultpathError, throwIfAborted } from '../errors.js';
import { toHex } from '../bytes.js';
import type { BlobLocation, Vault } from './vault.js';
import { Folder, objectName } from './layout.js';

/** Bytes of a pack read at once. */
export const PACK_WINDOW = 16 * 1024 * 1024;

/** Problems found, by key: a blob id (hex), `tree <id>`, or an object name (a pack). */
export type Found = Map<string, { problem: string; code?: ErrorCode }>;

/** The code of `e` when it is a {@link VaultpathError}. */
export function codeOf(e: unknown): ErrorCode | undefined {
  return e instanceof VaultpathError ? e.code : undefined;
}

/**
 * Reads pack `pack` (hex id, `size` bytes as listed) window by window: hashes all of it and opens every blob of
 * `entries` that lies within it. A blob across a window's edge is read on its own. Records what fails in `damaged`;
 * returns whether the pack could be read.
 */
export async function checkPack(vault: Vault, pack: string, size: number, entries: [Buffer, BlobLocation][], damaged: Found, signal: AbortSignal | undefined): Promise<boolean> {
  const name = objectName(Folder.data, Buffer.from(pack, 'hex'));
  const inPack = entries.filter(([, at]) => at.offset + at.length <= size).sort((a, b) => a[1].offset - b[1].offset);
  const hash = createHash('sha256');
  let next = 0;
  const open = (id: Buffer, at: BlobLocation, sealed: Buffer): void => {
    try {
      vault.openBlobAt(at, id, sealed);
    } catch (e) {
      damaged.set(toHex(id), { problem: (e as Error).message, code: codeOf(e) });
    }
  };
  try {
    for (let start = 0; start < size; ) {
      throwIfAborted(signal);
      const bytes = await vault.store.get(name, { signal, offset: start, length: Math.min(PACK_WINDOW, size - start) });
      hash.update(bytes);
      const end = start + bytes.length;
      for (; next < inPack.length && inPack[next]![1].offset + inPack[next]![1].length <= end; next++) {
        const [id, at] = inPack[next]!;
        if (at.offset >= start) open(id, at, bytes.subarray(at.offset - start, at.offset - start + at.length));
        else open(id, at, await vault.store.get(name, { signal, offset: at.offset, length: at.length }));
      }
      if (bytes.length === 0) break; // cut short since it was listed: the hash below tells
      start = end;
    }
  } catch (e) {
    if (codeOf(e) === 'VP_ABORTED') throw e;
    for (const [id] of entries) {
      if (!damaged.has(toHex(id))) damaged.set(toHex(id), { problem: `its pack ${name} cannot be read (${codeOf(e) ?? 'error'})`, code: codeOf(e) });
    }
    return false;
  }
  for (; next < inPack.length; next++) {
    const [id] = inPack[next]!;
    damaged.set(toHex(id), { problem: `its pack ${name} was cut short while it was read`, code: 'VP_MALFORMED_OBJECT' });
  }
  if (hash.digest('hex') !== pack) {
    damaged.set(name, {
      problem: 'its bytes do not hash to its name: the pack was changed after it was written (bytes altered, appended or cut)',
      code: 'VP_ID_MISMATCH',
    });
  }
  return true;
}
