/**
 * The vault commands: `init`, `backup`, `snapshots`, `restore`, `verify`, `passphrase change`.
 *
 * Exit codes: 0 success, 3 backup completed with warnings, 1 failure (including a restore or verify that found
 * damage, and a snapshot listing with a snapshot that cannot be read), 2 usage error.
 *
 * `latest` never means an older snapshot because a newer one cannot be read: it fails (`VP_SNAPSHOT_DAMAGED`)
 * unless `--skip-damaged` is given, and then every snapshot passed over is named on stderr (and in `--json`).
 * A failed `init` removes what it wrote, and the folder it made when there was none.
 *
 * This module loads only what opening a vault needs; each command loads its engine while the vault's key is being
 * derived (on a thread of its own), so that the derivation starts as early as it can.
 */
import { lstat, readdir, rmdir } from 'node:fs/promises';
import { join } from 'node:path';
import { generatePassphrase } from '../../crypto/passphrase.js';
import { DEFAULT_KDF_PARAMS, type KdfParams } from '../../crypto/kdf.js';
import { openStore } from '../../transfer/open.js';
import type { Store } from '../../transfer/store.js';
import { agentHome } from '../../agent/settings.js';
import { systemClock } from '../../throttle/clock.js';
import { proxyFrom, withAgentDefaults } from '../agent-defaults.js';
import { throttleFrom } from '../throttle.js';
import { isDamage, Vault } from '../../repo/vault.js';
import { formatBytes, parseSize } from '../../units.js';
import { isRemoteLocation } from '../../transfer/location.js';
import { type CommandContext, UsageError, list, text } from '../context.js';
import { readNewPassphrase, readPassphrase } from '../secrets.js';
import { ProgressBar } from '../progress.js';

function vaultPath(ctx: CommandContext): string {
  const v = text(ctx, 'vault');
  if (!v) throw new UsageError('--vault DIR|URL is required');
  return v;
}

/**
 * The store: `--vault` (a folder, or an Azure container URL with credentials from the environment), or without it
 * the machine's area in the vault it registered with.
 */
async function storeFor(ctx: CommandContext, throttle: ReturnType<typeof throttleFrom>, create = false): Promise<Store> {
  const proxy = proxyFrom(ctx);
  const buckets = throttle ? { upload: throttle.bucket, download: throttle.bucket } : {};
  if (!text(ctx, 'vault') && !create) {
    const { registeredStore } = await import('../../agent/register.js');
    return (await registeredStore(agentHome(), { signal: ctx.signal, ...(proxy ? { proxy } : {}), ...buckets })).store;
  }
  return openStore(vaultPath(ctx), { create, signal: ctx.signal, ...(proxy ? { stores: { azure: { proxy } } } : {}), ...buckets });
}

async function openVault(ctx: CommandContext, throttle = throttleFrom(ctx)): Promise<Vault> {
  // The schedule lives as long as the command: the command's signal aborts when it ends or is interrupted.
  throttle?.start(ctx.signal);
  const store = await storeFor(ctx, throttle);
  return Vault.open(store, await readPassphrase(ctx), { signal: ctx.signal });
}

export function kdfFrom(ctx: CommandContext): KdfParams {
  const memory = text(ctx, 'kdf-memory');
  const iterations = text(ctx, 'kdf-iterations');
  let memoryKiB = DEFAULT_KDF_PARAMS.memoryKiB;
  if (memory !== undefined) {
    try {
      memoryKiB = Math.round(parseSize(memory) / 1024);
    } catch (e) {
      throw new UsageError(`--kdf-memory: ${(e as Error).message}`);
    }
  }
  const t = iterations === undefined ? DEFAULT_KDF_PARAMS.iterations : Number(iterations);
  if (!Number.isInteger(t) || t < 1) throw new UsageError('--kdf-iterations takes a whole number of at least 1');
  return { memoryKiB, iterations: t, parallelism: 1 };
}

export async function initCommand(ctx: CommandContext): Promise<number> {
  const location = vaultPath(ctx);
  const { checkVaultName, createIdentity, vaultNameFrom } = await import('../../agent/identity.js');
  const name = text(ctx, 'name') ?? vaultNameFrom(location);
  checkVaultName(name);
  const generated = ctx.options['generate-passphrase'] === true;
  const passphrase = generated
    ? generatePassphrase()
    : await readNewPassphrase(ctx, { purpose: 'New vault passphrase (at least 16 characters)', env: 'VAULTPATH_PASSPHRASE', fromFile: true });
  const kdf = kdfFrom(ctx); // a usage error before anything is made
  // A local folder this init makes is removed again when init fails (only the empty folders: see removeEmptyFolders).
  const madeFolder = !isRemoteLocation(location) && (await lstat(location).then(() => false, () => true));
  let identity: Awaited<ReturnType<typeof createIdentity>>;
  let vault: Vault;
  try {
    const store = await storeFor(ctx, undefined, true);
    vault = await Vault.create(store, passphrase, { kdf, signal: ctx.signal });
    try {
      identity = await createIdentity(store, name, systemClock.now(), { signal: ctx.signal });
    } catch (e) {
      await vault.discardCreated();
      throw e;
    }
  } catch (e) {
    if (madeFolder) await removeEmptyFolders(location);
    throw e;
  }
  const store = vault.store;
  if (ctx.json) {
    ctx.out(JSON.stringify({ vault: store.location, name: identity.name, vaultId: identity.id, id: vault.config.id, ...(generated ? { passphrase } : {}) }));
  } else {
    ctx.out(`Created vault ${identity.name} (${identity.id}) at ${store.location}`);
    if (generated) {
      ctx.out(`Passphrase: ${passphrase}`);
      ctx.err('Write the passphrase down and keep it safe: it is shown only this once, and without it nothing in the vault can be read back.');
    }
  }
  return 0;
}

/**
 * Removes the folder `root` and the folders below it, deepest first, as far as they are empty (rmdir never removes
 * a folder with anything in it, nor follows a link): what a failed init of a new local vault leaves of the store's
 * layout. At most 4 levels, as deep as the layout goes.
 */
async function removeEmptyFolders(root: string, depth = 0): Promise<void> {
  if (depth < 4) {
    const entries = await readdir(root, { withFileTypes: true }).catch(() => []);
    for (const e of entries) if (e.isDirectory()) await removeEmptyFolders(join(root, e.name), depth + 1);
  }
  await rmdir(root).catch(() => undefined);
}

export async function backupCommand(ctx: CommandContext): Promise<number> {
  ctx = await withAgentDefaults(ctx);
  const paths = [...ctx.positionals];
  if (paths.length === 0) throw new UsageError('backup needs at least one folder: vaultpath backup PATH... --vault DIR');
  const throttle = throttleFrom(ctx);
  // The key is derived (on a worker thread) while the backup scans the sources.
  const vault = openVault(ctx, throttle);
  vault.catch(() => undefined); // handed to backup(), which awaits it
  const { backup } = await import('../../engine/backup.js');
  const bar = new ProgressBar(!ctx.json);
  const parentOption = text(ctx, 'parent');
  const skipDamaged = ctx.options['skip-damaged'] === true;
  // The parent: as given (an id, a prefix or `latest`, which --skip-damaged lets pass over damaged snapshots); by
  // default backup() takes the latest readable snapshot of the same paths and names those it passed over.
  const found = parentOption !== undefined && parentOption !== 'none' ? await (await vault).findSnapshot(parentOption, { signal: ctx.signal, skipDamaged }) : undefined;
  if (found) reportSkipped(ctx, found.skipped);
  const result = await backup(vault, paths, {
    exclude: list(ctx, 'exclude'),
    include: list(ctx, 'include'),
    excludeFilesIn: list(ctx, 'exclude-files-in'),
    scratchDir: text(ctx, 'scratch'),
    dryRun: ctx.options['dry-run'] === true,
    parent: parentOption === 'none' ? null : found === undefined ? undefined : (found?.id ?? null),
    signal: ctx.signal,
    // Under a bandwidth limit, the ETA comes from the schedule (an upper bound: it assumes every remaining byte is new).
    onProgress: (p) =>
      bar.update(p.phase === 'scan' ? 'scanning' : 'backing up', p.bytesDone, p.bytesTotal, p.files, p.filesTotal, throttle?.eta(p.bytesTotal - p.bytesDone)),
  });
  bar.done();
  const skippedDamaged = found ? found.skipped : result.parentSkippedDamaged;
  if (!found) reportSkipped(ctx, skippedDamaged);
  if (ctx.json) {
    ctx.out(JSON.stringify({ ...result, parentSkippedDamaged: undefined, scratch: undefined, scratchCapacity: result.scratch.capacity, scratchHighWaterMark: result.scratch.highWaterMark, skippedDamaged }));
  } else {
    const seconds = result.durationMs / 1000;
    ctx.out(ctx.options['dry-run'] === true ? 'Dry run: nothing was read or written.' : `Snapshot ${result.snapshot!.slice(0, 8)} saved (${result.status === 'complete' ? 'complete' : 'completed with warnings'})`);
    ctx.out(`  ${result.files} files (${result.filesUnchanged} unchanged, not read), ${result.dirs} folders`);
    ctx.out(`  read ${formatBytes(result.bytesRead)}, new ${formatBytes(result.bytesNew)}, stored ${formatBytes(result.bytesStored)} in ${seconds.toFixed(2)} s` +
      (seconds > 0 ? ` (${(result.bytesRead / 1e6 / seconds).toFixed(0)} MB/s)` : ''));
    if (result.filesFullOnly > 0) ctx.out(`  ${result.filesFullOnly} changed encrypted files uploaded whole again (full backups only)`);
    if (result.skipped > 0 || result.warnings > 0) {
      ctx.out(`  ${result.skipped} skipped, ${result.warnings} failed: see ${result.reportPath}`);
    }
  }
  return result.status === 'complete' ? 0 : 3;
}

export async function snapshotsCommand(ctx: CommandContext): Promise<number> {
  ctx = await withAgentDefaults(ctx);
  const vault = await openVault(ctx);
  // Snapshots that cannot be read are listed too, after the others (their time is sealed inside them).
  const all = await vault.listSnapshots({ signal: ctx.signal, includeDamaged: true });
  const problems = all.filter((s) => s.error !== undefined);
  if (ctx.json) {
    ctx.out(JSON.stringify(all.map((s) => (s.error === undefined ? { id: s.id, ...s.snapshot } : { id: s.id, damaged: isDamage(s.error), error: { code: s.error.code, message: s.error.message } }))));
  } else {
    if (all.length === 0) ctx.out('No snapshots yet.');
    else ctx.out(`${'ID'.padEnd(10)}${'TIME'.padEnd(26)}${'HOST'.padEnd(16)}${'FILES'.padStart(9)}${'SIZE'.padStart(11)}  PATHS`);
    for (const { id, snapshot: s, error } of all) {
      if (error !== undefined) {
        ctx.out(`${id.slice(0, 8).padEnd(10)}${isDamage(error) ? 'DAMAGED' : 'UNREADABLE'}: snapshot ${id} cannot be read (${error.code})`);
        continue;
      }
      const mark = s.status === 'complete' ? '' : ' (warnings)';
      ctx.out(`${id.slice(0, 8).padEnd(10)}${s.time.padEnd(26)}${s.hostname.slice(0, 15).padEnd(16)}${String(s.stats.files).padStart(9)}${formatBytes(s.stats.bytesRead).padStart(11)}  ${s.paths.join(', ')}${mark}`);
    }
  }
  for (const p of problems) ctx.err(`snapshot ${p.id}: ${p.error!.message}`);
  return problems.length > 0 ? 1 : 0;
}

export async function restoreCommand(ctx: CommandContext): Promise<number> {
  ctx = await withAgentDefaults(ctx);
  const [ref] = ctx.positionals;
  if (!ref) throw new UsageError('restore needs a snapshot: vaultpath restore SNAPSHOT|latest --vault DIR --target DIR');
  const target = text(ctx, 'target');
  if (!target) throw new UsageError('--target DIR is required');
  const [vault, { restore }] = await Promise.all([openVault(ctx), import('../../engine/restore.js')]);
  // Found here, so that with --skip-damaged the snapshots passed over can be named; restore() gets the full id.
  const found = await vault.findSnapshot(ref, { signal: ctx.signal, skipDamaged: ctx.options['skip-damaged'] === true });
  reportSkipped(ctx, found.skipped);
  const bar = new ProgressBar(!ctx.json);
  const result = await restore(vault, found.id, target, {
    include: list(ctx, 'include'),
    recoveryFolder: text(ctx, 'recovery-folder'),
    signal: ctx.signal,
    onProgress: (p) => bar.update('restoring', p.bytes, p.bytes, p.files),
  });
  bar.done();
  if (ctx.json) {
    ctx.out(JSON.stringify({ snapshot: result.snapshot, files: result.files, dirs: result.dirs, bytes: result.bytes, errors: result.errors, setIdCleared: result.setIdCleared, durationMs: result.durationMs, skippedDamaged: found.skipped }));
  } else {
    const seconds = result.durationMs / 1000;
    ctx.out(`Restored snapshot ${result.snapshot.slice(0, 8)} to ${target}: ${result.files} files, ${result.dirs} folders, ${formatBytes(result.bytes)} in ${seconds.toFixed(2)} s`);
    for (const e of result.errors.slice(0, 20)) ctx.err(`  failed: ${e.path}: ${e.reason}`);
    if (result.errors.length > 20) ctx.err(`  … and ${result.errors.length - 20} more (use --json for all)`);
    const cleared = result.setIdCleared;
    if (cleared.count > 0) {
      ctx.err(`Set-user-ID and set-group-ID bits not restored on ${cleared.count} files and folders (owners are not restored), e.g. ${cleared.paths.slice(0, 3).join(', ')}`);
    }
  }
  return result.errors.length > 0 ? 1 : 0;
}

/** Names on stderr each snapshot `latest` passed over because it cannot be read (--skip-damaged). */
function reportSkipped(ctx: CommandContext, skipped: readonly string[]): void {
  for (const id of skipped) ctx.err(`Passed over snapshot ${id}: it cannot be read (damaged); "vaultpath verify" reports why.`);
}

export async function verifyCommand(ctx: CommandContext): Promise<number> {
  ctx = await withAgentDefaults(ctx);
  const [vault, { verify }] = await Promise.all([openVault(ctx), import('../../engine/verify.js')]);
  const result = await verify(vault, { readData: ctx.options['read-data'] === true, signal: ctx.signal });
  if (ctx.json) {
    ctx.out(JSON.stringify(result));
  } else {
    ctx.out(`Checked ${result.snapshots} snapshots, ${result.trees} trees, ${result.blobs} chunks in ${result.packs} packs` +
      (ctx.options['read-data'] === true ? ` (${result.packsRead} packs read and every chunk opened)` : ' (structure only; --read-data opens every chunk)'));
    if (result.damage.length === 0) ctx.out('No damage found.');
    for (const d of result.damage) {
      ctx.out(`DAMAGED ${d.object}: ${d.problem}${d.code ? ` (${d.code})` : ''}`);
      if (d.snapshots.length > 0) ctx.out(`  affects snapshots ${d.snapshots.map((s) => s.slice(0, 8)).join(', ')}`);
      for (const f of d.files.slice(0, 10)) ctx.out(`  affects ${f}`);
    }
  }
  return result.damage.length > 0 ? 1 : 0;
}

export async function passphraseChangeCommand(ctx: CommandContext): Promise<number> {
  ctx = await withAgentDefaults(ctx);
  const vault = await openVault(ctx);
  const next = await readNewPassphrase();
  const id = await vault.changePassphrase(next, { kdf: kdfFrom(ctx), signal: ctx.signal });
  if (ctx.json) ctx.out(JSON.stringify({ keySlot: id.toString('hex'), removed: vault.slotId.toString('hex') }));
  else ctx.out('Passphrase changed: a new key slot was written and the old one removed; no data was re-encrypted.');
  return 0;
}
