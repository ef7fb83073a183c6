/**
 * A vault written under one Node.js runtime opens under another: CI runs the suite on the machine's Node.js and on
 * the current LTS, and names the other one in VAULTPATH_OTHER_NODE. Each direction: one runtime makes the vault
 * and backs up with the CLI, the other lists, verifies and restores it, byte for byte.
 */
import { execFileSync } from 'node:child_process';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI } from './support/cli.js';
import { tempDir } from './support/trees.js';
import { describeTree } from './support/vaults.js';

const OTHER = process.env['VAULTPATH_OTHER_NODE'];
const PASSPHRASE = 'correct horse battery staple';
const CHEAP = ['--kdf-memory', '64KiB', '--kdf-iterations', '1'];

describe.runIf(OTHER !== undefined && OTHER !== '')('a vault across Node.js runtimes', () => {
  let dir: string;
  let env: NodeJS.ProcessEnv;
  const run = (node: string, args: string[]): string => execFileSync(node, [CLI, ...args], { env, encoding: 'utf8' });
  const version = (node: string): string => execFileSync(node, ['--version'], { encoding: 'utf8' }).trim();
  beforeAll(async () => {
    dir = await tempDir('vaultpath-runtimes-');
    env = { ...process.env, XDG_CACHE_HOME: join(dir, 'cache'), VAULTPATH_PASSPHRASE: PASSPHRASE, VAULTPATH_NEW_PASSPHRASE: PASSPHRASE };
    await mkdir(join(dir, 'src', 'sub'), { recursive: true });
    await writeFile(join(dir, 'src', 'a.txt'), 'written under one runtime\n');
    await writeFile(join(dir, 'src', 'sub', 'b.bin'), Buffer.alloc(3 * 1024 * 1024 + 7, 0x5a));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('runs two different runtimes', () => {
    expect(version(OTHER!)).not.toBe(process.version);
  });

  for (const [writer, reader] of [['other', 'this'], ['this', 'other']] as const) {
    it(`opens, verifies and restores under ${reader} runtime what ${writer} runtime wrote`, async () => {
      const node = (who: 'this' | 'other'): string => (who === 'this' ? process.execPath : OTHER!);
      const vault = join(dir, `vault-${writer}`);
      run(node(writer), ['init', '--vault', vault, ...CHEAP]);
      run(node(writer), ['backup', join(dir, 'src'), '--vault', vault]);
      expect(run(node(reader), ['snapshots', '--vault', vault])).toMatch(/src/);
      run(node(reader), ['verify', '--vault', vault, '--read-data']);
      const target = join(dir, `restored-${writer}`);
      run(node(reader), ['restore', 'latest', '--vault', vault, '--target', target]);
      expect(await describeTree(join(target, 'src'))).toEqual(await describeTree(join(dir, 'src')));
    });
  }
});
