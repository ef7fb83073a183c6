/**
 * vaultpath/format: the building blocks of vault format v1, for independent readers and for using the stages
 * directly (keys and key slots, sealed objects, chunk ids, the keyed chunker, the layout, config, packs, indexes,
 * trees and snapshots).
 *
 * Experimental: these names track the format's implementation and may change in a minor release; the package root
 * (src/index.ts) is the stable entry. Only readers and codecs are here: the pack writer, the uploader, the seal
 * pools and other engine wiring stay internal. Every decoder validates types and bounds and fails with a typed
 * VaultpathError, because a vault is untrusted input. The list is pinned by test/public-surface.test.ts.
 *
 * @module
 */
export { concatParts, toHex, fromHex, type ByteParts } from './bytes.js';

// keys: master key, working subkeys, passphrase KDF, key slots
export { VaultKeys, generateMasterKey, KEY_LENGTH, SUBKEY_LABELS } from './crypto/keys.js';
export {
  DEFAULT_KDF_PARAMS,
  KDF_BOUNDS,
  KDF_SALT_LENGTH,
  checkKdfParams,
  deriveKey,
  type KdfParams,
  type KdfBounds,
  type DeriveKeyOptions,
} from './crypto/kdf.js';
export {
  KEY_SLOT_LENGTH,
  KEY_SLOT_ID_LENGTH,
  createKeySlot,
  decodeKeySlot,
  openKeySlot,
  unlockKeySlots,
  type KeySlot,
  type CreateKeySlotOptions,
  type OpenKeySlotOptions,
} from './crypto/key-slot.js';

// sealed objects and chunk ids
export { ObjectType, objectTypeName, type ObjectTypeName, type ObjectTypeCode } from './crypto/object-type.js';
export {
  ENVELOPE_VERSION,
  OBJECT_OVERHEAD,
  BLOB_OVERHEAD,
  OBJECT_ID_LENGTH,
  Codec,
  sealObject,
  sealBlob,
  openObject,
  openBlob,
  joinSealed,
  type SealKeys,
  type SealedObject,
  type OpenOptions,
  type OpenBlobOptions,
} from './crypto/envelope.js';
export { ChunkIdentifier, CHUNK_ID_LENGTH, type ChunkIdKeys } from './crypto/chunk-id.js';

// the keyed FastCDC chunker
export {
  DEFAULT_CHUNKER_PARAMS,
  CHUNKER_LIMITS,
  checkChunkerParams,
  chunkStream,
  CutPointFinder,
  type Chunk,
  type ChunkerParams,
  type ChunkStreamOptions,
} from './chunk/fastcdc.js';

// the vault's objects: layout, config, packs (reading), indexes, trees and snapshots
export { CONFIG_NAME, Folder, objectName, idFromName, type FolderName } from './repo/layout.js';
export { VAULT_FORMAT_VERSION, CONFIG_ID, sealConfig, openConfig, type VaultConfig } from './repo/config.js';
export { PACK_TRAILER_LENGTH, readPackTrailer, openPackHeader, type PackEntry, type PackedType } from './repo/pack.js';
export { encodeIndex, decodeIndex, sealIndex, openIndex, type IndexEntry, type IndexContent } from './repo/index-file.js';
export {
  MAX_TREE_NODES,
  MAX_TREE_DEPTH,
  checkNodeName,
  encodeTree,
  decodeTree,
  encodeSnapshot,
  decodeSnapshot,
  type Tree,
  type TreeNode,
  type NodeType,
  type Snapshot,
} from './repo/tree.js';
