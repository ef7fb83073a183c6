/**
 * The parsers of the agent's files (credentials files, agent.json, agent.key) and of the vault's registry refuse,
 * with their typed error, each kind of damage they once let through, crashed on, or hung on.
 */
import { execFileSync } from 'node:child_process';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { makeCredentials, readCredentialsFile, verifyCredentials } from '../../src/agent/credentials.js';
import { CREDENTIALS_STATE_NAME, IDENTITY_NAME, readCredentialsState, readIdentity, readMachine, machineRecordName } from '../../src/agent/identity.js';
import { loadAgent, sealSecret } from '../../src/agent/settings.js';
import { LocalStore } from '../../src/transfer/local-store.js';
import { tempDir } from '../support/trees.js';

const NOW = Date.parse('2026-11-22T10:00:00.000Z');
const identity = { format: 'vaultpath-vault' as const, version: 1 as const, id: 'ab'.repeat(16), name: 'backups', createdAt: '2026-11-22T10:00:00.000Z' };
const state = { generation: 2, key: Buffer.alloc(32, 1).toString('base64'), issuedAt: '2026-11-22T10:00:00.000Z' };

let dir: string;
beforeEach(async () => {
  dir = await tempDir('vaultpath-files-parse-');
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('credentials files', () => {
  const write = async (value: unknown, padding = ''): Promise<string> => {
    const path = join(dir, 'x.VaultCredentials');
    await writeFile(path, JSON.stringify(value) + padding);
    return path;
  };
  const valid = makeCredentials(identity, state, '/srv/vault', { sasToken: 'sv=1&sig=2' }, NOW);

  it('accepts a valid file', async () => {
    const file = await readCredentialsFile(await write(valid));
    expect(() => verifyCredentials(file, identity, state, NOW, 'x')).not.toThrow();
  });

  it('refuses an access nested deep with VP_CREDENTIALS_INVALID, before verification could recurse into it', async () => {
    // 10,000 levels, within the file size limit: the old reader parsed it, and verification's canonical form of
    // the fields recursed into it until the stack overflowed.
    const access = `${'{"a":'.repeat(10_000)}"x"${'}'.repeat(10_000)}`;
    const path = join(dir, 'deep.VaultCredentials');
    await writeFile(path, JSON.stringify({ ...valid, access: 'ACCESS' }).replace('"ACCESS"', access));
    let outcome: unknown;
    try {
      verifyCredentials(await readCredentialsFile(path), identity, state, NOW, path);
    } catch (e) {
      outcome = e;
    }
    expect(outcome).toMatchObject({ code: 'VP_CREDENTIALS_INVALID' });
  });

  it('refuses fields of the wrong type or range: a SAS that is not a string, a bad vault id, a generation of 0', async () => {
    for (const over of [{ access: { sasToken: 5 } }, { vaultId: 'zz' }, { generation: 0 }, { generation: 1.5 }, { mac: 5 }, { location: '' }, { issuedAt: 'yesterday' }]) {
      await expect(readCredentialsFile(await write({ ...valid, ...over })), JSON.stringify(over)).rejects.toMatchObject({ code: 'VP_CREDENTIALS_INVALID' });
    }
  });

  it('refuses a file over 64 KiB without parsing it', async () => {
    await expect(readCredentialsFile(await write(valid, ' '.repeat(70_000)))).rejects.toMatchObject({ code: 'VP_CREDENTIALS_INVALID', message: expect.stringContaining('larger than') });
  });

  it('refuses a FIFO as unreadable at once, instead of waiting for a writer', async () => {
    const fifo = join(dir, 'pipe.VaultCredentials');
    execFileSync('mkfifo', [fifo]);
    await expect(readCredentialsFile(fifo)).rejects.toMatchObject({ code: 'VP_CREDENTIALS_UNREADABLE', message: expect.stringContaining('not a regular file') });
  }, 10_000);
});

describe('the vault registry', () => {
  const store = async (name: string, text: string): Promise<LocalStore> => {
    const s = await LocalStore.open(join(dir, 'vault'), { create: true, durable: false });
    await s.put(name, Buffer.from(text));
    return s;
  };

  it('refuses a credentials state whose key is not base64 of 32 bytes (verification threw a TypeError)', async () => {
    const s = await store(CREDENTIALS_STATE_NAME, JSON.stringify({ ...state, key: 5 }));
    await expect(readCredentialsState(s)).rejects.toMatchObject({ code: 'VP_MALFORMED_OBJECT' });
  });

  it('refuses a credentials state whose generation is a string (the next one became "51")', async () => {
    const s = await store(CREDENTIALS_STATE_NAME, JSON.stringify({ ...state, generation: '5' }));
    await expect(readCredentialsState(s)).rejects.toMatchObject({ code: 'VP_MALFORMED_OBJECT' });
  });

  it('refuses an identity that is null or lacks a field, and a machine record without an id', async () => {
    await expect(readIdentity(await store(IDENTITY_NAME, 'null'))).rejects.toMatchObject({ code: 'VP_MALFORMED_OBJECT' });
    await expect(readIdentity(await store(IDENTITY_NAME, JSON.stringify({ ...identity, createdAt: undefined })))).rejects.toMatchObject({ code: 'VP_MALFORMED_OBJECT' });
    const record = { machineId: 'cd'.repeat(16), name: 'host-1', registeredAt: '2026-11-22T10:00:00.000Z', generation: 2 };
    await expect(readMachine(await store(machineRecordName('host-1'), JSON.stringify(record)), 'host-1')).resolves.toEqual(record);
    await expect(readMachine(await store(machineRecordName('host-1'), JSON.stringify({ ...record, machineId: 7 })), 'host-1')).rejects.toMatchObject({ code: 'VP_MALFORMED_OBJECT' });
  });
});

describe('agent.json and agent.key', () => {
  const agent = async (value: unknown): Promise<void> => {
    await mkdir(join(dir, 'home'), { recursive: true });
    await writeFile(join(dir, 'home', 'agent.json'), JSON.stringify(value));
  };
  const registration = {
    vaultId: 'ab'.repeat(16), vaultName: 'backups', location: '/srv/vault', machineLocation: '/srv/vault/machines/h', machineId: 'cd'.repeat(16),
    machineName: 'h', registeredAt: '2026-11-22T10:00:00.000Z', generation: 2, access: {},
  };

  it('accepts a valid file', async () => {
    await agent({ format: 'vaultpath-agent', version: 1, registration, settings: { throttle: { bwlimit: '8Mbit/s' } } });
    await expect(loadAgent(join(dir, 'home'))).resolves.toMatchObject({ registration });
  });

  it('refuses a registration without access, or with a machine name that is not a string, with VP_SETTINGS', async () => {
    for (const r of [{ ...registration, access: undefined }, { ...registration, machineName: 5 }]) {
      await agent({ format: 'vaultpath-agent', version: 1, registration: r, settings: {} });
      await expect(loadAgent(join(dir, 'home'))).rejects.toMatchObject({ code: 'VP_SETTINGS' });
    }
  });

  it('refuses a proxy password that is not a sealed secret, and settings of the wrong type, with VP_SETTINGS', async () => {
    for (const settings of [{ proxy: { url: 'http://p:1', password: 5 } }, { proxy: 'http://p:1' }, { throttle: { bwlimit: 8 } }, { scratchDir: ['x'] }, 7]) {
      await agent({ format: 'vaultpath-agent', version: 1, settings });
      await expect(loadAgent(join(dir, 'home')), JSON.stringify(settings)).rejects.toMatchObject({ code: 'VP_SETTINGS' });
    }
  });

  it('refuses an agent.key of the wrong length with VP_SETTINGS, not a RangeError from the cipher', async () => {
    await mkdir(join(dir, 'home'), { recursive: true });
    await writeFile(join(dir, 'home', 'agent.key'), Buffer.alloc(16, 1));
    await expect(sealSecret(join(dir, 'home'), 'secret')).rejects.toMatchObject({ code: 'VP_SETTINGS' });
  });
});
