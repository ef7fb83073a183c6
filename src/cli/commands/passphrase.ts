/** `vaultpath passphrase generate`: print a new passphrase. */
import { GENERATED_PASSPHRASE_BITS, generatePassphrase } from '../../crypto/passphrase.js';
import { UsageError, type CommandContext } from '../context.js';

export function passphraseCommand(ctx: CommandContext): number {
  const [sub] = ctx.positionals;
  if (sub !== 'generate') throw new UsageError(`unknown subcommand "passphrase ${sub ?? ''}"; try "passphrase generate"`);
  const passphrase = generatePassphrase();
  if (ctx.json) {
    ctx.out(JSON.stringify({ passphrase, bits: GENERATED_PASSPHRASE_BITS }));
  } else {
    ctx.out(passphrase);
    ctx.err('Keep this passphrase safe: without it, nothing in the vault can be read back. Nobody can recover it.');
  }
  return 0;
}
