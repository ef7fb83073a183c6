/** Real file trees for scan tests, built with the real file system (and real mounts where the machine allows). */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmod, link, mkdir, mkdtemp, symlink, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export async function tempDir(prefix = 'vaultpath-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  await chmod(dir, 0o755); // other users (the unprivileged scan) must be able to enter
  return dir;
}

/** Writes files given as { 'a/b.txt': 'content' | size }, making folders as needed. */
export async function writeTree(root: string, files: Record<string, string | number>): Promise<void> {
  for (const [rel, content] of Object.entries(files)) {
    const path = join(root, rel);
    await mkdir(join(path, '..'), { recursive: true });
    await writeFile(path, typeof content === 'number' ? Buffer.alloc(content, 0x61) : content);
  }
}

/** `chattr +c` on a file; false where the file system refuses. */
export function chattrCompressed(path: string): boolean {
  return spawnSync('chattr', ['+c', path]).status === 0;
}

/** Mounts a small tmpfs at `dir`; false where this process may not mount. */
export function mountTmpfs(dir: string): boolean {
  return spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'none', dir]).status === 0;
}

/** Mounts a ramfs at `dir` (root only): a file system that refuses O_DIRECT, after creating the file. */
export function mountRamfs(dir: string): boolean {
  return spawnSync('mount', ['-t', 'ramfs', 'none', dir]).status === 0;
}

export function unmount(dir: string): void {
  spawnSync('umount', [dir]);
}

export { chmod, link, mkdir, symlink, truncate };

/** True when running as root (so permission bits do not stop us, and an unprivileged child is needed). */
export function isRoot(): boolean {
  return process.getuid?.() === 0;
}

/**
 * Runs `script` (an ES module body that prints JSON on stdout) with Node as the unprivileged user `nobody`,
 * so permission bits apply as they do to any user. Only meaningful when running as root.
 */
export function runAsNobody(script: string): unknown {
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { uid: 65534, gid: 65534, encoding: 'utf8' });
  return JSON.parse(out);
}

/**
 * A folder encrypted with fscrypt (ext4 `encrypt` feature, policy set by e4crypt) on a loop-mounted image: files
 * written inside carry the real `E` inode flag. Needs root, loop devices and e2fsprogs; `undefined` where the
 * machine does not allow it.
 */
export async function encryptedFolder(): Promise<{ dir: string; cleanup: () => Promise<void> } | undefined> {
  if (!isRoot()) return undefined;
  const base = await tempDir('vaultpath-fscrypt-');
  const image = join(base, 'fs.img');
  const mnt = join(base, 'mnt');
  await mkdir(mnt);
  const cleanup = async (): Promise<void> => {
    spawnSync('umount', [mnt]);
    const { rm } = await import('node:fs/promises');
    await rm(base, { recursive: true, force: true });
  };
  const steps: [string, string[], string?][] = [
    ['truncate', ['-s', '32M', image]],
    ['mkfs.ext4', ['-q', '-O', 'encrypt', image]],
    ['mount', ['-o', 'loop', image, mnt]],
    ['mkdir', [join(mnt, 'secret')]],
    ['e4crypt', ['add_key', join(mnt, 'secret')], 'a passphrase for the test folder\n'],
  ];
  for (const [cmd, args, input] of steps) {
    if (spawnSync(cmd, args, { input, stdio: ['pipe', 'ignore', 'ignore'] }).status !== 0) {
      await cleanup();
      return undefined;
    }
  }
  return { dir: join(mnt, 'secret'), cleanup };
}
