// Builds the optional native addon (binding.gyp target vaultpath_native: kernels in native/kernels/, their N-API
// glue in native/napi/) on Linux with the node-gyp that npm bundles. vaultpath works without it (the scan then
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
