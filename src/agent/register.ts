/**
 * The agent's set-up flow: the vault's owner issues a credentials file ({@link issueCredentials}); a machine
 * registers with it ({@link register}); later commands find the vault, the machine's passphrase-protected area and
 * the settings through the local registration ({@link registeredStore}).
 *
 * Registration:
 * 1. reads and checks the credentials file (unreadable, not one, expired, another vault, superseded, corrupted:
 *    each its own error, see credentials.ts);
 * 2. refuses a machine already registered with another vault (`VP_REGISTERED_ELSEWHERE`);
 * 3. records the machine in the vault under its name, create-only (`VP_MACHINE_NAME_TAKEN` when another machine has
 *    it; the same machine registering again is allowed);
 * 4. creates the machine's encrypted area (`machines/<name>` in the vault) with the passphrase given at
 *    registration, or opens it with that passphrase when registering again;
 * 5. stores the registration and the chosen settings locally (settings.ts).
 * Each machine's backups are encrypted under its own passphrase, as with the agent this follows.
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { VaultpathError } from '../errors.js';
import { type Clock, systemClock } from '../throttle/clock.js';
import { Vault } from '../repo/vault.js';
import type { KdfParams } from '../crypto/kdf.js';
import { type OpenStoreOptions, azureOptions, openStore } from '../transfer/open.js';
import { containerSas, credentialFromEnv, isSharedKey } from '../transfer/azure-auth.js';
import { locationScheme, parseAzureLocation } from '../transfer/location.js';
import { resolveStoreKind } from '../transfer/registry.js';
import type { ProxySettings } from '../transfer/proxy.js';
import type { Store } from '../transfer/store.js';
import { type CredentialsFile, DEFAULT_CREDENTIALS_VALIDITY_MS, makeCredentials, readCredentialsFile, verifyCredentials } from './credentials.js';
import { createIdentity, nextCredentialsState, readCredentialsState, readIdentity, readMachine, recordMachine, vaultNameFrom } from './identity.js';
import { type AgentFile, type AgentSettings, loadAgent, openSecret, saveAgent, sealSecret } from './settings.js';

const MACHINE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

/** Throws `VP_MACHINE_NAME` unless `name` is 1–63 letters, digits, dots, hyphens or underscores, not starting with a sign. */
export function checkMachineName(name: string): void {
  if (!MACHINE_NAME.test(name)) {
    throw new VaultpathError('VP_MACHINE_NAME', `"${name.slice(0, 80)}" is not a valid machine name: use 1 to 63 letters, digits, dots, hyphens or underscores, starting with a letter or digit.`);
  }
}

/** The location of machine `name`'s own area in the vault at `location`. */
export function machineLocation(location: string, name: string): string {
  const lower = name.toLowerCase();
  // Any URL (Azure, file://, a registered kind) joins with '/'; a folder path joins as a path.
  return locationScheme(location) !== undefined ? `${location.replace(/\/+$/, '')}/machines/${lower}` : join(location, 'machines', lower);
}

export interface IssueOptions {
  /** How long the file can be used to register. @default 48 hours */
  readonly validityMs?: number;
  /** For an Azure vault: how long the SAS in the file stays valid for the machine's backups. @default 365 days */
  readonly accessValidityMs?: number;
  /** The vault's name, when it has no identity yet. @default derived from the location */
  readonly name?: string;
  readonly clock?: Clock;
  readonly env?: NodeJS.ProcessEnv;
  readonly store?: OpenStoreOptions;
  readonly signal?: AbortSignal;
}

/** Issues a credentials file for the vault at `location`, superseding every earlier one. */
export async function issueCredentials(location: string, options: IssueOptions = {}): Promise<CredentialsFile> {
  const clock = options.clock ?? systemClock;
  const signal = options.signal;
  const store = await openStore(location, { ...options.store, ...(signal ? { signal } : {}) });
  const identity = (await readIdentity(store, { signal })) ?? (await createIdentity(store, options.name ?? vaultNameFrom(location), clock.now(), { signal }));
  let access: CredentialsFile['access'] = {};
  if (resolveStoreKind(location).name === 'azure') {
    const where = parseAzureLocation(location);
    const credential = azureOptions(options.store ?? {})?.credential ?? credentialFromEnv(where.account, options.env ?? process.env);
    if (credential && isSharedKey(credential)) {
      const expiresOn = new Date(clock.now() + (options.accessValidityMs ?? 365 * 24 * 3600_000));
      access = { sasToken: containerSas(credential, { container: where.container, expiresOn }) };
    } else if (credential) {
      access = { sasToken: credential.sasToken };
    }
  }
  const state = await nextCredentialsState(store, clock.now(), { signal });
  return makeCredentials(identity, state, location, access, clock.now(), options.validityMs ?? DEFAULT_CREDENTIALS_VALIDITY_MS);
}

export interface RegisterOptions {
  readonly credentialsPath: string;
  /** @default the host name */
  readonly machineName?: string;
  /** The passphrase for this machine's backups (set now, or checked when registering again). */
  readonly passphrase: string;
  /** The agent's folder. @default agentHome() */
  readonly home: string;
  /** Settings chosen at registration (proxy, throttle, folders); secrets already sealed with sealSecret. */
  readonly settings?: AgentSettings;
  /** The proxy to reach the vault now (the plain form of `settings.proxy`). */
  readonly proxy?: ProxySettings;
  readonly kdf?: KdfParams;
  readonly clock?: Clock;
  readonly signal?: AbortSignal;
}

export interface RegisterResult {
  readonly vaultName: string;
  readonly vaultId: string;
  readonly machineName: string;
  readonly machineId: string;
  /** True when this machine was already registered with the vault under this name. */
  readonly again: boolean;
}

/** Registers this machine with the vault of a credentials file. */
export async function register(options: RegisterOptions): Promise<RegisterResult> {
  const clock = options.clock ?? systemClock;
  const signal = options.signal;
  /** The signal as a call option (absent rather than undefined). */
  const call = signal ? { signal } : {};
  const file = await readCredentialsFile(options.credentialsPath, call);
  // Expiry needs no network: say it before anything else.
  if (clock.now() >= Date.parse(file.expiresAt)) verifyCredentials(file, undefined, undefined, clock.now(), options.credentialsPath);
  const agent = await loadAgent(options.home, call);
  if (agent.registration && agent.registration.vaultId !== file.vaultId) {
    throw new VaultpathError(
      'VP_REGISTERED_ELSEWHERE',
      `This machine is registered with vault ${agent.registration.vaultName} (${agent.registration.location}); the credentials file is for vault ${file.vaultName}. A machine registers with one vault: use that vault's credentials, or use another agent folder (VAULTPATH_HOME).`,
    );
  }
  const machineName = options.machineName ?? hostname().split('.')[0] ?? 'machine';
  checkMachineName(machineName);
  const storeOptions: OpenStoreOptions = {
    ...call,
    stores: { azure: { ...(file.access.sasToken ? { credential: { sasToken: file.access.sasToken } } : {}), ...(options.proxy ? { proxy: options.proxy } : {}) } },
  };
  const store = await openStore(file.location, storeOptions);
  verifyCredentials(file, await readIdentity(store, { signal }), await readCredentialsState(store, { signal }), clock.now(), options.credentialsPath);

  const mine = agent.registration?.vaultId === file.vaultId && agent.registration.machineName.toLowerCase() === machineName.toLowerCase() ? agent.registration.machineId : undefined;
  const machineId = mine ?? randomBytes(16).toString('hex');
  const record = { machineId, name: machineName, registeredAt: new Date(clock.now()).toISOString(), generation: file.generation };
  let again = false;
  try {
    await recordMachine(store, record, call);
  } catch (e) {
    if ((e as VaultpathError).code !== 'VP_ALREADY_EXISTS') throw e;
    const existing = await readMachine(store, machineName, { signal });
    if (!existing || existing.machineId !== mine) {
      throw new VaultpathError(
        'VP_MACHINE_NAME_TAKEN',
        `A machine named "${existing?.name ?? machineName}" is already registered with vault ${file.vaultName}; several machines with one name are not supported. Register with another --machine-name.`,
      );
    }
    again = true;
    await recordMachine(store, record, { replace: true, ...call });
  }

  // The machine's own encrypted area: created with the passphrase, or opened with it when registering again.
  const area = machineLocation(file.location, machineName);
  const areaStore = await openStore(area, { ...storeOptions, create: true });
  if (again && (await areaStore.stat('config', call))) {
    await Vault.open(areaStore, options.passphrase, call);
  } else {
    await Vault.create(areaStore, options.passphrase, { ...(options.kdf ? { kdf: options.kdf } : {}), ...call });
  }

  const next: AgentFile = {
    format: 'vaultpath-agent',
    version: 1,
    registration: {
      vaultId: file.vaultId,
      vaultName: file.vaultName,
      location: file.location,
      machineLocation: area,
      machineId,
      machineName,
      registeredAt: record.registeredAt,
      generation: file.generation,
      access: file.access.sasToken ? { sasToken: await sealSecret(options.home, file.access.sasToken) } : {},
    },
    settings: { ...agent.settings, ...options.settings },
  };
  await saveAgent(options.home, next);
  return { vaultName: file.vaultName, vaultId: file.vaultId, machineName, machineId, again };
}

/** What a command needs from the registration: the machine's area, with its access and proxy. */
export async function registeredStore(home: string, options: Omit<OpenStoreOptions, 'azure'> & { proxy?: ProxySettings | false } = {}): Promise<{ store: Store; agent: AgentFile }> {
  const agent = await loadAgent(home);
  const r = agent.registration;
  if (!r) {
    throw new VaultpathError('VP_NOT_REGISTERED', `This machine is not registered with a vault (agent folder ${home}): give --vault, or run vaultpath register --credentials FILE.`);
  }
  const sasToken = r.access.sasToken ? await openSecret(home, r.access.sasToken) : undefined;
  const { proxy, ...rest } = options;
  const store = await openStore(r.machineLocation, {
    ...rest,
    stores: { ...rest.stores, azure: { ...rest.stores?.azure, ...(sasToken ? { credential: { sasToken } } : {}), ...(proxy !== undefined ? { proxy } : {}) } },
  });
  return { store, agent };
}
