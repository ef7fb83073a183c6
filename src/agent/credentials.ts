/**
 * Vault credentials files: what the vault's owner hands to a machine so it can register.
 *
 * A file is JSON: `{ format: 'vaultpath-credentials', version: 1, vaultId, vaultName, location, access, issuedAt,
 * expiresAt, generation, mac }`. `access` is how to reach the vault: for an Azure vault a SAS token scoped to the
 * vault's container (valid for `accessValidityMs`, a year by default, since the machine keeps using it for its
 * backups); for a local folder nothing. `mac` is HMAC-SHA256, under the key of the vault's current credentials
 * generation (identity.ts), of the canonical JSON of every other field, so one changed byte is detected.
 *
 * Contracts:
 * - Issuing starts a new generation, so every earlier file is superseded at once: of two files downloaded in quick
 *   succession, only the second registers.
 * - {@link readCredentialsFile} tells an unreadable file (`VP_CREDENTIALS_UNREADABLE`) from one that is not a
 *   credentials file (`VP_CREDENTIALS_INVALID`); {@link verifyCredentials} tells expired (`VP_CREDENTIALS_EXPIRED`,
 *   with the time), superseded and corrupted (`VP_CREDENTIALS_INVALID`, saying which) apart.
 * - The SAS in a file is a secret: it is never printed, and a file is written readable by its owner only.
 *
 * @module
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { VaultpathError } from '../errors.js';
import { isBoundedString, isIntegerIn, isJsonObject, isTimeString, parseBoundedJsonObject, readBoundedFile } from '../json.js';
import type { CredentialsState, VaultIdentity } from './identity.js';

export interface CredentialsFile {
  readonly format: 'vaultpath-credentials';
  readonly version: 1;
  readonly vaultId: string;
  readonly vaultName: string;
  /** The vault's location: a folder, or an Azure container URL (without a query string). */
  readonly location: string;
  /** How to reach the vault: a SAS token for Azure; empty for a folder. */
  readonly access: { readonly sasToken?: string };
  readonly issuedAt: string;
  readonly expiresAt: string;
  readonly generation: number;
  readonly mac: string;
}

/** Registration must happen within this long of issuing. */
export const DEFAULT_CREDENTIALS_VALIDITY_MS = 48 * 3600_000;

/** The canonical bytes the MAC covers: every field but `mac`, keys sorted. */
function macInput(file: Omit<CredentialsFile, 'mac'>): string {
  const sorted = (v: unknown): unknown =>
    v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, sorted((v as Record<string, unknown>)[k])])) : v;
  const { mac: _mac, ...rest } = file as CredentialsFile;
  return JSON.stringify(sorted(rest));
}

function macOf(key: string, file: Omit<CredentialsFile, 'mac'>): string {
  return createHmac('sha256', Buffer.from(key, 'base64')).update(macInput(file), 'utf8').digest('base64');
}

/** A credentials file for `identity` under `state` (the generation just started). */
export function makeCredentials(
  identity: VaultIdentity,
  state: CredentialsState,
  location: string,
  access: CredentialsFile['access'],
  now: number,
  validityMs = DEFAULT_CREDENTIALS_VALIDITY_MS,
): CredentialsFile {
  const body: Omit<CredentialsFile, 'mac'> = {
    format: 'vaultpath-credentials',
    version: 1,
    vaultId: identity.id,
    vaultName: identity.name,
    location,
    access,
    issuedAt: new Date(now).toISOString(),
    expiresAt: new Date(now + validityMs).toISOString(),
    generation: state.generation,
  };
  return { ...body, mac: macOf(state.key, body) };
}

/** The portal's way of naming the file: the vault name and the date. */
export function credentialsFileName(vaultName: string, now: number): string {
  return `${vaultName}_${new Date(now).toISOString().slice(0, 10)}.VaultCredentials`;
}

/** Writes `file` to `path`, readable by its owner only (it holds a SAS). */
export async function writeCredentialsFile(path: string, file: CredentialsFile): Promise<void> {
  await writeFile(path, `${JSON.stringify(file, null, 2)}\n`, { mode: 0o600 });
}

/** Bytes of a credentials file, at most: a few short fields and a SAS token of a few hundred bytes. */
export const MAX_CREDENTIALS_FILE_BYTES = 64 * 1024;
/** Brackets open at once in a credentials file's JSON, at most: the file and its `access`. */
const CREDENTIALS_JSON_DEPTH = 2;
const HEX32 = /^[0-9a-f]{32}$/;
const VAULT_NAME = /^[A-Za-z][A-Za-z0-9-]{1,49}$/;
/** Base64 of an HMAC-SHA256 (32 bytes): 43 characters and one `=`. */
const MAC_BASE64 = /^[A-Za-z0-9+/]{43}=$/;

/**
 * Reads and parses a credentials file; checks the type and range of every field, not its MAC. The file is read
 * through one descriptor, a regular file of at most {@link MAX_CREDENTIALS_FILE_BYTES} only.
 * @throws {VaultpathError} `VP_CREDENTIALS_UNREADABLE` (missing, no permission, not a regular file);
 *   `VP_CREDENTIALS_INVALID` (too large, not JSON, nested too deep, a field missing or of the wrong type).
 */
export async function readCredentialsFile(path: string, options: { signal?: AbortSignal } = {}): Promise<CredentialsFile> {
  const read = await readBoundedFile(path, MAX_CREDENTIALS_FILE_BYTES, options);
  const notOne = (why: string, cause?: unknown): VaultpathError =>
    new VaultpathError('VP_CREDENTIALS_INVALID', `${path} is not a valid vault credentials file (${why}). Download a new one from the vault's owner.`, { cause });
  if ('problem' in read) {
    if (read.problem === 'too-large') throw notOne(`it is larger than ${MAX_CREDENTIALS_FILE_BYTES} bytes`);
    const code = read.problem === 'not-a-file' ? 'not a regular file' : ((read.cause as NodeJS.ErrnoException | undefined)?.code ?? 'error');
    throw new VaultpathError(
      'VP_CREDENTIALS_UNREADABLE',
      `The vault credentials file ${path} could not be read (${code}). Copy it to a local folder you can read, and run the command again.`,
      read.cause === undefined ? {} : { cause: read.cause },
    );
  }
  return decodeCredentialsFile(read.bytes, path);
}

/**
 * Decodes and checks the bytes of a credentials file (see {@link readCredentialsFile}); `path` names it in messages.
 * @throws {VaultpathError} `VP_CREDENTIALS_INVALID`.
 */
export function decodeCredentialsFile(bytes: Uint8Array, path: string): CredentialsFile {
  const notOne = (why: string): VaultpathError =>
    new VaultpathError('VP_CREDENTIALS_INVALID', `${path} is not a valid vault credentials file (${why}). Download a new one from the vault's owner.`);
  const file = parseBoundedJsonObject(bytes, { maxDepth: CREDENTIALS_JSON_DEPTH, maxBytes: MAX_CREDENTIALS_FILE_BYTES }, (what, problem) =>
    notOne(problem === 'limit' ? `it is corrupted: it ${what}` : `it is corrupted or not a credentials file: it ${what === 'is not valid JSON' ? 'is not JSON' : what}`),
  );
  if (file['format'] !== 'vaultpath-credentials') throw notOne('it is not a credentials file');
  if (file['version'] !== 1) throw notOne(`it has version ${typeof file['version'] === 'number' ? file['version'] : 'missing'}, and this program reads version 1`);
  const wrong = (field: string): VaultpathError => notOne(`it is corrupted: "${field}" is missing or of the wrong type`);
  if (typeof file['vaultId'] !== 'string' || !HEX32.test(file['vaultId'])) throw wrong('vaultId');
  if (typeof file['vaultName'] !== 'string' || !VAULT_NAME.test(file['vaultName'])) throw wrong('vaultName');
  if (!isBoundedString(file['location'], 4096, 1) || /[\u0000-\u001f]/.test(file['location'])) throw wrong('location');
  const access = file['access'];
  if (!isJsonObject(access) || Object.values(access).some((v) => typeof v !== 'string')) throw wrong('access');
  if (access['sasToken'] !== undefined && !isBoundedString(access['sasToken'], 8192, 1)) throw wrong('access');
  if (!isTimeString(file['issuedAt'])) throw wrong('issuedAt');
  if (!isTimeString(file['expiresAt'])) throw notOne('it is corrupted: its expiry time cannot be read');
  if (!isIntegerIn(file['generation'], 1, Number.MAX_SAFE_INTEGER)) throw wrong('generation');
  if (typeof file['mac'] !== 'string' || !MAC_BASE64.test(file['mac'])) throw wrong('mac');
  return file as unknown as CredentialsFile;
}

/**
 * Checks `file` against the vault's identity and current credentials state, at time `now`.
 * @throws {VaultpathError} `VP_CREDENTIALS_EXPIRED`; `VP_CREDENTIALS_INVALID` (another vault, superseded, corrupted).
 */
export function verifyCredentials(file: CredentialsFile, identity: VaultIdentity | undefined, state: CredentialsState | undefined, now: number, path: string): void {
  const expires = Date.parse(file.expiresAt);
  if (now >= expires) {
    throw new VaultpathError(
      'VP_CREDENTIALS_EXPIRED',
      `Vault credentials file provided has expired: ${path} expired at ${new Date(expires).toISOString()}. Download a new one (they are valid for 48 hours) and register again.`,
    );
  }
  const invalid = (why: string): VaultpathError => new VaultpathError('VP_CREDENTIALS_INVALID', `The vault credentials file ${path} is not valid: ${why}.`);
  if (!identity || !state) throw invalid(`there is no vault that issues credentials at ${file.location}`);
  if (file.vaultId !== identity.id) throw invalid(`it belongs to vault ${file.vaultName} (${file.vaultId}), not to the vault at that location`);
  if (file.generation < state.generation) {
    throw invalid(`it was superseded by a newer file (generation ${state.generation}, issued ${state.issuedAt}); use the newest file downloaded`);
  }
  const expected = Buffer.from(macOf(state.key, file), 'base64');
  const given = Buffer.from(file.mac, 'base64');
  if (file.generation !== state.generation || expected.length !== given.length || !timingSafeEqual(expected, given)) {
    throw invalid('it is corrupted or was changed after it was issued (its MAC does not match); download a new one');
  }
}
