/**
 * Where the CLI gets passphrases: `VAULTPATH_PASSPHRASE`, `--passphrase-file FILE`, or a prompt on a terminal
 * (typing not echoed).
 *
 * A new passphrase (`init`, `register`, `passphrase change`) typed at a prompt is asked twice and must be the same
 * both times (asked again, up to three times, then `VP_PASSPHRASE_MISMATCH`), since one typing slip would otherwise
 * lock the data away for good. Given non-interactively (the environment, a file) it is taken as it is. Either way
 * the warning that a lost passphrase cannot be recovered is printed on stderr before it is used.
 *
 * Ctrl-C at a prompt (or the command's signal aborting) ends the prompt with `VP_ABORTED`, so the command exits 130.
 */
import { readFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';
import { VaultpathError } from '../errors.js';
import { type CommandContext, UsageError, text } from './context.js';

/** Printed whenever a new passphrase is set, whatever its source. */
export const LOSS_WARNING =
  'If you lose this passphrase, the data cannot be recovered: nobody can read these backups without it, not even ' +
  'the vault\u2019s owner. Write it down and keep it somewhere other than this machine.';

/** Times a new passphrase may be typed differently twice before the command gives up. */
const CONFIRM_TRIES = 3;

export async function readPassphrase(ctx: CommandContext, purpose = 'Vault passphrase'): Promise<string> {
  const given = await givenPassphrase(ctx, 'VAULTPATH_PASSPHRASE', true);
  if (given !== undefined) return given;
  if (!process.stdin.isTTY) {
    throw new UsageError('no passphrase: set VAULTPATH_PASSPHRASE, pass --passphrase-file FILE, or run on a terminal to be asked');
  }
  const prompt = new Prompt(ctx.signal);
  try {
    return await prompt.ask(`${purpose}: `);
  } finally {
    prompt.close();
  }
}

export interface NewPassphraseOptions {
  /** What the prompt says. */
  readonly purpose?: string;
  /** The environment variable that may hold it. @default 'VAULTPATH_NEW_PASSPHRASE' */
  readonly env?: string;
  /** Whether `--passphrase-file` gives it (not for a change, where that file holds the current one). @default false */
  readonly fromFile?: boolean;
}

/**
 * A new passphrase: from the environment (or `--passphrase-file`, when `fromFile`) as it is, else typed twice at
 * a prompt. Prints {@link LOSS_WARNING} first.
 * @throws {VaultpathError} `VP_PASSPHRASE_MISMATCH` when it was typed differently three times; `VP_ABORTED` on Ctrl-C.
 */
export async function readNewPassphrase(ctx?: CommandContext, options: NewPassphraseOptions = {}): Promise<string> {
  const env = options.env ?? 'VAULTPATH_NEW_PASSPHRASE';
  const warn = (): void => {
    if (ctx) ctx.err(LOSS_WARNING);
    else process.stderr.write(`${LOSS_WARNING}\n`);
  };
  const given = ctx ? await givenPassphrase(ctx, env, options.fromFile ?? false) : nonEmpty(process.env[env]);
  if (given !== undefined) {
    warn();
    return given;
  }
  if (!process.stdin.isTTY) {
    const file = options.fromFile ? ', pass --passphrase-file FILE,' : '';
    throw new UsageError(`no new passphrase: set ${env}${file} or run on a terminal to be asked`);
  }
  warn();
  const prompt = new Prompt(ctx?.signal);
  try {
    for (let attempt = 1; ; attempt++) {
      const first = await prompt.ask(`${options.purpose ?? 'New passphrase (at least 16 characters)'}: `);
      const second = await prompt.ask('Type it again: ');
      if (first === second) return first;
      if (attempt >= CONFIRM_TRIES) {
        throw new VaultpathError('VP_PASSPHRASE_MISMATCH', `The passphrase was typed differently twice, ${CONFIRM_TRIES} times; nothing was changed.`);
      }
      process.stderr.write('The two do not match; type it again.\n');
    }
  } finally {
    prompt.close();
  }
}

function nonEmpty(v: string | undefined): string | undefined {
  return v !== undefined && v !== '' ? v : undefined;
}

/** The passphrase given without a prompt: the environment variable `env`, else `--passphrase-file`. */
async function givenPassphrase(ctx: CommandContext, env: string, fromFile: boolean): Promise<string | undefined> {
  const fromEnv = nonEmpty(process.env[env]);
  if (fromEnv !== undefined) return fromEnv;
  const file = fromFile ? text(ctx, 'passphrase-file') : undefined;
  if (file === undefined) return undefined;
  const content = await readFile(file, { encoding: 'utf8', signal: ctx.signal }).catch((e: NodeJS.ErrnoException) => {
    if (e.name === 'AbortError') throw new VaultpathError('VP_ABORTED', 'Interrupted while reading the passphrase file.', { cause: e });
    throw new UsageError(`--passphrase-file ${file} cannot be read (${e.code ?? e.message})`);
  });
  return content.replace(/\r?\n$/, '');
}

/**
 * Questions on the terminal without echoing what is typed, all through one readline interface: lines typed ahead
 * (or pasted at once) go to the questions in order instead of being lost with a closed interface.
 */
class Prompt {
  readonly #rl;
  readonly #lines: string[] = [];
  #waiting: { resolve: (line: string) => void; reject: (e: unknown) => void } | undefined;
  #failure: unknown;
  #muted = false;
  readonly #signal: AbortSignal | undefined;
  readonly #onAbort = (): void => {
    if (this.#failure === undefined) process.stderr.write('\n');
    this.#fail(new VaultpathError('VP_ABORTED', 'Interrupted at the passphrase prompt; nothing was done.'));
  };

  constructor(signal: AbortSignal | undefined) {
    this.#signal = signal;
    const output = new Writable({
      write: (chunk, encoding, callback) => {
        if (!this.#muted) process.stderr.write(chunk, encoding);
        callback();
      },
    });
    this.#rl = createInterface({ input: process.stdin, output, terminal: true });
    this.#rl.on('line', (line) => {
      process.stderr.write('\n');
      if (this.#waiting) {
        const w = this.#waiting;
        this.#waiting = undefined;
        w.resolve(line);
      } else {
        this.#lines.push(line);
      }
    });
    // In raw mode Ctrl-C is a key, not a signal: readline reports it here.
    this.#rl.on('SIGINT', this.#onAbort);
    this.#rl.on('close', () => this.#fail(new VaultpathError('VP_ABORTED', 'The terminal closed at the passphrase prompt; nothing was done.')));
    if (signal?.aborted) this.#onAbort();
    else signal?.addEventListener('abort', this.#onAbort, { once: true });
  }

  ask(question: string): Promise<string> {
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    this.#muted = false;
    process.stderr.write(question);
    this.#muted = true;
    const ready = this.#lines.shift();
    if (ready !== undefined) return Promise.resolve(ready);
    return new Promise((resolve, reject) => {
      this.#waiting = { resolve, reject };
    });
  }

  close(): void {
    this.#signal?.removeEventListener('abort', this.#onAbort);
    this.#failure ??= new VaultpathError('VP_ABORTED', 'The prompt is closed.');
    this.#rl.close();
  }

  #fail(e: unknown): void {
    this.#failure ??= e;
    const w = this.#waiting;
    this.#waiting = undefined;
    w?.reject(this.#failure);
  }
}
