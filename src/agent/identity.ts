/**
 * A vault's identity and registry: its name and id, the state of its credentials files, and the machines
 * registered with it. They live beside the encrypted data, in plain JSON under `registry/`, since a machine reads
 * them before it has any key:
 *
 * - `registry/vault`: `{ format: 'vaultpath-vault', version: 1, id, name, createdAt }`;
 * - `registry/credentials`: `{ generation, key, issuedAt }` — the generation of the newest credentials file and the
 *   key of its MAC. Issuing a file replaces both, so every earlier file stops verifying at once;
 * - `registry/machines/<name in lower case>`: `{ machineId, name, registeredAt, generation }`, written create-only,
 *   so one name is registered once (names are compared without case).
 *
 * Whoever can read the vault's storage can read these (and so could issue credentials files), exactly as they could
 * read or delete the sealed data; what protects the data is the passphrase.
 *
 * Vault names follow the service's rule: 2 to 50 characters, starting with a letter, only letters, digits and
 * hyphens (`VP_VAULT_NAME` otherwise).
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import { VaultpathError } from '../errors.js';
import { isBoundedString, isIntegerIn, isTimeString, parseBoundedJsonObject } from '../json.js';
import type { CallOptions, Store } from '../transfer/store.js';

export interface VaultIdentity {
  readonly format: 'vaultpath-vault';
  readonly version: 1;
  /** 32 hex digits, random. */
  readonly id: string;
  readonly name: string;
  /** ISO 8601. */
  readonly createdAt: string;
}

export interface CredentialsState {
  readonly generation: number;
  /** The MAC key of the current generation's file, base64. */
  readonly key: string;
  readonly issuedAt: string;
}

export interface MachineRecord {
  readonly machineId: string;
  readonly name: string;
  readonly registeredAt: string;
  readonly generation: number;
}

export const IDENTITY_NAME = 'registry/vault';
export const CREDENTIALS_STATE_NAME = 'registry/credentials';
export const machineRecordName = (machineName: string): string => `registry/machines/${machineName.toLowerCase()}`;

const VAULT_NAME = /^[A-Za-z][A-Za-z0-9-]{1,49}$/;

/** Throws `VP_VAULT_NAME` unless `name` follows the rule (2–50 characters, a letter first, letters, digits, hyphens). */
export function checkVaultName(name: string): void {
  if (!VAULT_NAME.test(name)) {
    throw new VaultpathError(
      'VP_VAULT_NAME',
      `"${name.slice(0, 80)}" is not a valid vault name: use 2 to 50 characters, starting with a letter, with only letters, digits and hyphens.`,
    );
  }
}

/** A valid vault name made from a location: its last meaningful part, cleaned up. */
export function vaultNameFrom(location: string): string {
  const parts = location.replace(/[?#].*$/, '').split(/[/\\]/).filter((p) => p && !p.includes(':'));
  const raw = (parts.at(-1) ?? 'vault').replace(/[^A-Za-z0-9-]+/g, '-').replace(/^[^A-Za-z]+/, '').replace(/-+$/, '');
  const name = `${raw || 'vault'}`.slice(0, 50).replace(/-+$/, '');
  return name.length >= 2 ? name : `vault-${name}`.replace(/-$/, '');
}

/** Writes the identity of a new vault (create-only). */
export async function createIdentity(store: Store, name: string, now: number, options: CallOptions = {}): Promise<VaultIdentity> {
  checkVaultName(name);
  const identity: VaultIdentity = { format: 'vaultpath-vault', version: 1, id: randomBytes(16).toString('hex'), name, createdAt: new Date(now).toISOString() };
  await store.put(IDENTITY_NAME, json(identity), { ...options, ifNotExists: true });
  return identity;
}

/** Bytes of a registry object, at most: each is a handful of short fields. */
export const MAX_REGISTRY_OBJECT_BYTES = 64 * 1024;
const HEX32 = /^[0-9a-f]{32}$/;
/** Base64 of 32 bytes: 43 characters and one `=`. */
const KEY_BASE64 = /^[A-Za-z0-9+/]{43}=$/;

/**
 * The vault's identity, or undefined when it has none (a vault made before identities, or no vault).
 * @throws {VaultpathError} `VP_MALFORMED_OBJECT` when it is not a vault identity (any field missing, of the wrong
 *   type or out of range); `VP_FORMAT_LIMIT` over {@link MAX_REGISTRY_OBJECT_BYTES} or nested; the store's errors.
 */
export async function readIdentity(store: Store, options: CallOptions = {}): Promise<VaultIdentity | undefined> {
  const bytes = await readRegistryObject(store, IDENTITY_NAME, options);
  return bytes && decodeIdentity(bytes, `${IDENTITY_NAME} in ${store.location}`);
}

/** Decodes and checks `registry/vault` (see {@link readIdentity}); `where` names it in messages. */
export function decodeIdentity(bytes: Uint8Array, where: string): VaultIdentity {
  const v = decodeRegistryObject(bytes, where);
  const bad = (what: string): VaultpathError => new VaultpathError('VP_MALFORMED_OBJECT', `${where} is not a vault identity (${what}).`);
  if (v['format'] !== 'vaultpath-vault') throw bad('its format is not "vaultpath-vault"');
  if (v['version'] !== 1) throw bad('its version is not 1');
  if (typeof v['id'] !== 'string' || !HEX32.test(v['id'])) throw bad('its id is not 32 hex digits');
  if (typeof v['name'] !== 'string' || !VAULT_NAME.test(v['name'])) throw bad('its name breaks the vault naming rule');
  if (!isTimeString(v['createdAt'])) throw bad('its createdAt is not a time');
  return v as unknown as VaultIdentity;
}

/**
 * The state of the vault's credentials files, or undefined when none was ever issued.
 * @throws {VaultpathError} `VP_MALFORMED_OBJECT` when a field is missing, of the wrong type or out of range;
 *   `VP_FORMAT_LIMIT`; the store's errors.
 */
export async function readCredentialsState(store: Store, options: CallOptions = {}): Promise<CredentialsState | undefined> {
  const bytes = await readRegistryObject(store, CREDENTIALS_STATE_NAME, options);
  return bytes && decodeCredentialsState(bytes, `${CREDENTIALS_STATE_NAME} in ${store.location}`);
}

/** Decodes and checks `registry/credentials` (see {@link readCredentialsState}). */
export function decodeCredentialsState(bytes: Uint8Array, where: string): CredentialsState {
  const v = decodeRegistryObject(bytes, where);
  const bad = (what: string): VaultpathError => new VaultpathError('VP_MALFORMED_OBJECT', `${where} is damaged (${what}); issue a new credentials file.`);
  if (!isIntegerIn(v['generation'], 1, Number.MAX_SAFE_INTEGER - 1)) throw bad('its generation is not an integer of 1 or more');
  if (typeof v['key'] !== 'string' || !KEY_BASE64.test(v['key'])) throw bad('its key is not base64 of 32 bytes');
  if (!isTimeString(v['issuedAt'])) throw bad('its issuedAt is not a time');
  return v as unknown as CredentialsState;
}

/** Starts a new credentials generation: a fresh MAC key, the generation one higher. */
export async function nextCredentialsState(store: Store, now: number, options: CallOptions = {}): Promise<CredentialsState> {
  const previous = await readCredentialsState(store, options);
  const state: CredentialsState = { generation: (previous?.generation ?? 0) + 1, key: randomBytes(32).toString('base64'), issuedAt: new Date(now).toISOString() };
  await store.put(CREDENTIALS_STATE_NAME, json(state), options);
  return state;
}

/**
 * The record of machine `machineName`, or undefined when no machine has that name.
 * @throws {VaultpathError} `VP_MALFORMED_OBJECT` when a field is missing, of the wrong type or out of range;
 *   `VP_FORMAT_LIMIT`; the store's errors.
 */
export async function readMachine(store: Store, machineName: string, options: CallOptions = {}): Promise<MachineRecord | undefined> {
  const name = machineRecordName(machineName);
  const bytes = await readRegistryObject(store, name, options);
  return bytes && decodeMachineRecord(bytes, `${name} in ${store.location}`);
}

/** Decodes and checks a `registry/machines/<name>` record (see {@link readMachine}). */
export function decodeMachineRecord(bytes: Uint8Array, where: string): MachineRecord {
  const v = decodeRegistryObject(bytes, where);
  const bad = (what: string): VaultpathError => new VaultpathError('VP_MALFORMED_OBJECT', `${where} is not a machine record (${what}).`);
  if (typeof v['machineId'] !== 'string' || !HEX32.test(v['machineId'])) throw bad('its machineId is not 32 hex digits');
  if (!isBoundedString(v['name'], 63, 1)) throw bad('its name is not 1 to 63 characters');
  if (!isTimeString(v['registeredAt'])) throw bad('its registeredAt is not a time');
  if (!isIntegerIn(v['generation'], 1, Number.MAX_SAFE_INTEGER)) throw bad('its generation is not an integer of 1 or more');
  return v as unknown as MachineRecord;
}

/** Records a machine, create-only; `VP_ALREADY_EXISTS` when the name is taken. */
export async function recordMachine(store: Store, record: MachineRecord, options: { replace?: boolean; signal?: AbortSignal } = {}): Promise<void> {
  await store.put(machineRecordName(record.name), json(record), { ...(options.signal ? { signal: options.signal } : {}), ifNotExists: !options.replace });
}

function json(value: unknown): Buffer {
  return Buffer.from(`${JSON.stringify(value, null, 2)}\n`, 'utf8');
}

/** The bytes stored under `name`, or undefined when there are none. */
async function readRegistryObject(store: Store, name: string, options: CallOptions): Promise<Buffer | undefined> {
  try {
    return await store.get(name, options);
  } catch (e) {
    if ((e as VaultpathError).code === 'VP_NOT_FOUND') return undefined;
    throw e;
  }
}

/**
 * Parses a registry object's bytes: a JSON object of one level, at most {@link MAX_REGISTRY_OBJECT_BYTES}. Its
 * fields are checked by the reader of each kind. @internal
 * @throws {VaultpathError} `VP_MALFORMED_OBJECT` (not JSON, not an object), `VP_FORMAT_LIMIT` (too large, nested).
 */
export function decodeRegistryObject(bytes: Uint8Array, where: string): Record<string, unknown> {
  return parseBoundedJsonObject(bytes, { maxDepth: 1, maxBytes: MAX_REGISTRY_OBJECT_BYTES }, (what, problem) =>
    new VaultpathError(problem === 'limit' ? 'VP_FORMAT_LIMIT' : 'VP_MALFORMED_OBJECT', `${where} ${what}; the vault's registry is damaged.`),
  );
}
