/**
 * The set-up flow through the CLI, from an empty vault to the first backup: init with a name, credentials issue,
 * register (with settings), settings show and set, then backup and restore with no --vault and no credentials file.
 */
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seededBytes } from './support/seeded.js';
import { tempDir } from './support/trees.js';
import { describeTree } from './support/vaults.js';
import { runCli } from './support/cli.js';
import { azureEnv, azureLocation, containerName } from './support/azure.js';
import { startAuthProxy } from './support/auth-proxy.js';

const OWNER = 'owner passphrase for the vault';
const MACHINE = 'machine passphrase, host one';

for (const backend of ['local folder', 'Azure (Azurite)'] as const) {
  describe(`the set-up flow with a ${backend} vault`, () => {
    let dir: string;
    let src: string;
    let location: string;
    let home: string;
    // The owner has the storage key; the machine has only the credentials file (its SAS, for Azure).
    const owner = (args: string[]) => runCli(args, { VAULTPATH_PASSPHRASE: OWNER, VAULTPATH_HOME: join(dir, 'owner-home'), ...(backend === 'local folder' ? {} : azureEnv()) });
    const machine = (args: string[], env: Record<string, string> = {}) =>
      runCli(args, { VAULTPATH_PASSPHRASE: MACHINE, VAULTPATH_HOME: home, AZURE_STORAGE_ACCOUNT: '', AZURE_STORAGE_KEY: '', ...env });

    beforeAll(async () => {
      dir = await tempDir('vaultpath-cli-agent-');
      home = join(dir, 'machine-home');
      src = join(dir, 'src');
      await mkdir(join(src, 'docs'), { recursive: true });
      await writeFile(join(src, 'data.bin'), seededBytes(3 * 1024 * 1024, 5));
      await writeFile(join(src, 'docs', 'a.txt'), 'first');
      location = backend === 'local folder' ? join(dir, 'vault') : azureLocation(containerName('setup'));
    });
    afterAll(() => rm(dir, { recursive: true, force: true }));

    it('goes from an empty vault to a first backup and a restore, in commands', async () => {
      const init = await owner(['init', '--vault', location, '--name', 'Team-Backups', '--kdf-memory', '64KiB', '--json']);
      expect(init.code, init.stderr).toBe(0);
      expect(JSON.parse(init.stdout)).toMatchObject({ name: 'Team-Backups' });

      const issued = await owner(['credentials', 'issue', '--vault', location, '--out', join(dir, 'team.VaultCredentials'), '--json']);
      expect(issued.code, issued.stderr).toBe(0);
      expect(JSON.parse(issued.stdout)).toMatchObject({ vaultName: 'Team-Backups', generation: 1 });

      const proxy = await startAuthProxy('agent', 'proxy secret 42');
      try {
        const reg = await machine(
          ['register', '--credentials', join(dir, 'team.VaultCredentials'), '--machine-name', 'host-one', '--kdf-memory', '64KiB', '--bwlimit', '100MB/s', '--scratch', join(dir, 'scratch'), '--recovery-folder', join(dir, 'recovery'), '--proxy', proxy.url, '--proxy-user', 'agent', '--json'],
          { VAULTPATH_PROXY_PASSWORD: 'proxy secret 42' },
        );
        expect(reg.code, reg.stderr).toBe(0);
        expect(JSON.parse(reg.stdout)).toMatchObject({ vaultName: 'Team-Backups', machineName: 'host-one' });
        if (backend !== 'local folder') expect(proxy.seen.filter((r) => r.accepted).length).toBeGreaterThan(0);

        const shown = await machine(['settings', 'show', '--json']);
        const view = JSON.parse(shown.stdout) as { settings: { proxy: { password: string }; throttle: unknown } };
        expect(view.settings.proxy).toEqual({ url: proxy.url, username: 'agent', password: '(set)' });
        expect(view.settings.throttle).toEqual({ bwlimit: '100MB/s' });
        expect(shown.stdout + (await readFile(join(home, 'agent.json'), 'utf8'))).not.toContain('proxy secret 42');

        // The first backup: no --vault, no credentials file; the settings are the defaults.
        await rm(join(dir, 'team.VaultCredentials'));
        const seenBefore = proxy.seen.length;
        const first = await machine(['backup', src, '--json']);
        expect(first.code, first.stderr).toBe(0);
        expect(JSON.parse(first.stdout)).toMatchObject({ files: 2 });
        if (backend !== 'local folder') expect(proxy.seen.length).toBeGreaterThan(seenBefore); // through the stored proxy
      } finally {
        await proxy.close();
      }

      // Change Properties: drop the proxy, change the throttle, without registering again.
      const set = await machine(['settings', 'set', '--proxy', 'none', '--work-days', 'mon-fri', '--work-hours', '09:00-18:00', '--work-rate', '8Mbps', '--off-rate', '100MB/s', '--tz', 'UTC']);
      expect(set.code, set.stderr).toBe(0);
      const after = JSON.parse((await machine(['settings', 'show', '--json'])).stdout) as { settings: Record<string, unknown> };
      expect(after.settings['proxy']).toBeUndefined();
      expect(after.settings['throttle']).toEqual({ workDays: 'mon-fri', workHours: '09:00-18:00', workRate: '8Mbps', offRate: '100MB/s', tz: 'UTC' });

      const list = JSON.parse((await machine(['snapshots', '--json'])).stdout) as unknown[];
      expect(list).toHaveLength(1);
      const restored = await machine(['restore', 'latest', '--target', join(dir, 'target'), '--json']);
      expect(restored.code, restored.stderr).toBe(0);
      expect(await describeTree(join(dir, 'target', 'src'))).toEqual(await describeTree(src));
    });

    it('gives each wrong credentials file its own code', async () => {
      // A second machine with the same name.
      await owner(['credentials', 'issue', '--vault', location, '--out', join(dir, 'next.VaultCredentials')]);
      const twin = await runCli(['register', '--credentials', join(dir, 'next.VaultCredentials'), '--machine-name', 'HOST-ONE', '--kdf-memory', '64KiB'], {
        VAULTPATH_PASSPHRASE: MACHINE,
        VAULTPATH_HOME: join(dir, 'twin-home'),
      });
      expect(twin.code).toBe(1);
      expect(twin.stderr).toContain('VP_MACHINE_NAME_TAKEN');
      // Superseded by a newer file.
      await owner(['credentials', 'issue', '--vault', location, '--out', join(dir, 'newest.VaultCredentials')]);
      const old = await machine(['register', '--credentials', join(dir, 'next.VaultCredentials'), '--machine-name', 'host-one']);
      expect(old.code).toBe(1);
      expect(old.stderr).toMatch(/superseded.*VP_CREDENTIALS_INVALID/s);
      // Expired.
      await owner(['credentials', 'issue', '--vault', location, '--out', join(dir, 'short.VaultCredentials'), '--validity', '1s']);
      await new Promise((resolve) => setTimeout(resolve, 1100));
      const expired = await machine(['register', '--credentials', join(dir, 'short.VaultCredentials')]);
      expect(expired.code).toBe(1);
      expect(expired.stderr).toMatch(/has expired.*VP_CREDENTIALS_EXPIRED/s);
      // Unreadable.
      const missing = await machine(['register', '--credentials', join(dir, 'nowhere.VaultCredentials')]);
      expect(missing.stderr).toContain('VP_CREDENTIALS_UNREADABLE');
      // Not registered: a command without --vault on a fresh machine says what to do.
      const fresh = await runCli(['snapshots'], { VAULTPATH_PASSPHRASE: MACHINE, VAULTPATH_HOME: join(dir, 'fresh-home') });
      expect(fresh.code).toBe(1);
      expect(fresh.stderr).toContain('VP_NOT_REGISTERED');
    });
  });
}
