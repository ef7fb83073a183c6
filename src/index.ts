/**
 * vaultpath: the data path of a backup agent.
 *
 * This is the stable public entry: what a program that backs up, restores and checks a vault needs, and nothing
 * that only wires the engine together. Every name here follows semver; the list is pinned by
 * test/public-surface.test.ts, so adding or removing one is a deliberate edit there too. The vault format's
 * building blocks (keys, sealing, chunking, packs, indexes, trees) are at the experimental subpath
 * `vaultpath/format` (src/format.ts); everything else is internal and may change in any release.
 *
 * @module
 */

// errors: every failure a user can cause is a VaultpathError with a stable code
export { VaultpathError, ERROR_CODES, isVaultpathError, type ErrorCode, type VaultpathErrorOptions } from './errors.js';
export { type ByteParts } from './bytes.js';

// vaults: create, open, list and find snapshots
export {
  Vault,
  type CreateVaultOptions,
  type FindSnapshotOptions,
  type FoundSnapshot,
  type ListSnapshotsOptions,
  type OpenVaultOptions,
  type SnapshotEntry,
  type SnapshotListing,
  type UnreadableSnapshot,
} from './repo/vault.js';
export { type VaultConfig } from './repo/config.js';
export { METADATA_CACHE_BYTES, type MetadataCacheOptions } from './repo/metadata-cache.js';
export { type Snapshot, type Tree, type TreeNode, type NodeType } from './repo/tree.js';

// keys: passphrases and the vault's key parameters
export {
  MIN_PASSPHRASE_LENGTH,
  GENERATED_PASSPHRASE_BITS,
  generatePassphrase,
  passphraseBytes,
  type PassphraseCheckOptions,
} from './crypto/passphrase.js';
export { DEFAULT_KDF_PARAMS, KDF_BOUNDS, type KdfParams, type KdfBounds } from './crypto/kdf.js';
export { type VaultKeys } from './crypto/keys.js';
export { DEFAULT_CHUNKER_PARAMS, type ChunkerParams } from './chunk/fastcdc.js';

// backup, restore, verify
export { backup, type BackupOptions, type BackupProgress, type BackupResult } from './engine/backup.js';
export { restore, type RestoreOptions, type RestoreResult, type RestoreError } from './engine/restore.js';
export { verify, type VerifyOptions, type VerifyResult, type Damage } from './engine/verify.js';

// scan: what a backup would take and skip, and why
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
export { FILE_RULES, SKIP_REASONS, type Decision, type DecisionKind, type SkipReason, type SupportRule } from './scan/rules.js';
export {
  type AttributeProbe,
  type EntryAttributes,
  type EntryKind,
  type ProbeContext,
  type ProbeResult,
  type ProbedEntry,
} from './scan/attributes.js';
// probes a user passes as ScanOptions.probe / BackupOptions.probe: the platform default, or attributes from a table
export { TableProbe, defaultProbe } from './scan/probe.js';

// stores: the Store port, its backends, and the decorators a user composes
export {
  type Store,
  type Body,
  type ReplayableBody,
  type StoreObjectInfo,
  type CallOptions,
  type PutOptions,
  type GetOptions,
} from './transfer/store.js';
export { openStore, type OpenStoreOptions } from './transfer/open.js';
export { LocalStore, type LocalStoreOptions } from './transfer/local-store.js';
export { AzureStore, parseAzureLocation, type AzureLocation, type AzureStoreOptions } from './transfer/azure-store.js';
export {
  containerSas,
  credentialFromEnv,
  parseConnectionString,
  type AzureCredential,
  type ContainerSasOptions,
  type SasCredential,
  type SharedKeyCredential,
} from './transfer/azure-auth.js';
export { type ProxySettings } from './transfer/proxy.js';
export { DEFAULT_RETRY_POLICY, RetryStore, withRetry, type RetryEvent, type RetryOptions, type RetryPolicy, type RetryStats } from './transfer/retry.js';
export { ThrottledStore, withThrottle, type ThrottleBuckets } from './transfer/throttled-store.js';
export { storeChain, withConcurrency, withRequestRate, type StoreChainOptions } from './transfer/limits.js';
// store kinds: which store opens a location (openStore resolves through them)
export { registerStoreKind, resolveStoreKind, storeKinds, type StoreKind, type StoreKindOpenOptions, type StoreKindOptions } from './transfer/registry.js';

// throttle: rates, token buckets, timetables
export { type Clock, systemClock } from './throttle/clock.js';
export { parseRate, formatRate, type RateLimit } from './throttle/rate.js';
export { TokenBucket, type TokenBucketOptions } from './throttle/token-bucket.js';
export {
  Schedule,
  workHours,
  parseWeekdays,
  parseHours,
  checkTimetable,
  estimateCompletion,
  type Timetable,
  type TimeWindow,
  type Weekday,
  type RateTarget,
} from './throttle/schedule.js';
export { parseSize, formatBytes, parseDuration } from './units.js';
