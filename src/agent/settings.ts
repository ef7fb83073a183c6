/**
 * The machine's local agent settings: its registration (which vault, which machine, how to reach the vault) and
 * the settings chosen at registration and changed later ("Change Properties"): proxy, throttling, scratch folder,
 * recovery folder.
 *
 * They live in `agent.json` in the agent's folder ({@link agentHome}: `VAULTPATH_HOME`, else
 * `$XDG_CONFIG_HOME/vaultpath`, else `~/.config/vaultpath`), written atomically with mode 0600.
 *
 * Secrets (the proxy password, the vault's SAS token) are not kept in plain text in that file: they are sealed with
 * AES-256-GCM under a key kept in a separate file, `agent.key` (mode 0600). This platform offers no keyring to this
 * program, so this keeps secrets out of the settings file, its copies and every output; whoever can read both
 * files as this user can still recover them. {@link publicView} is what `settings show` prints: secrets as "(set)".
 *
 * @module
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { VaultpathError } from '../errors.js';
import { isBoundedString, isIntegerIn, isJsonObject, parseBoundedJsonObject, readBoundedFile } from '../json.js';

/** A secret as stored: `sealed:v1:` + base64(nonce ‖ ciphertext ‖ tag). */
export type SealedSecret = string;

export interface ThrottleSettings {
  /** One rate for all hours, e.g. `8Mbit/s`. */
  readonly bwlimit?: string;
  readonly workDays?: string;
  readonly workHours?: string;
  readonly workRate?: string;
  readonly offRate?: string;
  readonly tz?: string;
}

export interface AgentSettings {
  readonly proxy?: { readonly url: string; readonly username?: string; readonly password?: SealedSecret };
  readonly throttle?: ThrottleSettings;
  readonly scratchDir?: string;
  readonly recoveryFolder?: string;
}

export interface Registration {
  readonly vaultId: string;
  readonly vaultName: string;
  /** The vault's location (root). */
  readonly location: string;
  /** This machine's own encrypted area in the vault. */
  readonly machineLocation: string;
  readonly machineId: string;
  readonly machineName: string;
  readonly registeredAt: string;
  readonly generation: number;
  readonly access: { readonly sasToken?: SealedSecret };
}

export interface AgentFile {
  readonly format: 'vaultpath-agent';
  readonly version: 1;
  readonly registration?: Registration;
  readonly settings: AgentSettings;
}

/** The agent's folder. */
export function agentHome(env: NodeJS.ProcessEnv = process.env): string {
  if (env.VAULTPATH_HOME) return env.VAULTPATH_HOME;
  return join(env.XDG_CONFIG_HOME || join(homedir(), '.config'), 'vaultpath');
}

/** Bytes of `agent.json`, at most. */
export const MAX_AGENT_FILE_BYTES = 1024 * 1024;
/** Brackets open at once in `agent.json`, at most: the file, its registration or settings, their access or proxy. */
const AGENT_JSON_DEPTH = 3;
const THROTTLE_FIELDS = ['bwlimit', 'workDays', 'workHours', 'workRate', 'offRate', 'tz'] as const;
const REGISTRATION_STRINGS = ['vaultId', 'vaultName', 'location', 'machineLocation', 'machineId', 'machineName', 'registeredAt'] as const;

/**
 * The agent file in `home`, or an empty one when there is none yet. It is read through one descriptor, a regular
 * file of at most {@link MAX_AGENT_FILE_BYTES}, and every field is checked (see {@link decodeAgentFile}).
 * @throws {VaultpathError} `VP_SETTINGS` when it cannot be read or is damaged.
 */
export async function loadAgent(home: string, options: { signal?: AbortSignal } = {}): Promise<AgentFile> {
  const path = join(home, 'agent.json');
  const read = await readBoundedFile(path, MAX_AGENT_FILE_BYTES, options);
  if ('problem' in read) {
    const code = (read.cause as NodeJS.ErrnoException | undefined)?.code;
    if (code === 'ENOENT') return { format: 'vaultpath-agent', version: 1, settings: {} };
    const why = read.problem === 'too-large' ? `larger than ${MAX_AGENT_FILE_BYTES} bytes` : read.problem === 'not-a-file' ? 'not a regular file' : (code ?? 'error');
    throw new VaultpathError('VP_SETTINGS', `The agent settings in ${home} could not be read (${why}).`, read.cause === undefined ? {} : { cause: read.cause });
  }
  return decodeAgentFile(read.bytes, path);
}

/**
 * Decodes and checks the bytes of an agent file: its format and version, and the type of every field it knows
 * (registration, proxy, throttle, folders); fields it does not know are kept as they are.
 * @throws {VaultpathError} `VP_SETTINGS`, saying what is damaged.
 */
export function decodeAgentFile(bytes: Uint8Array, where: string): AgentFile {
  const damaged = (what: string): VaultpathError => new VaultpathError('VP_SETTINGS', `${where} is damaged (${what}); register the machine again.`);
  const file = parseBoundedJsonObject(bytes, { maxDepth: AGENT_JSON_DEPTH, maxBytes: MAX_AGENT_FILE_BYTES }, (what) => damaged(`it ${what}`));
  if (file['format'] !== 'vaultpath-agent' || file['version'] !== 1) throw damaged('not an agent settings file');
  const r = file['registration'];
  if (r !== undefined) {
    if (!isJsonObject(r)) throw damaged('"registration" is not an object');
    for (const k of REGISTRATION_STRINGS) if (!isBoundedString(r[k], 4096, 1)) throw damaged(`"registration.${k}" is missing or not a string`);
    if (!isIntegerIn(r['generation'], 0, Number.MAX_SAFE_INTEGER)) throw damaged('"registration.generation" is not an integer');
    const access = r['access'];
    if (!isJsonObject(access) || (access['sasToken'] !== undefined && !isSealedSecret(access['sasToken']))) throw damaged('"registration.access" is not valid');
  }
  const settings = file['settings'] ?? {};
  if (!isJsonObject(settings)) throw damaged('"settings" is not an object');
  const proxy = settings['proxy'];
  if (proxy !== undefined) {
    if (!isJsonObject(proxy) || !isBoundedString(proxy['url'], 4096, 1)) throw damaged('"settings.proxy" has no valid url');
    if (proxy['username'] !== undefined && !isBoundedString(proxy['username'], 4096)) throw damaged('"settings.proxy.username" is not a string');
    if (proxy['password'] !== undefined && !isSealedSecret(proxy['password'])) throw damaged('"settings.proxy.password" is not a sealed secret');
  }
  const throttle = settings['throttle'];
  if (throttle !== undefined) {
    if (!isJsonObject(throttle)) throw damaged('"settings.throttle" is not an object');
    for (const k of THROTTLE_FIELDS) if (throttle[k] !== undefined && !isBoundedString(throttle[k], 1024)) throw damaged(`"settings.throttle.${k}" is not a string`);
  }
  for (const k of ['scratchDir', 'recoveryFolder']) {
    if (settings[k] !== undefined && !isBoundedString(settings[k], 4096, 1)) throw damaged(`"settings.${k}" is not a path`);
  }
  return { ...(file as unknown as AgentFile), settings: settings as AgentSettings };
}

/** A sealed secret as {@link sealSecret} writes it: the prefix and base64 of a nonce, a tag and at most 64 KiB. */
function isSealedSecret(v: unknown): v is SealedSecret {
  return isBoundedString(v, 90_000, 1) && /^sealed:v1:[A-Za-z0-9+/]+={0,2}$/.test(v);
}

/** Writes the agent file atomically (temporary file, rename), readable by its owner only. */
export async function saveAgent(home: string, file: AgentFile): Promise<void> {
  await mkdir(home, { recursive: true, mode: 0o700 });
  const temp = join(home, `.agent.json.${randomBytes(4).toString('hex')}`);
  await writeFile(temp, `${JSON.stringify(file, null, 2)}\n`, { mode: 0o600 });
  await rename(temp, join(home, 'agent.json'));
}

/**
 * The agent's key from `agent.key`, created when there is none.
 * @throws {VaultpathError} `VP_SETTINGS` when the file cannot be read, or is not 32 bytes (a key replaced by
 *   anything else would seal or open nothing).
 */
async function agentKey(home: string): Promise<Buffer> {
  const path = join(home, 'agent.key');
  const unusable = (why: string, cause?: unknown): VaultpathError =>
    new VaultpathError('VP_SETTINGS', `The agent key ${path} ${why}; remove it and set the secrets (proxy password, registration) again.`, cause === undefined ? {} : { cause });
  const existing = async (): Promise<Buffer | undefined> => {
    const read = await readBoundedFile(path, 32);
    if (!('problem' in read)) {
      if (read.bytes.length !== 32) throw unusable(`is ${read.bytes.length} bytes, not 32`);
      return read.bytes;
    }
    if ((read.cause as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') return undefined;
    throw unusable(read.problem === 'too-large' ? 'is larger than 32 bytes' : read.problem === 'not-a-file' ? 'is not a regular file' : 'cannot be read', read.cause);
  };
  const key = await existing();
  if (key) return key;
  await mkdir(home, { recursive: true, mode: 0o700 });
  await writeFile(path, randomBytes(32), { mode: 0o600, flag: 'wx' }).catch(async (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EEXIST') throw unusable('cannot be written', e);
  });
  const created = await existing();
  if (!created) throw unusable('vanished as it was created');
  return created;
}

/** Seals `secret` under the agent's key. */
export async function sealSecret(home: string, secret: string): Promise<SealedSecret> {
  const key = await agentKey(home);
  const nonce = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, nonce);
  const body = Buffer.concat([cipher.update(secret, 'utf8'), cipher.final()]);
  return `sealed:v1:${Buffer.concat([nonce, body, cipher.getAuthTag()]).toString('base64')}`;
}

/** Opens a secret sealed by {@link sealSecret}. */
export async function openSecret(home: string, sealed: SealedSecret): Promise<string> {
  const bytes = isSealedSecret(sealed) ? Buffer.from(sealed.slice('sealed:v1:'.length), 'base64') : Buffer.alloc(0);
  try {
    if (bytes.length < 12 + 16) throw new Error('not a sealed secret');
    const decipher = createDecipheriv('aes-256-gcm', await agentKey(home), bytes.subarray(0, 12));
    decipher.setAuthTag(bytes.subarray(bytes.length - 16));
    return Buffer.concat([decipher.update(bytes.subarray(12, bytes.length - 16)), decipher.final()]).toString('utf8');
  } catch (e) {
    throw new VaultpathError('VP_SETTINGS', `A secret in the agent settings in ${home} cannot be opened (agent.key changed?); set it again.`, { cause: e });
  }
}

/** The agent file as `settings show` prints it: secrets replaced by "(set)". */
export function publicView(file: AgentFile): unknown {
  const { registration, settings } = file;
  return {
    ...(registration
      ? {
          registration: {
            vaultName: registration.vaultName,
            vaultId: registration.vaultId,
            location: registration.location,
            machineName: registration.machineName,
            machineId: registration.machineId,
            registeredAt: registration.registeredAt,
            access: registration.access.sasToken ? 'SAS token (set)' : 'local folder',
          },
        }
      : {}),
    settings: {
      ...settings,
      ...(settings.proxy ? { proxy: { ...settings.proxy, ...(settings.proxy.password ? { password: '(set)' } : {}) } } : {}),
    },
  };
}
