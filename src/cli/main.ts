#!/usr/bin/env node
/**
 * The `vaultpath` command: argument parsing, dispatch, exit codes. Each command lives in commands/ and only wires
 * the library; everything the CLI does is available from `import … from 'vaultpath'`.
 *
 * Exit codes: 0 success, 1 failure (a VaultpathError; its code is printed), 2 usage error, 130 interrupted.
 *
 * @module
 */
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { isVaultpathError } from '../errors.js';
import { type CommandContext, UsageError } from './context.js';
import { demoCommand } from './commands/demo.js';
import { passphraseCommand } from './commands/passphrase.js';
import { scanCommand } from './commands/scan.js';

const HELP = `vaultpath — the data path of a backup agent

Usage:
  vaultpath scan <path>... [options]       show what a backup would do with each entry, before any data moves
      --exclude GLOB          exclude matching entries and all below them (repeatable; *.mp3 matches at any depth)
      --include GLOB          scan only matching entries (repeatable)
      --exclude-files-in DIR  exclude a folder's own files but keep its subfolders (repeatable)
      --report FILE           where to write the skipped-files report (JSON lines)
      --case-collision skip|fail   names differing only by case: skip later ones (default) or fail
      --max-source-size SIZE  largest data source (default 54400GB)
  vaultpath demo [--source DIR]            run the core data path over a folder: chunk, id, seal, open, verify
  vaultpath passphrase generate            print a new passphrase (about 136 bits, easy to read back)
  vaultpath --help | --version

Common options:
  --json       machine-readable output on stdout
  -h, --help   this text

Exit codes: 0 success, 1 failure (the error code is printed), 2 usage error, 130 interrupted.
`;

const COMMANDS: Record<string, (ctx: CommandContext) => number | Promise<number>> = {
  scan: scanCommand,
  demo: demoCommand,
  passphrase: passphraseCommand,
};

async function main(argv: string[], signal: AbortSignal): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      help: { type: 'boolean', short: 'h' },
      version: { type: 'boolean' },
      json: { type: 'boolean' },
      source: { type: 'string' },
      exclude: { type: 'string', multiple: true },
      include: { type: 'string', multiple: true },
      'exclude-files-in': { type: 'string', multiple: true },
      report: { type: 'string' },
      'case-collision': { type: 'string' },
      'max-source-size': { type: 'string' },
    },
  });
  if (values.version) {
    const pkg = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    console.log(pkg.version);
    return 0;
  }
  const [command, ...rest] = positionals;
  if (values.help || command === undefined || command === 'help') {
    process.stdout.write(HELP);
    return 0;
  }
  const run = COMMANDS[command];
  if (!run) throw new UsageError(`unknown command "${command}"`);
  return run({
    positionals: rest,
    options: values,
    json: values.json ?? false,
    out: (line) => console.log(line),
    err: (line) => console.error(line),
    signal,
  });
}

const controller = new AbortController();
process.once('SIGINT', () => controller.abort(new Error('interrupted (Ctrl-C)')));

main(process.argv.slice(2), controller.signal).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    if (e instanceof UsageError || (e instanceof Error && 'code' in e && String(e.code).startsWith('ERR_PARSE_ARGS'))) {
      console.error(`vaultpath: ${e.message}\nRun "vaultpath --help" for usage.`);
      process.exitCode = 2;
    } else if (isVaultpathError(e)) {
      console.error(`vaultpath: ${e.message} [${e.code}]`);
      process.exitCode = e.code === 'VP_ABORTED' ? 130 : 1;
    } else {
      console.error(e);
      process.exitCode = 1;
    }
  },
);
