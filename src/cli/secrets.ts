/**
 * Where the CLI gets passphrases: `VAULTPATH_PASSPHRASE`, `--passphrase-file FILE`, or a prompt on a terminal
 * (typing not echoed). A new passphrase for a change comes from `VAULTPATH_NEW_PASSPHRASE` or a prompt, asked twice.
 */
import { readFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';
import { type CommandContext, UsageError, text } from './context.js';

export async function readPassphrase(ctx: CommandContext, purpose = 'Vault passphrase'): Promise<string> {
  const fromEnv = process.env['VAULTPATH_PASSPHRASE'];
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
  const file = text(ctx, 'passphrase-file');
  if (file !== undefined) {
    const content = await readFile(file, 'utf8').catch((e: NodeJS.ErrnoException) => {
      throw new UsageError(`--passphrase-file ${file} cannot be read (${e.code ?? e.message})`);
    });
    return content.replace(/\r?\n$/, '');
  }
  if (!process.stdin.isTTY) {
    throw new UsageError('no passphrase: set VAULTPATH_PASSPHRASE, pass --passphrase-file FILE, or run on a terminal to be asked');
  }
  return prompt(`${purpose}: `);
}

export async function readNewPassphrase(): Promise<string> {
  const fromEnv = process.env['VAULTPATH_NEW_PASSPHRASE'];
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
  if (!process.stdin.isTTY) throw new UsageError('no new passphrase: set VAULTPATH_NEW_PASSPHRASE or run on a terminal to be asked');
  const first = await prompt('New passphrase (at least 16 characters): ');
  const second = await prompt('Type it again: ');
  if (first !== second) throw new UsageError('the two new passphrases differ; nothing was changed');
  return first;
}

/** Asks on the terminal without echoing what is typed. */
function prompt(question: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let muted = false;
    const output = new Writable({
      write(chunk, encoding, callback) {
        if (!muted) process.stderr.write(chunk, encoding);
        callback();
      },
    });
    const rl = createInterface({ input: process.stdin, output, terminal: true });
    rl.question(question, (answer) => {
      rl.close();
      process.stderr.write('\n');
      resolve(answer);
    });
    muted = true;
    rl.on('SIGINT', () => {
      rl.close();
      reject(new UsageError('cancelled'));
    });
  });
}
