/**
 * The vault configuration object (`config`): what every reader must know before reading anything else.
 *
 * Sealed as a standalone object of type `config` under the all-zero id (there is exactly one). Its plaintext is
 * UTF-8 JSON; unknown fields are refused rather than ignored, so a newer writer's meaning is never half-read.
 *
 * ```json
 * { "version": 1, "id": "<64 hex>", "createdAt": "2026-11-22T10:00:00.000Z",
 *   "chunker": { "minSize": 524288, "avgSize": 1048576, "maxSize": 8388608 } }
 * ```
 *
 * @module
 */
import { VaultpathError } from '../errors.js';
import { type ChunkerParams, checkChunkerParams } from '../chunk/fastcdc.js';
import { type SealKeys, joinSealed, openObject, sealObject } from '../crypto/envelope.js';
import { ObjectType } from '../crypto/object-type.js';
import { isJsonObject, parseBoundedJsonObject } from '../json.js';

/** The format version of vaults this code creates and reads. */
export const VAULT_FORMAT_VERSION = 1;

/** The id the config is sealed under: 32 zero bytes (there is one config per vault). */
export const CONFIG_ID = new Uint8Array(32);

export interface VaultConfig {
  /** Vault format version; 1. */
  readonly version: number;
  /** The vault's random id, 64 hex characters. */
  readonly id: string;
  /** When the vault was created (ISO 8601, UTC). */
  readonly createdAt: string;
  /** The chunker sizes every writer of this vault must use, or dedup breaks. */
  readonly chunker: ChunkerParams;
}

/** Bytes of the config's JSON, at most (it is about 150). */
export const MAX_CONFIG_BYTES = 64 * 1024;
/** Brackets open at once in the config's JSON, at most: the config and its `chunker`. */
const CONFIG_JSON_DEPTH = 2;

const FIELDS = ['version', 'id', 'createdAt', 'chunker'];
const CHUNKER_FIELDS = ['minSize', 'avgSize', 'maxSize'];

/** Seals `config` into the bytes stored under `config`. */
export function sealConfig(keys: SealKeys, config: VaultConfig): Buffer {
  checkConfig(config);
  const json = JSON.stringify({
    version: config.version,
    id: config.id,
    createdAt: config.createdAt,
    chunker: { minSize: config.chunker.minSize, avgSize: config.chunker.avgSize, maxSize: config.chunker.maxSize },
  });
  return joinSealed(sealObject(keys, ObjectType.config, CONFIG_ID, Buffer.from(json, 'utf8')));
}

/**
 * Opens and validates the stored config.
 * @throws {VaultpathError} `VP_AUTH_FAILED` (also: this key belongs to another vault), `VP_UNSUPPORTED_VERSION`,
 *   `VP_MALFORMED_OBJECT`, `VP_CHUNKER_PARAMS`, `VP_FORMAT_LIMIT` (over {@link MAX_CONFIG_BYTES}, or nested deeper
 *   than the config's two levels), and the other envelope errors.
 */
export function openConfig(keys: SealKeys, sealed: Uint8Array): VaultConfig {
  return decodeConfig(openObject(keys, ObjectType.config, CONFIG_ID, sealed, { where: 'The vault config' }));
}

/**
 * Decodes and validates the config's plaintext (what {@link openConfig} does once the envelope is open).
 * @throws {VaultpathError} as {@link openConfig}, but for the envelope's errors.
 */
export function decodeConfig(plaintext: Uint8Array): VaultConfig {
  const o = parseBoundedJsonObject(plaintext, { maxDepth: CONFIG_JSON_DEPTH, maxBytes: MAX_CONFIG_BYTES }, (what, problem) =>
    problem === 'limit'
      ? new VaultpathError('VP_FORMAT_LIMIT', `The vault config ${what}; the vault is damaged or was written by another program.`)
      : malformed(what),
  );
  if (typeof o['version'] === 'number' && o['version'] !== VAULT_FORMAT_VERSION) {
    throw new VaultpathError(
      'VP_UNSUPPORTED_VERSION',
      `The vault has format version ${o['version']}; this vaultpath reads version ${VAULT_FORMAT_VERSION}. Upgrade vaultpath.`,
    );
  }
  const extra = Object.keys(o).filter((k) => !FIELDS.includes(k));
  if (extra.length > 0) throw malformed(`has fields this version does not know: ${extra.join(', ')}`);
  const c = o['chunker'];
  if (!isJsonObject(c) || Object.keys(c).some((k) => !CHUNKER_FIELDS.includes(k))) {
    throw malformed('has no valid "chunker" field');
  }
  const chunker = c as Record<string, unknown>;
  const config: VaultConfig = {
    version: o['version'] as number,
    id: o['id'] as string,
    createdAt: o['createdAt'] as string,
    chunker: { minSize: chunker['minSize'] as number, avgSize: chunker['avgSize'] as number, maxSize: chunker['maxSize'] as number },
  };
  checkConfig(config);
  return config;
}

function checkConfig(config: VaultConfig): void {
  if (config.version !== VAULT_FORMAT_VERSION) throw malformed(`has version ${String(config.version)}`);
  if (typeof config.id !== 'string' || !/^[0-9a-f]{64}$/.test(config.id)) throw malformed('has no valid "id"');
  if (typeof config.createdAt !== 'string' || Number.isNaN(Date.parse(config.createdAt))) {
    throw malformed('has no valid "createdAt"');
  }
  checkChunkerParams(config.chunker);
}

function malformed(what: string, cause?: unknown): VaultpathError {
  return new VaultpathError('VP_MALFORMED_OBJECT', `The vault config ${what}; the vault is damaged or was written by another program.`, { cause });
}
