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
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { VaultpathError } from '../errors.js';

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

/** The agent file in `home`, or an empty one when there is none yet. */
export async function loadAgent(home: string): Promise<AgentFile> {
  let text: string;
  try {
    text = await readFile(join(home, 'agent.json'), 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { format: 'vaultpath-agent', version: 1, settings: {} };
    throw new VaultpathError('VP_SETTINGS', `The agent settings in ${home} could not be read (${(e as NodeJS.ErrnoException).code}).`, { cause: e });
  }
  try {
    const file = JSON.parse(text) as AgentFile;
    if (file.format !== 'vaultpath-agent' || file.version !== 1) throw new Error('not an agent settings file');
    return { ...file, settings: file.settings ?? {} };
  } catch (e) {
    throw new VaultpathError('VP_SETTINGS', `${join(home, 'agent.json')} is damaged (${(e as Error).message}); register the machine again.`, { cause: e });
  }
}

/** Writes the agent file atomically (temporary file, rename), readable by its owner only. */
export async function saveAgent(home: string, file: AgentFile): Promise<void> {
  await mkdir(home, { recursive: true, mode: 0o700 });
  const temp = join(home, `.agent.json.${randomBytes(4).toString('hex')}`);
  await writeFile(temp, `${JSON.stringify(file, null, 2)}\n`, { mode: 0o600 });
  await rename(temp, join(home, 'agent.json'));
}

async function agentKey(home: string): Promise<Buffer> {
  const path = join(home, 'agent.key');
  try {
    const key = await readFile(path);
    if (key.length === 32) return key;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  await mkdir(home, { recursive: true, mode: 0o700 });
  const key = randomBytes(32);
  await writeFile(path, key, { mode: 0o600, flag: 'wx' }).catch(async (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EEXIST') throw e;
  });
  return readFile(path);
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
  const bytes = Buffer.from(sealed.replace(/^sealed:v1:/, ''), 'base64');
  try {
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
