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

/** The vault's identity, or undefined when it has none (a vault made before identities, or no vault). */
export async function readIdentity(store: Store, options: CallOptions = {}): Promise<VaultIdentity | undefined> {
  const v = await readJson<VaultIdentity>(store, IDENTITY_NAME, options);
  if (v && (v.format !== 'vaultpath-vault' || typeof v.id !== 'string' || typeof v.name !== 'string')) {
    throw new VaultpathError('VP_MALFORMED_OBJECT', `${IDENTITY_NAME} in ${store.location} is not a vault identity.`);
  }
  return v;
}

export async function readCredentialsState(store: Store, options: CallOptions = {}): Promise<CredentialsState | undefined> {
  return readJson<CredentialsState>(store, CREDENTIALS_STATE_NAME, options);
}

/** Starts a new credentials generation: a fresh MAC key, the generation one higher. */
export async function nextCredentialsState(store: Store, now: number, options: CallOptions = {}): Promise<CredentialsState> {
  const previous = await readCredentialsState(store, options);
  const state: CredentialsState = { generation: (previous?.generation ?? 0) + 1, key: randomBytes(32).toString('base64'), issuedAt: new Date(now).toISOString() };
  await store.put(CREDENTIALS_STATE_NAME, json(state), options);
  return state;
}

export async function readMachine(store: Store, machineName: string, options: CallOptions = {}): Promise<MachineRecord | undefined> {
  return readJson<MachineRecord>(store, machineRecordName(machineName), options);
}

/** Records a machine, create-only; `VP_ALREADY_EXISTS` when the name is taken. */
export async function recordMachine(store: Store, record: MachineRecord, options: { replace?: boolean; signal?: AbortSignal } = {}): Promise<void> {
  await store.put(machineRecordName(record.name), json(record), { ...(options.signal ? { signal: options.signal } : {}), ifNotExists: !options.replace });
}

function json(value: unknown): Buffer {
  return Buffer.from(`${JSON.stringify(value, null, 2)}\n`, 'utf8');
}

async function readJson<T>(store: Store, name: string, options: CallOptions): Promise<T | undefined> {
  let bytes: Buffer;
  try {
    bytes = await store.get(name, options);
  } catch (e) {
    if ((e as VaultpathError).code === 'VP_NOT_FOUND') return undefined;
    throw e;
  }
  try {
    return JSON.parse(bytes.toString('utf8')) as T;
  } catch (e) {
    throw new VaultpathError('VP_MALFORMED_OBJECT', `${name} in ${store.location} is not valid JSON.`, { cause: e });
  }
}
