/**
 * The object types of vault format v1 and their one-byte codes.
 *
 * The code is written in every envelope header and bound into the AEAD associated data, so an object sealed as
 * one type can never be opened as another (a data chunk whose bytes happen to parse as a snapshot is still a data
 * chunk). Codes are part of the on-disk format: never renumber, only add. See FORMAT.md, "Object types".
 *
 * @module
 */

export const ObjectType = {
  /** The vault configuration (`config`). */
  config: 1,
  /** A key slot (`keys/<id>`): not a sealed envelope, but its code is bound into the key wrap. */
  keySlot: 2,
  /** A chunk of file content, stored as a blob in a pack. */
  data: 3,
  /** A directory listing of a snapshot, stored as a blob in a pack. */
  tree: 4,
  /** The sealed table of contents at the end of a pack. */
  packHeader: 5,
  /** An index object (`index/<id>`): where each blob lives. */
  index: 6,
  /** A snapshot (`snapshots/<id>`). */
  snapshot: 7,
  /** A lock (`locks/<id>`). */
  lock: 8,
} as const;

export type ObjectTypeName = keyof typeof ObjectType;
export type ObjectTypeCode = (typeof ObjectType)[ObjectTypeName];

const NAMES = new Map<number, ObjectTypeName>(
  Object.entries(ObjectType).map(([name, code]) => [code, name as ObjectTypeName]),
);

/** The name of a type code, or `undefined` for a code this version does not know. */
export function objectTypeName(code: number): ObjectTypeName | undefined {
  return NAMES.get(code);
}

/** A human label for messages: "data chunk", "snapshot", or "unknown type 0x2a". */
export function describeType(code: number): string {
  const name = NAMES.get(code);
  if (name === undefined) return `unknown type 0x${code.toString(16).padStart(2, '0')}`;
  return name === 'data' ? 'data chunk' : name === 'packHeader' ? 'pack header' : name === 'keySlot' ? 'key slot' : name;
}
