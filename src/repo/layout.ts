/**
 * Where each object lives in a vault: the names of format v1.
 *
 * ```
 * config                     the vault configuration (sealed, type config)
 * keys/<id>                  key slots (156 bytes each)
 * data/<id[0..2]>/<id>       packs, named by the SHA-256 of their bytes, fanned out by the first hex byte
 * index/<id>                 index objects (random id)
 * snapshots/<id>             snapshots (random id)
 * locks/<id>                 locks (random id)
 * ```
 * Every `<id>` is 64 lower-case hex characters. Names use `/` whatever the platform; stores map them.
 *
 * @module
 */
import { fromHex, toHex } from '../bytes.js';

export const CONFIG_NAME = 'config';

/** The folder of each kind of named object. */
export const Folder = {
  keys: 'keys',
  data: 'data',
  index: 'index',
  snapshots: 'snapshots',
  locks: 'locks',
} as const;
export type FolderName = (typeof Folder)[keyof typeof Folder];

const ID_HEX = /^[0-9a-f]{64}$/;

/** The name of the object with `id` in `folder`. */
export function objectName(folder: FolderName, id: Uint8Array): string {
  const hex = toHex(id);
  if (hex.length !== 64) throw new RangeError(`"id" expected 32 bytes, got ${id.length}`);
  return folder === Folder.data ? `${folder}/${hex.slice(0, 2)}/${hex}` : `${folder}/${hex}`;
}

/**
 * The id in an object name of `folder`, or `undefined` when the name is not one this format writes there
 * (a temporary file, a stray file): such names are ignored, never trusted.
 */
export function idFromName(folder: FolderName, name: string): Buffer | undefined {
  const parts = name.split('/');
  const expected = folder === Folder.data ? 3 : 2;
  if (parts.length !== expected || parts[0] !== folder) return undefined;
  const hex = parts[parts.length - 1]!;
  if (!ID_HEX.test(hex)) return undefined;
  if (folder === Folder.data && parts[1] !== hex.slice(0, 2)) return undefined;
  return fromHex(hex);
}
