/**
 * Vault credentials and machine registration, against a local vault and against Azurite: each way a credentials
 * file can be wrong gives its own code, on a fake clock for expiry.
 */
import { chmod, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { checkVaultName, createIdentity, vaultNameFrom } from '../../src/agent/identity.js';
import { credentialsFileName, writeCredentialsFile } from '../../src/agent/credentials.js';
import { issueCredentials, register, registeredStore } from '../../src/agent/register.js';
import { loadAgent, openSecret } from '../../src/agent/settings.js';
import { Vault } from '../../src/repo/vault.js';
import { openStore } from '../../src/transfer/open.js';
import { FakeClock } from '../support/fake-clock.js';
import { TEST_KDF } from '../support/seeded.js';
import { tempDir } from '../support/trees.js';
import { azureEnv, azureLocation, azurite, containerName } from '../support/azure.js';

const PASSPHRASE = 'correct horse battery staple';

describe('vault names', () => {
  it.each(['ab', 'Backups-2026', 'a'.repeat(50)])('accepts %j', (name) => expect(() => checkVaultName(name)).not.toThrow());
  it.each(['a', '2fast', '-x', 'a'.repeat(51), 'has space', 'under_score', 'ünï'])('refuses %j with VP_VAULT_NAME', (name) =>
    expect(() => checkVaultName(name)).toThrow(expect.objectContaining({ code: 'VP_VAULT_NAME' })),
  );
  it('derives a valid default from the location', () => {
    expect(vaultNameFrom('/backups/vault')).toBe('vault');
    expect(vaultNameFrom('https://acme.blob.core.windows.net/backups/site_a')).toBe('site-a');
    expect(vaultNameFrom('/srv/2026_store')).toBe('store');
    expect(() => checkVaultName(vaultNameFrom('/x/9'))).not.toThrow();
  });
  it('names the credentials file after the vault and the date, as the portal does', () => {
    expect(credentialsFileName('backups', Date.UTC(2026, 10, 22, 13))).toBe('backups_2026-11-22.VaultCredentials');
  });
});

for (const backend of ['local folder', 'Azure (Azurite)'] as const) {
  describe(`registration with a ${backend} vault`, () => {
    let dir: string;
    let location: string;
    let clock: FakeClock;
    const env = backend === 'local folder' ? {} : azureEnv();
    const storeOptions = backend === 'local folder' ? {} : { azure: { credential: azurite().credential, proxy: false as const } };

    beforeEach(async () => {
      dir = await tempDir('vaultpath-register-');
      clock = new FakeClock();
      location = backend === 'local folder' ? join(dir, 'vault') : azureLocation(containerName('reg'));
      const store = await openStore(location, { create: true, ...storeOptions });
      await Vault.create(store, PASSPHRASE, { kdf: TEST_KDF });
      await createIdentity(store, 'backups', clock.now());
    });
    afterEach(() => rm(dir, { recursive: true, force: true }));

    async function issue(name = 'creds.VaultCredentials'): Promise<string> {
      const file = await issueCredentials(location, { clock, env, store: storeOptions });
      const path = join(dir, name);
      await writeCredentialsFile(path, file);
      return path;
    }
    const registerWith = (credentialsPath: string, home = join(dir, 'agent'), machineName = 'host-1') =>
      register({ credentialsPath, machineName, passphrase: 'this machine passphrase', home, clock, kdf: TEST_KDF, ...(backend === 'local folder' ? {} : { proxy: undefined }) });

    it('registers with a valid file, records the machine, and the machine can back up without the file', async () => {
      const path = await issue();
      const result = await registerWith(path);
      expect(result).toMatchObject({ vaultName: 'backups', machineName: 'host-1', again: false });
      const agent = await loadAgent(join(dir, 'agent'));
      expect(agent.registration).toMatchObject({ vaultName: 'backups', machineName: 'host-1', location });
      if (backend !== 'local folder') {
        // The SAS is sealed in the settings file, never in plain text.
        const raw = await readFile(join(dir, 'agent', 'agent.json'), 'utf8');
        const sas = await openSecret(join(dir, 'agent'), agent.registration!.access.sasToken!);
        expect(sas).toContain('sig=');
        expect(raw).not.toContain(new URLSearchParams(sas).get('sig')!);
      }
      await rm(path);
      const { store } = await registeredStore(join(dir, 'agent'), { proxy: false });
      const vault = await Vault.open(store, 'this machine passphrase');
      expect(await vault.listSnapshots()).toEqual([]);
      // Registering again from the same machine is allowed.
      expect(await registerWith(await issue('again.VaultCredentials'))).toMatchObject({ again: true, machineId: result.machineId });
    });

    it('refuses an expired file with VP_CREDENTIALS_EXPIRED and the time it expired', async () => {
      const path = await issue();
      await clock.advance(48 * 3600_000);
      await expect(registerWith(path)).rejects.toMatchObject({
        code: 'VP_CREDENTIALS_EXPIRED',
        message: expect.stringMatching(/Vault credentials file provided has expired: .* expired at 2026-11-25T00:00:00\.000Z/),
      });
    });

    it('refuses a file with one byte changed as corrupted (VP_CREDENTIALS_INVALID)', async () => {
      const path = await issue();
      const text = await readFile(path, 'utf8');
      const at = text.indexOf('"vaultName": "backups"') + '"vaultName": "b'.length;
      await writeFile(path, `${text.slice(0, at)}B${text.slice(at + 1)}`);
      await expect(registerWith(path)).rejects.toMatchObject({ code: 'VP_CREDENTIALS_INVALID', message: expect.stringContaining('changed after it was issued') });
    });

    it('accepts only the newest of two files issued in quick succession', async () => {
      const first = await issue('first.VaultCredentials');
      const second = await issue('second.VaultCredentials');
      await expect(registerWith(first)).rejects.toMatchObject({ code: 'VP_CREDENTIALS_INVALID', message: expect.stringContaining('superseded by a newer file') });
      await expect(registerWith(second)).resolves.toMatchObject({ machineName: 'host-1' });
    });

    it('refuses credentials of another vault once registered (VP_REGISTERED_ELSEWHERE)', async () => {
      await registerWith(await issue());
      const otherLocation = backend === 'local folder' ? join(dir, 'other') : azureLocation(containerName('other'));
      const store = await openStore(otherLocation, { create: true, ...storeOptions });
      await Vault.create(store, PASSPHRASE, { kdf: TEST_KDF });
      await createIdentity(store, 'elsewhere', clock.now());
      const file = await issueCredentials(otherLocation, { clock, env, store: storeOptions });
      await writeCredentialsFile(join(dir, 'other.VaultCredentials'), file);
      await expect(registerWith(join(dir, 'other.VaultCredentials'))).rejects.toMatchObject({ code: 'VP_REGISTERED_ELSEWHERE', message: expect.stringContaining('backups') });
    });

    it('refuses a machine name already registered by another machine (VP_MACHINE_NAME_TAKEN), whatever the case', async () => {
      await registerWith(await issue(), join(dir, 'agent-a'), 'build-01');
      await expect(registerWith(await issue('b.VaultCredentials'), join(dir, 'agent-b'), 'BUILD-01')).rejects.toMatchObject({ code: 'VP_MACHINE_NAME_TAKEN' });
    });

    it('tells an unreadable file (VP_CREDENTIALS_UNREADABLE) from one that is not a credentials file (VP_CREDENTIALS_INVALID)', async () => {
      await expect(registerWith(join(dir, 'missing.VaultCredentials'))).rejects.toMatchObject({
        code: 'VP_CREDENTIALS_UNREADABLE',
        message: expect.stringContaining('Copy it to a local folder'),
      });
      await mkdir(join(dir, 'a-folder'));
      await expect(registerWith(join(dir, 'a-folder'))).rejects.toMatchObject({ code: 'VP_CREDENTIALS_UNREADABLE' });
      await writeFile(join(dir, 'notes.txt'), 'shopping list');
      await expect(registerWith(join(dir, 'notes.txt'))).rejects.toMatchObject({ code: 'VP_CREDENTIALS_INVALID', message: expect.stringContaining('not JSON') });
      await writeFile(join(dir, 'other.json'), '{"format":"something-else"}');
      await expect(registerWith(join(dir, 'other.json'))).rejects.toMatchObject({ code: 'VP_CREDENTIALS_INVALID', message: expect.stringContaining('not a credentials file') });
      if (process.getuid?.() !== 0) {
        const locked = await issue('locked.VaultCredentials');
        await chmod(locked, 0);
        await expect(registerWith(locked)).rejects.toMatchObject({ code: 'VP_CREDENTIALS_UNREADABLE' });
      }
    });
  });
}
