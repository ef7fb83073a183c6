/**
 * vaultpath: the data path of a backup agent.
 *
 * Each stage of the data path is usable on its own; this module is the only public entry.
 *
 * @module
 */
export { VaultpathError, ERROR_CODES, isVaultpathError, type ErrorCode, type VaultpathErrorOptions } from './errors.js';
export { type ByteParts, concatParts, toHex, fromHex } from './bytes.js';

// crypto: passphrases, KDF, keys, key slots, sealed objects, chunk ids
export {
  MIN_PASSPHRASE_LENGTH,
  GENERATED_PASSPHRASE_BITS,
  passphraseBytes,
  generatePassphrase,
  type PassphraseCheckOptions,
} from './crypto/passphrase.js';
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
export { VaultKeys, generateMasterKey, KEY_LENGTH, SUBKEY_LABELS } from './crypto/keys.js';
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

// chunk: keyed FastCDC
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

// repo: the vault format
export { CONFIG_NAME, Folder, objectName, idFromName, type FolderName } from './repo/layout.js';
export { VAULT_FORMAT_VERSION, CONFIG_ID, sealConfig, openConfig, type VaultConfig } from './repo/config.js';
export {
  PackWriter,
  PACK_TRAILER_LENGTH,
  readPackTrailer,
  openPackHeader,
  type PackEntry,
  type PackInfo,
  type PackSink,
  type PackedType,
} from './repo/pack.js';
export { encodeIndex, decodeIndex, sealIndex, openIndex, type IndexEntry, type IndexContent } from './repo/index-file.js';

// scan: walk sources, probe attributes, apply the support rules
export {
  ATTRIBUTE_NAMES,
  type AttributeProbe,
  type EntryAttributes,
  type EntryKind,
  type ProbeContext,
  type ProbeResult,
  type ProbedEntry,
} from './scan/attributes.js';
export { StatxProbe, LstatProbe, TableProbe, defaultProbe, statxAvailable } from './scan/probe.js';
export {
  FILE_RULES,
  SKIP_REASONS,
  decide,
  type Decision,
  type DecisionKind,
  type SkipReason,
  type SupportRule,
} from './scan/rules.js';
export { walk, excludePatterns, caseKey, type WalkItem, type WalkEntry, type WalkSkip, type WalkOptions } from './scan/walk.js';
export {
  DEFAULT_MAX_SOURCE_BYTES,
  ScanSummary,
  scan,
  scanBatches,
  type ScanEntry,
  type ScanOptions,
  type Tally,
} from './scan/scan.js';
export { SkippedFilesReport, scanSources, defaultReportDir, type ScanSourcesOptions } from './scan/report.js';
export { type Clock, systemClock } from './throttle/clock.js';
export { parseRate, formatRate, type RateLimit } from './throttle/rate.js';
export { TokenBucket, BURST_SECONDS, MIN_BURST, MAX_WAIT_MS } from './throttle/token-bucket.js';
export { ThrottledStore, withThrottle, type ThrottleBuckets } from './transfer/throttled-store.js';
export { storeChain, withConcurrency, withRequestRate, type StoreChainOptions } from './transfer/limits.js';
export {
  Schedule,
  AGENT_RATE_RANGE,
  workHours,
  parseWeekdays,
  parseHours,
  checkTimetable,
  rateAt,
  nextChange,
  estimateCompletion,
  systemTimeZone,
  type Timetable,
  type TimeWindow,
  type Weekday,
  type RateTarget,
} from './throttle/schedule.js';
export { parseSize, formatBytes, parseDuration } from './units.js';

// transfer: the Store port and its backends
export {
  checkName,
  bodySize,
  bodyStream,
  type Store,
  type Body,
  type ReplayableBody,
  type StoreObjectInfo,
  type CallOptions,
  type PutOptions,
  type GetOptions,
} from './transfer/store.js';
export { downloadTo, markProgress, madeProgress } from './transfer/store.js';
export { LocalStore, type LocalStoreOptions } from './transfer/local-store.js';
export {
  AzureStore,
  AZURE_LIMITS,
  isRemoteLocation,
  parseAzureLocation,
  redact,
  type AzureLocation,
  type AzureStoreOptions,
} from './transfer/azure-store.js';
export {
  AZURE_API_VERSION,
  containerSas,
  credentialFromEnv,
  parseConnectionString,
  sasExpiry,
  signRequest,
  type AzureCredential,
  type ContainerSasOptions,
  type SasCredential,
  type SharedKeyCredential,
} from './transfer/azure-auth.js';
export { DEFAULT_RETRY_POLICY, RetryStore, isRetryable, withRetry, type RetryEvent, type RetryOptions, type RetryPolicy, type RetryStats } from './transfer/retry.js';
export { describeProxy, proxyFor, type ProxySettings } from './transfer/proxy.js';
export { openStore, type OpenStoreOptions } from './transfer/open.js';

// repo: the vault
export {
  Vault,
  VaultIndex,
  isDamage,
  type BlobLocation,
  type CreateVaultOptions,
  type FindSnapshotOptions,
  type FoundSnapshot,
  type ListSnapshotsOptions,
  type OpenVaultOptions,
  type SnapshotEntry,
  type SnapshotListing,
  type UnreadableSnapshot,
} from './repo/vault.js';
export {
  MAX_TREE_NODES,
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

// stage: the scratch cache
export { ScratchCache, scratchCapacity, SCRATCH_FLOOR, SCRATCH_SHARE, type OpenScratchOptions } from './stage/scratch-cache.js';

// engine: backup, restore, verify
export { backup, rootNodeNames, type BackupOptions, type BackupProgress, type BackupResult } from './engine/backup.js';
export { restore, type RestoreOptions, type RestoreResult, type RestoreError } from './engine/restore.js';
export { verify, type VerifyOptions, type VerifyResult, type Damage } from './engine/verify.js';
export { PackUploader, TARGET_PACK_SIZE, type PackUploaderOptions } from './engine/pack-uploader.js';
export { FolderLister, type FolderListerOptions } from './scan/folder.js';
export { dataExtents, setTimesNs } from './scan/probe.js';

// agent: vault identity, credentials files, registration, settings
export { checkVaultName, vaultNameFrom, createIdentity, readIdentity, type VaultIdentity, type MachineRecord } from './agent/identity.js';
export {
  DEFAULT_CREDENTIALS_VALIDITY_MS,
  credentialsFileName,
  readCredentialsFile,
  verifyCredentials,
  writeCredentialsFile,
  type CredentialsFile,
} from './agent/credentials.js';
export { checkMachineName, issueCredentials, machineLocation, register, registeredStore, type IssueOptions, type RegisterOptions, type RegisterResult } from './agent/register.js';
export { agentHome, loadAgent, saveAgent, sealSecret, openSecret, publicView, type AgentFile, type AgentSettings, type Registration, type ThrottleSettings } from './agent/settings.js';
