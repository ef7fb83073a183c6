/** The context every command gets, and the error for a command line the CLI does not accept. */
import { VaultpathError } from '../errors.js';

/** What every command gets: its arguments, where to print, and the options shared by all commands. */
export interface CommandContext {
  /** Positional arguments after the command name. */
  readonly positionals: readonly string[];
  /** Parsed options (strings, booleans, or lists for repeatable options). */
  readonly options: Readonly<Record<string, string | boolean | string[] | undefined>>;
  readonly json: boolean;
  readonly out: (line: string) => void;
  readonly err: (line: string) => void;
  readonly signal: AbortSignal;
}

/** A mistake in the command line (`VP_USAGE`): printed on one line with a pointer to --help, exit code 2. */
export class UsageError extends VaultpathError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super('VP_USAGE', message, options);
  }
}

/** The option as a list (repeatable options). */
export function list(ctx: CommandContext, name: string): string[] {
  const v = ctx.options[name];
  return Array.isArray(v) ? v : typeof v === 'string' ? [v] : [];
}

/** The option as a string, or undefined. */
export function text(ctx: CommandContext, name: string): string | undefined {
  const v = ctx.options[name];
  return typeof v === 'string' ? v : undefined;
}
