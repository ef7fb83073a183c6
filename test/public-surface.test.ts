/**
 * The package's public surface, pinned: the exact names (values and types) that `vaultpath` and its subpath
 * exports offer, read from the built declaration files, and a check that each entry resolves through package.json
 * "exports" the way a user's import does (a child Node process importing the package by name from its own folder).
 *
 * Changing the surface is a deliberate edit of the lists below: root names follow semver (docs/library.md, "Stable
 * names"); `vaultpath/format` is experimental. Engine wiring (pack writer, uploader, request signing, progress
 * markers, agent settings) must never show up here.
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));

const ROOT_NAMES = [
  'AttributeProbe', 'AzureCredential', 'AzureLocation', 'AzureStore', 'AzureStoreOptions', 'BackupOptions',
  'BackupProgress', 'BackupResult', 'Body', 'ByteParts', 'CallOptions', 'ChunkerParams', 'Clock',
  'ContainerSasOptions', 'CreateVaultOptions', 'DEFAULT_CHUNKER_PARAMS', 'DEFAULT_KDF_PARAMS',
  'DEFAULT_MAX_SOURCE_BYTES', 'DEFAULT_RETRY_POLICY', 'Damage', 'Decision', 'DecisionKind', 'ERROR_CODES',
  'EntryAttributes', 'EntryKind', 'ErrorCode', 'FILE_RULES', 'FindSnapshotOptions', 'FoundSnapshot',
  'GENERATED_PASSPHRASE_BITS', 'GetOptions', 'KDF_BOUNDS', 'KdfBounds', 'KdfParams', 'ListSnapshotsOptions',
  'LocalStore', 'LocalStoreOptions', 'METADATA_CACHE_BYTES', 'MIN_PASSPHRASE_LENGTH', 'MetadataCacheOptions', 'NodeType', 'OpenStoreOptions', 'OpenVaultOptions',
  'PassphraseCheckOptions', 'ProbeContext', 'ProbeResult', 'ProbedEntry', 'ProxySettings', 'PutOptions', 'RateLimit',
  'RateTarget', 'ReplayableBody', 'RestoreError', 'RestoreOptions', 'RestoreResult', 'RetryEvent', 'RetryOptions',
  'RetryPolicy', 'RetryStats', 'RetryStore', 'SKIP_REASONS', 'SasCredential', 'ScanEntry', 'ScanOptions',
  'ScanSourcesOptions', 'ScanSummary', 'Schedule', 'SharedKeyCredential', 'SkipReason', 'SkippedFilesReport',
  'Snapshot', 'SnapshotEntry', 'SnapshotListing', 'Store', 'StoreChainOptions', 'StoreKind', 'StoreKindOpenOptions', 'StoreKindOptions', 'StoreObjectInfo', 'SupportRule',
  'TableProbe', 'Tally', 'ThrottleBuckets', 'ThrottledStore', 'TimeWindow', 'Timetable', 'TokenBucket',
  'TokenBucketOptions', 'Tree', 'TreeNode', 'UnreadableSnapshot', 'Vault', 'VaultConfig', 'VaultKeys',
  'VaultpathError', 'VaultpathErrorOptions', 'VerifyOptions', 'VerifyResult', 'Weekday', 'backup', 'checkTimetable',
  'containerSas', 'credentialFromEnv', 'defaultProbe', 'defaultReportDir', 'estimateCompletion', 'formatBytes',
  'formatRate', 'generatePassphrase', 'isVaultpathError', 'openStore', 'parseAzureLocation', 'parseConnectionString',
  'parseDuration', 'parseHours', 'parseRate', 'parseSize', 'parseWeekdays', 'passphraseBytes', 'registerStoreKind',
  'resolveStoreKind', 'restore', 'scan', 'scanBatches', 'scanSources', 'storeChain', 'storeKinds', 'systemClock',
  'verify', 'withConcurrency', 'withRequestRate',
  'withRetry', 'withThrottle', 'workHours'
];

const FORMAT_NAMES = [
  'BLOB_OVERHEAD', 'ByteParts', 'CHUNKER_LIMITS', 'CHUNK_ID_LENGTH', 'CONFIG_ID', 'CONFIG_NAME', 'Chunk',
  'ChunkIdKeys', 'ChunkIdentifier', 'ChunkStreamOptions', 'ChunkerParams', 'Codec', 'CreateKeySlotOptions',
  'CutPointFinder', 'DEFAULT_CHUNKER_PARAMS', 'DEFAULT_KDF_PARAMS', 'DeriveKeyOptions', 'ENVELOPE_VERSION', 'Folder',
  'FolderName', 'IndexContent', 'IndexEntry', 'KDF_BOUNDS', 'KDF_SALT_LENGTH', 'KEY_LENGTH', 'KEY_SLOT_ID_LENGTH',
  'KEY_SLOT_LENGTH', 'KdfBounds', 'KdfParams', 'KeySlot', 'MAX_TREE_DEPTH', 'MAX_TREE_NODES', 'NodeType',
  'OBJECT_ID_LENGTH', 'OBJECT_OVERHEAD', 'ObjectType', 'ObjectTypeCode', 'ObjectTypeName', 'OpenBlobOptions',
  'OpenKeySlotOptions', 'OpenOptions', 'PACK_TRAILER_LENGTH', 'PackEntry', 'PackedType', 'SUBKEY_LABELS', 'SealKeys',
  'SealedObject', 'Snapshot', 'Tree', 'TreeNode', 'VAULT_FORMAT_VERSION', 'VaultConfig', 'VaultKeys',
  'checkChunkerParams', 'checkKdfParams', 'checkNodeName', 'chunkStream', 'concatParts', 'createKeySlot',
  'decodeIndex', 'decodeKeySlot', 'decodeSnapshot', 'decodeTree', 'deriveKey', 'encodeIndex', 'encodeSnapshot',
  'encodeTree', 'fromHex', 'generateMasterKey', 'idFromName', 'joinSealed', 'objectName', 'objectTypeName',
  'openBlob', 'openConfig', 'openIndex', 'openKeySlot', 'openObject', 'openPackHeader', 'readPackTrailer',
  'sealBlob', 'sealConfig', 'sealIndex', 'sealObject', 'toHex', 'unlockKeySlots'
];

/** Each exported specifier, its declaration file in dist/ and the names it must offer. */
const ENTRIES = [
  { specifier: 'vaultpath', declarations: 'dist/index.d.ts', names: ROOT_NAMES },
  { specifier: 'vaultpath/format', declarations: 'dist/format.d.ts', names: FORMAT_NAMES },
] as const;

/** Internal names that once leaked from the root; none may come back by accident. */
const INTERNAL = ['PackUploader', 'PackWriter', 'signRequest', 'markProgress', 'madeProgress', 'downloadTo', 'sealSecret', 'loadAgent'];

/** Every name a declaration file exports, and which of them exist at run time (values, not types only). */
function declared(): Map<string, { all: string[]; values: string[] }> {
  const files = ENTRIES.map((e) => `${root}/${e.declarations}`);
  const program = ts.createProgram(files, {
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    strict: true,
    noEmit: true,
  });
  const checker = program.getTypeChecker();
  const out = new Map<string, { all: string[]; values: string[] }>();
  for (const [i, entry] of ENTRIES.entries()) {
    const source = program.getSourceFile(files[i]!);
    if (!source) throw new Error(`${entry.declarations} is missing: build first`);
    const symbols = checker.getExportsOfModule(checker.getSymbolAtLocation(source)!);
    const isValue = (s: ts.Symbol): boolean => {
      // `export { type X }` keeps the alias's target a value symbol (a class), but nothing exists at run time.
      if (s.declarations?.some((d) => ts.isExportSpecifier(d) && (d.isTypeOnly || d.parent.parent.isTypeOnly))) return false;
      const target = s.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(s) : s;
      return (target.flags & ts.SymbolFlags.Value) !== 0;
    };
    out.set(entry.specifier, {
      all: symbols.map((s) => s.name).sort(),
      values: symbols.filter(isValue).map((s) => s.name).sort(),
    });
  }
  return out;
}

/** The run-time export names of each specifier, imported by package name in a child process run from the package. */
function imported(): Record<string, string[]> {
  const script = `const out = {};
for (const s of ${JSON.stringify(ENTRIES.map((e) => e.specifier))}) out[s] = Object.keys(await import(s)).sort();
console.log(JSON.stringify(out));`;
  const stdout = execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: root, encoding: 'utf8' });
  return JSON.parse(stdout) as Record<string, string[]>;
}

describe('the public surface', () => {
  const decl = declared();

  it('pins the exact sorted list of names each entry exports', () => {
    for (const entry of ENTRIES) {
      expect([...entry.names], `${entry.specifier}: the pinned list is kept sorted`).toEqual([...entry.names].sort());
      expect(decl.get(entry.specifier)!.all, entry.specifier).toEqual([...entry.names]);
    }
  });

  it('exports no engine wiring from any entry', () => {
    for (const entry of ENTRIES) for (const name of INTERNAL) expect(decl.get(entry.specifier)!.all).not.toContain(name);
  });

  it('resolves each entry through package.json "exports", with exactly the declared run-time names', () => {
    const got = imported();
    for (const entry of ENTRIES) expect(got[entry.specifier], entry.specifier).toEqual(decl.get(entry.specifier)!.values);
    expect(got['vaultpath']).toContain('Vault');
    expect(got['vaultpath/format']).toContain('openBlob');
  });

  it('loads no HTTP client when the root is imported: a local vault never pays for one', () => {
    const script = `import { createRequire } from 'node:module';
const cache = createRequire(process.cwd() + '/').cache;
await import('vaultpath');
console.log(Object.keys(cache).filter((k) => k.includes('/node_modules/undici/')).length);`;
    const stdout = execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: root, encoding: 'utf8' });
    expect(stdout.trim()).toBe('0');
  });

  it('refuses deep imports of internal modules', () => {
    const script = `import('vaultpath/dist/repo/pack-uploader.js').then(() => console.log('resolved'), (e) => console.log(e.code));`;
    const stdout = execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: root, encoding: 'utf8' });
    expect(stdout.trim()).toBe('ERR_PACKAGE_PATH_NOT_EXPORTED');
  });
});
