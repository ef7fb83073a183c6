#!/usr/bin/env node
/**
 * The `vaultpath` command: argument parsing, human and `--json` output, exit codes. It only wires the library;
 * everything it does is available from `import … from 'vaultpath'`.
 *
 * Exit codes: 0 success, 1 failure (a VaultpathError; its code is printed), 2 usage error.
 *
 * @module
 */
import { createReadStream } from 'node:fs';
import { opendir, readFile } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { VaultpathError, isVaultpathError } from '../errors.js';
import { generatePassphrase, GENERATED_PASSPHRASE_BITS } from '../crypto/passphrase.js';
import { VaultKeys, generateMasterKey } from '../crypto/keys.js';
import { ChunkIdentifier } from '../crypto/chunk-id.js';
import { joinSealed, openBlob, sealBlob } from '../crypto/envelope.js';
import { ObjectType } from '../crypto/object-type.js';
import { DEFAULT_CHUNKER_PARAMS, chunkStream } from '../chunk/fastcdc.js';
import { concatParts } from '../bytes.js';

const HELP = `vaultpath — the data path of a backup agent

Usage:
  vaultpath demo [--source DIR] [--json]   run the core data path over a folder: chunk, id, seal, open, verify
  vaultpath passphrase generate [--json]   print a new passphrase (about ${GENERATED_PASSPHRASE_BITS} bits, easy to read back)
  vaultpath --help | --version

Options:
  --json       machine-readable output on stdout
  -h, --help   this text

Exit codes: 0 success, 1 failure (the error code is printed), 2 usage error.
`;

class UsageError extends Error {}

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      help: { type: 'boolean', short: 'h' },
      version: { type: 'boolean' },
      json: { type: 'boolean' },
      source: { type: 'string' },
    },
  });
  if (values.version) {
    const pkg = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    console.log(pkg.version);
    return 0;
  }
  const [command, sub] = positionals;
  if (values.help || command === undefined || command === 'help') {
    process.stdout.write(HELP);
    return 0;
  }
  switch (command) {
    case 'passphrase':
      if (sub !== 'generate') throw new UsageError(`unknown subcommand "passphrase ${sub ?? ''}"; try "passphrase generate"`);
      return passphraseGenerate(values.json ?? false);
    case 'demo':
      return demo(resolve(values.source ?? '.'), values.json ?? false);
    default:
      throw new UsageError(`unknown command "${command}"`);
  }
}

function passphraseGenerate(json: boolean): number {
  const passphrase = generatePassphrase();
  if (json) {
    console.log(JSON.stringify({ passphrase, bits: GENERATED_PASSPHRASE_BITS }));
  } else {
    console.log(passphrase);
    console.error('Keep this passphrase safe: without it, nothing in the vault can be read back. Nobody can recover it.');
  }
  return 0;
}

/** Regular files below `root`, depth first, without following symbolic links; one directory handle open at a time. */
async function* regularFiles(root: string): AsyncGenerator<string> {
  const dir = await opendir(root);
  for await (const entry of dir) {
    const path = join(root, entry.name);
    if (entry.isDirectory()) yield* regularFiles(path);
    else if (entry.isFile()) yield path;
  }
}

/**
 * Runs the core data path over every regular file below `source` with a fresh random key: chunk (keyed FastCDC),
 * chunk id, dedup within the run, seal, then open every sealed chunk again and compare it with the original.
 */
async function demo(source: string, json: boolean): Promise<number> {
  const keys = VaultKeys.fromMasterKey(generateMasterKey());
  const ids = new ChunkIdentifier(keys);
  const seen = new Set<string>();
  const totals = { files: 0, bytes: 0, chunks: 0, uniqueChunks: 0, uniqueBytes: 0, sealedBytes: 0, verified: 0 };
  const started = performance.now();
  for await (const path of regularFiles(source)) {
    totals.files++;
    for await (const chunk of chunkStream(createReadStream(path, { highWaterMark: 1024 * 1024 }), keys.gearTable, DEFAULT_CHUNKER_PARAMS)) {
      totals.chunks++;
      totals.bytes += chunk.length;
      const id = ids.id(chunk.parts);
      const key = id.toString('hex');
      if (seen.has(key)) continue;
      seen.add(key);
      totals.uniqueChunks++;
      totals.uniqueBytes += chunk.length;
      const sealed = joinSealed(sealBlob(keys, ObjectType.data, id, chunk.parts));
      totals.sealedBytes += sealed.length;
      const opened = openBlob(keys, ObjectType.data, id, sealed);
      if (!opened.equals(concatParts(chunk.parts)) || !ids.matches(id, opened)) {
        throw new VaultpathError('VP_ID_MISMATCH', `A chunk of ${relative(source, path)} did not open to its original bytes.`);
      }
      totals.verified++;
    }
  }
  const seconds = (performance.now() - started) / 1000;
  const mbPerSecond = totals.bytes / 1e6 / Math.max(seconds, 1e-9);
  if (json) {
    console.log(JSON.stringify({ source, ...totals, seconds, mbPerSecond }));
  } else {
    console.log(`Source:   ${source}`);
    console.log(`Files:    ${totals.files}, ${(totals.bytes / 1e6).toFixed(1)} MB in ${totals.chunks} chunks`);
    console.log(`Unique:   ${totals.uniqueChunks} chunks, ${(totals.uniqueBytes / 1e6).toFixed(1)} MB (sealed ${(totals.sealedBytes / 1e6).toFixed(1)} MB)`);
    console.log(`Verified: ${totals.verified} of ${totals.uniqueChunks} sealed chunks opened to their original bytes`);
    console.log(`Time:     ${seconds.toFixed(2)} s, ${mbPerSecond.toFixed(0)} MB/s`);
  }
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    if (e instanceof UsageError || (e instanceof Error && 'code' in e && String(e.code).startsWith('ERR_PARSE_ARGS'))) {
      console.error(`vaultpath: ${e.message}\nRun "vaultpath --help" for usage.`);
      process.exitCode = 2;
    } else if (isVaultpathError(e)) {
      console.error(`vaultpath: ${e.message} [${e.code}]`);
      process.exitCode = 1;
    } else {
      console.error(e);
      process.exitCode = 1;
    }
  },
);
