/**
 * Registered machines: a command without `--vault` uses the vault this machine registered with, and the settings
 * stored at registration (proxy, throttling, scratch folder, recovery folder) as defaults that flags override.
 * A command with `--vault` uses only its flags.
 */
import { type ThrottleSettings, agentHome, loadAgent, openSecret } from '../agent/settings.js';
import type { ProxySettings } from '../transfer/proxy.js';
import { type CommandContext, text } from './context.js';

/** Each stored throttle setting and the flag that gives it. */
export const THROTTLE_SETTING_FLAGS = [
  ['bwlimit', 'bwlimit'],
  ['workDays', 'work-days'],
  ['workHours', 'work-hours'],
  ['workRate', 'work-rate'],
  ['offRate', 'off-rate'],
  ['tz', 'tz'],
] as const satisfies readonly (readonly [keyof ThrottleSettings, string])[];
const agentProxies = new WeakMap<CommandContext, ProxySettings>();

/** `ctx` with the registration's settings filled in where no flag was given (unchanged when `--vault` is given). */
export async function withAgentDefaults(ctx: CommandContext): Promise<CommandContext> {
  if (text(ctx, 'vault')) return ctx;
  const home = agentHome();
  const { settings } = await loadAgent(home);
  const options = { ...ctx.options };
  const fill = (flag: string, value: string | undefined): void => {
    if (value !== undefined && options[flag] === undefined) options[flag] = value;
  };
  fill('scratch', settings.scratchDir);
  fill('recovery-folder', settings.recoveryFolder);
  if (settings.throttle && THROTTLE_SETTING_FLAGS.every(([, flag]) => options[flag] === undefined)) {
    for (const [key, flag] of THROTTLE_SETTING_FLAGS) fill(flag, settings.throttle[key]);
  }
  const next: CommandContext = { ...ctx, options };
  if (settings.proxy && options['proxy'] === undefined) {
    const p = settings.proxy;
    agentProxies.set(next, {
      url: p.url,
      ...(p.username !== undefined ? { username: p.username } : {}),
      ...(p.password !== undefined ? { password: await openSecret(home, p.password) } : {}),
    });
  }
  return next;
}

/** `--proxy URL [--proxy-user USER]` (password from VAULTPATH_PROXY_PASSWORD), else the registration's proxy. */
export function proxyFrom(ctx: CommandContext): ProxySettings | undefined {
  const url = text(ctx, 'proxy');
  if (!url) return agentProxies.get(ctx);
  if (url === 'none') return undefined;
  const username = text(ctx, 'proxy-user');
  const password = process.env['VAULTPATH_PROXY_PASSWORD'];
  return { url, ...(username !== undefined ? { username } : {}), ...(password !== undefined ? { password } : {}) };
}
