// Builds the optional native addon (native/statx.c, the restore's whole-file writer
// in native/write_file.c, the backup's file sealing and pack writing and the restore's blob opening in
// native/blob_crypto.c) on Linux with the node-gyp that npm bundles. vaultpath works without it (the scan then
// falls back to lstat and reports compressed/encrypted as unknown; backup seals small files and writes and hashes packs on its own thread; restore opens blobs on its own thread
// and writes small files one at a time with Node's calls), so a failed build warns, with node-gyp's output,
// instead of failing the install.
import { spawnSync } from 'node:child_process';

if (process.platform !== 'linux') process.exit(0);
const gyp = process.env.npm_config_node_gyp;
const [cmd, args] = gyp ? [process.execPath, [gyp, 'rebuild']] : ['node-gyp', ['rebuild']];
const result = spawnSync(cmd, args, { encoding: 'utf8' });
if (result.status !== 0) {
  process.stderr.write(`${result.stdout ?? ''}${result.stderr ?? ''}${result.error ? String(result.error) : ''}\n`);
  console.warn(
    'vaultpath: the native addon did not build; scans will use lstat and report compressed/encrypted as unknown, ' +
      'and backups and restores of small files will be slower.',
  );
}
