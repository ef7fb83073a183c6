/** `vaultpath passphrase generate`: print a new passphrase. */
import { GENERATED_PASSPHRASE_BITS, generatePassphrase } from '../../crypto/passphrase.js';
import { UsageError, type CommandContext } from '../context.js';
import { passphraseChangeCommand } from './vault.js';

export function passphraseCommand(ctx: CommandContext): number | Promise<number> {
  const [sub] = ctx.positionals;
  if (sub === 'change') return passphraseChangeCommand({ ...ctx, positionals: ctx.positionals.slice(1) });
  if (sub !== 'generate') throw new UsageError(`unknown subcommand "passphrase ${sub ?? ''}"; use "passphrase generate" or "passphrase change"`);
  const passphrase = generatePassphrase();
  if (ctx.json) {
    ctx.out(JSON.stringify({ passphrase, bits: GENERATED_PASSPHRASE_BITS }));
  } else {
    ctx.out(passphrase);
    ctx.err('Keep this passphrase safe: without it, nothing in the vault can be read back. Nobody can recover it.');
  }
  return 0;
}
