#!/usr/bin/env node
/**
 * The `vaultpath` command: argument parsing, dispatch, exit codes. Each command lives in commands/ and only wires
 * the library; what an embedder needs is exported from `'vaultpath'`.
 *
 * Exit codes: 0 success, 1 failure (a VaultpathError; its code is printed), 2 usage error (`VP_USAGE`), 130
 * interrupted, 141 the reader of the output went away.
 *
 * Every failure is one line on stderr ending in its `VP_` code, never a stack: a VaultpathError as it is, a command
 * line that is not accepted (whatever the parser or a command refuses) as `VP_USAGE`, an errno failure from a local
 * file (no space, no permission, a folder in the way, the output not writable) as `VP_LOCAL_IO`, anything else as
 * `VP_INTERNAL` with a request to report it. `VAULTPATH_DEBUG=1` prints the details as well.
 * SIGINT and SIGTERM abort the command's signal, set before any command work starts; a second one exits at once.
 *
 * The output: when a write to stdout fails, nothing more is written there and the command is stopped through its
 * signal, as SIGPIPE stops a C program (Node ignores SIGPIPE, so the failure comes back as an error event instead).
 * A reader that went away (EPIPE: `vaultpath snapshots | head -1`) is not a failure to report: the command exits
 * 141 (128 + SIGPIPE, what a shell shows for `yes | head -1`) without a word. Any other write failure (EBADF for a
 * stdout opened read-only, ENOSPC on a full disk) is one line with `VP_LOCAL_IO` and exit code 1. A stdout closed
 * before start (`>&-`) cannot be told apart: Node opens /dev/null in its place before any of this code runs, exactly
 * what a parent that discards the output (`stdio: 'ignore'`, Python's `subprocess.DEVNULL`) hands over, so the output
 * is discarded and the exit code is the command's.
 *
 * @module
 */
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { setFlagsFromString } from 'node:v8';
import { isVaultpathError } from '../errors.js';
import { prepareKdf } from '../crypto/kdf.js';
import { type CommandContext, UsageError } from './context.js';

const HELP = `vaultpath — the data path of a backup agent

Usage:
  vaultpath init --vault DIR|URL [--name NAME] [--generate-passphrase]
                          create a vault: a local folder, or an Azure Blob container
                          https://ACCOUNT.blob.core.windows.net/CONTAINER[/PREFIX]; NAME: 2-50 letters, digits, hyphens
  vaultpath backup PATH... --vault DIR [options]         back up folders into a snapshot
      --exclude GLOB / --include GLOB / --exclude-files-in DIR   as for scan (repeatable)
      --scratch DIR           staging folder for packs (default: ~/.cache/vaultpath/scratch, this user's own)
      --parent ID|none        compare with this snapshot (default: the latest of the same paths)
      --dry-run               show what would be read, read and write nothing
      --skip-damaged          with --parent latest or a prefix: pass over snapshots that cannot be read, naming them
      --bwlimit RATE          one bandwidth limit, e.g. 8Mbit/s or 4MiB/s (also for restore)
      --work-days mon-fri --work-hours 09:00-18:00 --work-rate RATE --off-rate RATE [--tz ZONE]
                              a rate for work hours and another for the rest (also for restore)
  vaultpath snapshots --vault DIR                        list snapshots
  vaultpath restore SNAPSHOT|latest --vault DIR --target DIR [--include GLOB]... [--recovery-folder DIR]
                          [--skip-damaged]  with latest: the newest snapshot that can be read, naming damaged ones
  vaultpath verify --vault DIR [--read-data]             check every snapshot can be restored
  vaultpath passphrase change --vault DIR                add a key slot for a new passphrase, remove the old one

  vaultpath credentials issue --vault DIR|URL [--out FILE] [--validity 48h] [--access-validity 365d]
                          write a vault credentials file (supersedes every earlier one)
  vaultpath register --credentials FILE [--machine-name NAME] [--generate-passphrase] [settings]
                          register this machine with the vault; its backups get their own passphrase
  vaultpath settings show | set [settings]   the machine's agent settings, changed without registering again
      settings: --proxy URL|none --proxy-user USER (password: VAULTPATH_PROXY_PASSWORD), --bwlimit RATE|none or
                the work-hours options, --scratch DIR, --recovery-folder DIR
  On a registered machine, backup, snapshots, restore, verify and passphrase change need no --vault, and use the
  settings as defaults that flags override.

  vaultpath scan <path>... [options]       show what a backup would do with each entry, before any data moves
      --exclude GLOB          exclude matching entries and all below them (repeatable; *.mp3 matches at any depth)
      --include GLOB          scan only matching entries (repeatable)
      --exclude-files-in DIR  exclude a folder's own files but keep its subfolders (repeatable)
      --report FILE           where to write the skipped-files report (JSON lines; default: a new file in
                              ~/.cache/vaultpath/reports, where the newest 20 of each kind are kept)
      --case-collision skip|fail   names differing only by case: skip later ones (default) or fail
      --max-source-size SIZE  largest data source (default 54400GB)
  vaultpath demo [--source DIR] [--keep]   back up a folder into a new local vault, restore it, verify, compare
  vaultpath passphrase generate            print a new passphrase (about 136 bits, easy to read back)
  vaultpath --help | --version

Common options:
  --vault DIR|URL         the vault: a folder, or an Azure container URL (credentials from AZURE_STORAGE_KEY with
                          AZURE_STORAGE_ACCOUNT, AZURE_STORAGE_SAS_TOKEN or AZURE_STORAGE_CONNECTION_STRING)
  --proxy URL             HTTP proxy for an Azure vault (default: HTTPS_PROXY / HTTP_PROXY, NO_PROXY)
  --proxy-user USER       proxy user name; the password comes from VAULTPATH_PROXY_PASSWORD
  --json                  machine-readable output on stdout
  --passphrase-file FILE  read the passphrase from a file (else VAULTPATH_PASSPHRASE, else a prompt; a new
                          passphrase typed at a prompt is asked twice)
  VAULTPATH_DEBUG=1       print the details of a failure, not only its one line
  -h, --help              this text

Exit codes: 0 success, 3 backup completed with warnings, 1 failure (the error code is printed),
2 usage error (VP_USAGE), 130 interrupted, 141 the reader of the output went away (as with | head).
`;

type Command = (ctx: CommandContext) => number | Promise<number>;

/**
 * Each command's module, loaded when the command runs (a command loads only what it uses), and whether it derives
 * a key from a passphrase: for those, the key-derivation worker is started first, so that its start-up overlaps
 * loading the modules.
 */
const COMMANDS: Record<string, { load: () => Promise<Command>; derivesKey: boolean }> = {
  init: { load: async () => (await import('./commands/vault.js')).initCommand, derivesKey: true },
  backup: { load: async () => (await import('./commands/vault.js')).backupCommand, derivesKey: true },
  snapshots: { load: async () => (await import('./commands/vault.js')).snapshotsCommand, derivesKey: true },
  restore: { load: async () => (await import('./commands/vault.js')).restoreCommand, derivesKey: true },
  verify: { load: async () => (await import('./commands/vault.js')).verifyCommand, derivesKey: true },
  scan: { load: async () => (await import('./commands/scan.js')).scanCommand, derivesKey: false },
  demo: { load: async () => (await import('./commands/demo.js')).demoCommand, derivesKey: true },
  passphrase: { load: async () => (await import('./commands/passphrase.js')).passphraseCommand, derivesKey: true },
  credentials: { load: async () => (await import('./commands/agent.js')).credentialsCommand, derivesKey: false },
  register: { load: async () => (await import('./commands/agent.js')).registerCommand, derivesKey: true },
  settings: { load: async () => (await import('./commands/agent.js')).settingsCommand, derivesKey: false },
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
      vault: { type: 'string' },
      'generate-passphrase': { type: 'boolean' },
      'passphrase-file': { type: 'string' },
      'kdf-memory': { type: 'string' },
      'kdf-iterations': { type: 'string' },
      scratch: { type: 'string' },
      parent: { type: 'string' },
      'dry-run': { type: 'boolean' },
      target: { type: 'string' },
      'recovery-folder': { type: 'string' },
      'read-data': { type: 'boolean' },
      'skip-damaged': { type: 'boolean' },
      keep: { type: 'boolean' },
      bwlimit: { type: 'string' },
      'work-days': { type: 'string' },
      'work-hours': { type: 'string' },
      'work-rate': { type: 'string' },
      'off-rate': { type: 'string' },
      tz: { type: 'string' },
      proxy: { type: 'string' },
      'proxy-user': { type: 'string' },
      name: { type: 'string' },
      out: { type: 'string' },
      validity: { type: 'string' },
      'access-validity': { type: 'string' },
      credentials: { type: 'string' },
      'machine-name': { type: 'string' },
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
  const entry = Object.hasOwn(COMMANDS, command) ? COMMANDS[command] : undefined;
  if (!entry) throw new UsageError(`unknown command "${command}"`);
  if (entry.derivesKey) prepareKdf();
  const run = await entry.load();
  return run({
    positionals: rest,
    options: values,
    json: values.json ?? false,
    out: (line) => {
      if (outputFailure === undefined) console.log(line);
    },
    err: (line) => console.error(line),
    signal,
  });
}

/**
 * Keeps V8's young generation at its starting size (1 MiB a semi-space) instead of letting it double up to 16 MiB
 * while the walk of many small files allocates: the collector then runs more often on a smaller space, for the same
 * wall time. Measured on the benchmark corpus, a first backup's peak RSS went from 187–197 MiB to 166–173 MiB
 * and a restore's from 123–131 MiB to 120–121 MiB. The factor is read whenever the space would grow, so setting it
 * now takes effect; a size the user asks for (`node --max-semi-space-size=…`, NODE_OPTIONS) is left alone.
 */
function keepYoungGenerationSmall(): void {
  const asked = [...process.execArgv, process.env['NODE_OPTIONS'] ?? ''].some((a) => a.includes('semi-space'));
  if (!asked) setFlagsFromString('--semi-space-growth-factor=1');
}

/** Why an errno failure happened, in words a user can act on. */
const ERRNO_WORDS: Record<string, string> = {
  ENOSPC: 'no space left on the device',
  EDQUOT: 'the disk quota is exhausted',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EISDIR: 'it is a folder, not a file',
  ENOTDIR: 'a part of the path is not a folder',
  EROFS: 'the file system is read-only',
  ENOENT: 'it does not exist',
  EEXIST: 'it already exists',
  ELOOP: 'it is a symbolic link, which is not followed',
  ENAMETOOLONG: 'the name is too long',
  EMFILE: 'too many open files',
  ENFILE: 'too many open files on the system',
  EIO: 'an input/output error from the device',
  EPIPE: 'the reader of the output has gone',
  ENXIO: 'no such device',
  ETXTBSY: 'the file is busy',
};

/** What errno `code` means to a user, or `undefined` for one not named here. */
function errnoWords(code: string | undefined): string | undefined {
  return code !== undefined && Object.hasOwn(ERRNO_WORDS, code) ? ERRNO_WORDS[code] : undefined;
}

/** The one line printed for a failure `e`, its exit code, and whether it is a bug (details worth printing). */
function describeFailure(e: unknown, interrupted: boolean): { line: string; exitCode: number; bug: boolean } {
  const usage = asUsageError(e);
  if (usage) {
    const what = firstLine(usage.message).replace(/(?<!\.)\.$/, ''); // a full stop, not an ellipsis
    return { line: `vaultpath: ${what}; run "vaultpath --help" for usage [${usage.code}]`, exitCode: 2, bug: false };
  }
  if (isVaultpathError(e)) {
    const exitCode = e.code === 'VP_ABORTED' || interrupted ? 130 : 1;
    return { line: `vaultpath: ${firstLine(e.message)} [${e.code}]`, exitCode, bug: e.code === 'VP_INTERNAL' };
  }
  if (interrupted) return { line: 'vaultpath: interrupted [VP_ABORTED]', exitCode: 130, bug: false };
  const errno = e as (NodeJS.ErrnoException & { dest?: string }) | undefined;
  const words = errno instanceof Error ? errnoWords(errno.code) : undefined;
  if (words !== undefined) {
    const where = errno!.path !== undefined ? ` ${errno!.path}${errno!.dest !== undefined ? ` → ${errno!.dest}` : ''}` : '';
    const action = errno!.syscall ? `${errno!.syscall}` : 'use';
    return { line: `vaultpath: could not ${action}${where}: ${words} (${errno!.code}) [VP_LOCAL_IO]`, exitCode: 1, bug: false };
  }
  const what = e instanceof Error ? `${e.name}: ${firstLine(e.message)}` : firstLine(String(e));
  return {
    line: `vaultpath: unexpected failure (${what}); this is a bug, please report it with this line (VAULTPATH_DEBUG=1 prints the details) [VP_INTERNAL]`,
    exitCode: 1,
    bug: true,
  };
}

/**
 * `e` as a usage error: a {@link UsageError} as it is, and an error of `parseArgs` (an unknown option, an option
 * without its value, a value given to a switch) in words that fit one line.
 */
function asUsageError(e: unknown): UsageError | undefined {
  if (e instanceof UsageError) return e;
  if (!(e instanceof Error) || !('code' in e) || typeof e.code !== 'string' || !e.code.startsWith('ERR_PARSE_ARGS')) return undefined;
  // "Unknown option '--x'. To specify a positional argument starting with a '-', place it at the end of the command
  // after '--', as in '-- "--x"'": the advice, shorter, in vaultpath's words (its positionals are paths).
  const said = firstLine(e.message).replace(/\. To specify a positional argument.*$/, ' (a path that begins with "-" goes after "--")');
  return new UsageError(said.charAt(0).toLowerCase() + said.slice(1), { cause: e });
}

function firstLine(s: string): string {
  return s.split('\n')[0]!;
}

const debug = /^(1|true|yes)$/i.test(process.env['VAULTPATH_DEBUG'] ?? '');

/**
 * Prints `e` as one line (with the stack as well under VAULTPATH_DEBUG) and sets the exit code. Once the output has
 * failed, what follows is the command stopping because of it: the output's failure is reported instead, at exit.
 */
function fail(e: unknown): void {
  if (outputFailure !== undefined) return;
  failed = true;
  const { line, exitCode } = describeFailure(e, interrupted);
  console.error(line);
  if (debug) console.error(e);
  process.exitCode = exitCode;
}

// Signals go to the command's abort signal before anything else is done: Ctrl-C (SIGINT) or a service stop (SIGTERM)
// ends the command through its AbortSignal, so that it stops cleanly (locks removed, temporary files gone) and exits
// 130. A second signal ends the process at once.
const controller = new AbortController();
let interrupted = false;
const onSignal = (name: string) => (): void => {
  if (interrupted) process.exit(130);
  interrupted = true;
  controller.abort(new Error(`interrupted (${name})`));
};
process.on('SIGINT', onSignal('SIGINT'));
process.on('SIGTERM', onSignal('SIGTERM'));

// A write to stdout that fails (the reader gone, a read-only or full output) stops the command, as SIGPIPE would;
// what is printed and the exit code are decided at exit, after the command has stopped (see the module comment).
let outputFailure: NodeJS.ErrnoException | undefined;
let failed = false;
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (outputFailure !== undefined) return; // later writes to the broken output fail the same way
  outputFailure = e;
  controller.abort(new Error(`the output could not be written (${e.code ?? e.message})`));
});
process.on('exit', () => {
  // A failure of the command's own, printed before the output failed, keeps its line and exit code.
  if (outputFailure === undefined || failed) return;
  if (outputFailure.code === 'EPIPE') {
    process.exitCode = 141;
    return;
  }
  const code = outputFailure.code;
  // EBADF here is the output itself, not a descriptor of vaultpath's (which would be a bug): stdout opened read-only.
  const words = code === 'EBADF' ? 'it is not open for writing' : errnoWords(code);
  const why = words !== undefined ? `${words} (${code})` : code ?? firstLine(outputFailure.message);
  console.error(`vaultpath: could not write the output (stdout): ${why} [VP_LOCAL_IO]`);
  if (debug) console.error(outputFailure);
  process.exitCode = 1;
});
// Whatever escapes the command (a callback that threw, a promise nobody awaited) is still one line, never a stack.
process.on('uncaughtException', (e) => {
  fail(e);
  process.exit(process.exitCode ?? 1);
});
process.on('unhandledRejection', (e) => {
  fail(e);
  process.exit(process.exitCode ?? 1);
});

keepYoungGenerationSmall();

main(process.argv.slice(2), controller.signal)
  // Whatever the outcome, what still follows the command's signal (a bandwidth schedule) stops with it.
  .finally(() => controller.abort(new Error('the command has ended')))
  .then(
    (code) => {
      process.exitCode = interrupted && code !== 0 ? 130 : code;
    },
    fail,
  );
