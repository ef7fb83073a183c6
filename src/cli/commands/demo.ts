/**
 * `vaultpath demo [--source DIR] [--keep] [--json]`: the main job end to end, in a throwaway workspace.
 *
 * Creates an embedded local vault under a generated passphrase, backs up the source folder (default: the current
 * folder), backs it up again (incremental: unchanged files are not read), restores the latest snapshot, verifies
 * the vault with --read-data, and compares every restored file with its source byte for byte.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, mkdtemp, opendir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { generatePassphrase } from '../../crypto/passphrase.js';
import { LocalStore } from '../../transfer/local-store.js';
import { Vault } from '../../repo/vault.js';
import { backup } from '../../engine/backup.js';
import { restore } from '../../engine/restore.js';
import { verify } from '../../engine/verify.js';
import { formatBytes } from '../../units.js';
import { type CommandContext, text } from '../context.js';

export async function demoCommand(ctx: CommandContext): Promise<number> {
  const source = resolve(text(ctx, 'source') ?? '.');
  const workspace = await mkdtemp(join(tmpdir(), 'vaultpath-demo-'));
  const say = (line: string): void => {
    if (!ctx.json) ctx.out(line);
  };
  try {
    const store = await LocalStore.open(join(workspace, 'vault'), { create: true });
    const passphrase = generatePassphrase();
    let t = performance.now();
    const vault = await Vault.create(store, passphrase, { signal: ctx.signal });
    say(`Vault created at ${store.location} (Argon2id key slot, ${((performance.now() - t) / 1000).toFixed(2)} s)`);

    const options = { scratchDir: join(workspace, 'scratch'), reportPath: join(workspace, 'backup-report.jsonl'), signal: ctx.signal };
    const first = await backup(vault, [source], options);
    say(`Backup 1: ${first.files} files, read ${formatBytes(first.bytesRead)}, stored ${formatBytes(first.bytesStored)} in ${(first.durationMs / 1000).toFixed(2)} s` +
      ` (${mbps(first.bytesRead, first.durationMs)} MB/s); ${first.skipped} skipped by the support rules, snapshot ${first.snapshot!.slice(0, 8)}`);
    const second = await backup(vault, [source], options);
    say(`Backup 2: ${second.filesUnchanged} of ${second.files} files unchanged and not read, ${formatBytes(second.bytesNew)} new, ${(second.durationMs / 1000).toFixed(2)} s`);

    const target = join(workspace, 'restored');
    t = performance.now();
    const restored = await restore(vault, 'latest', target, { recoveryFolder: join(workspace, 'recovery'), signal: ctx.signal });
    say(`Restore:  ${restored.files} files, ${formatBytes(restored.bytes)} in ${(restored.durationMs / 1000).toFixed(2)} s (${mbps(restored.bytes, restored.durationMs)} MB/s), ${restored.errors.length} errors`);

    const checked = await verify(vault, { readData: true, signal: ctx.signal });
    say(`Verify:   ${checked.snapshots} snapshots, ${checked.packsRead} packs read, every chunk opened: ${checked.damage.length === 0 ? 'no damage' : `${checked.damage.length} problems`}`);

    const compared = await compareTrees(source, join(target, basename(source) || 'root'));
    say(`Compare:  ${compared.identical} files byte-identical to the source, ${compared.different.length} different`);
    for (const d of compared.different.slice(0, 10)) say(`  differs: ${d}`);
    if (ctx.json) {
      ctx.out(JSON.stringify({ source, first, second, restore: restored, verify: checked, compare: compared }));
    }
    const ok = restored.errors.length === 0 && checked.damage.length === 0 && compared.different.length === 0;
    say(ok ? 'Everything backed up came back byte for byte.' : 'Something did not come back intact: see above.');
    return ok ? 0 : 1;
  } finally {
    if (ctx.options['keep'] === true) say(`Workspace kept at ${workspace}`);
    else await rm(workspace, { recursive: true, force: true });
  }
}

function mbps(bytes: number, ms: number): string {
  return ms > 0 ? (bytes / 1e6 / (ms / 1000)).toFixed(0) : '-';
}

/** Compares every regular file the backup kept (not skipped by the rules) with its restored copy. */
async function compareTrees(source: string, restored: string): Promise<{ identical: number; different: string[] }> {
  let identical = 0;
  const different: string[] = [];
  const walk = async (rel: string): Promise<void> => {
    for await (const entry of await opendir(join(restored, rel))) {
      const r = rel === '' ? entry.name : `${rel}/${entry.name}`;
      if (entry.isDirectory()) await walk(r);
      else if (entry.isFile()) {
        const [a, b] = await Promise.all([hashFile(join(source, r)), hashFile(join(restored, r))]);
        const st = await lstat(join(source, r)).catch(() => undefined);
        if (a === b && st !== undefined) identical++;
        else different.push(r);
      }
    }
  };
  await walk('');
  return { identical, different };
}

async function hashFile(path: string): Promise<string> {
  const h = createHash('sha256');
  try {
    for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  } catch {
    return 'unreadable';
  }
  return h.digest('hex');
}
