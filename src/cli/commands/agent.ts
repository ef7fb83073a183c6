/**
 * The agent set-up commands:
 * - `credentials issue --vault LOCATION [--out FILE] [--validity 48h] [--access-validity 365d]`: the owner's side;
 * - `register --credentials FILE [--machine-name NAME] [--generate-passphrase] [settings flags]`: the machine's;
 * - `settings show [--json]` and `settings set [settings flags]`: "Change Properties", without registering again.
 * Settings flags: `--proxy URL|none --proxy-user USER` (password from VAULTPATH_PROXY_PASSWORD), `--bwlimit RATE|none`
 * or the work-hours flags, `--scratch DIR`, `--recovery-folder DIR`.
 */
import { resolve } from 'node:path';
import { generatePassphrase } from '../../crypto/passphrase.js';
import { credentialsFileName, writeCredentialsFile } from '../../agent/credentials.js';
import { issueCredentials, register } from '../../agent/register.js';
import { type AgentSettings, type ThrottleSettings, agentHome, loadAgent, publicView, saveAgent, sealSecret } from '../../agent/settings.js';
import { systemClock } from '../../throttle/clock.js';
import { parseDuration } from '../../units.js';
import { type CommandContext, UsageError, text } from '../context.js';
import { readNewPassphrase } from '../secrets.js';
import { throttleFrom } from '../throttle.js';
import { THROTTLE_SETTING_FLAGS, proxyFrom } from '../agent-defaults.js';
import { kdfFrom } from './vault.js';

function duration(ctx: CommandContext, flag: string): number | undefined {
  const v = text(ctx, flag);
  if (v === undefined) return undefined;
  try {
    return parseDuration(v);
  } catch (e) {
    throw new UsageError(`--${flag}: ${(e as Error).message}`);
  }
}

export async function credentialsCommand(ctx: CommandContext): Promise<number> {
  const [sub] = ctx.positionals;
  if (sub !== 'issue') throw new UsageError(`unknown subcommand "credentials ${sub ?? ''}"; use "credentials issue --vault LOCATION"`);
  const location = text(ctx, 'vault');
  if (!location) throw new UsageError('credentials issue needs --vault DIR|URL');
  const validityMs = duration(ctx, 'validity');
  const accessValidityMs = duration(ctx, 'access-validity');
  const proxy = proxyFrom(ctx);
  const file = await issueCredentials(location, {
    signal: ctx.signal,
    ...(validityMs !== undefined ? { validityMs } : {}),
    ...(accessValidityMs !== undefined ? { accessValidityMs } : {}),
    ...(text(ctx, 'name') ? { name: text(ctx, 'name')! } : {}),
    ...(proxy ? { store: { stores: { azure: { proxy } } } } : {}),
  });
  const out = resolve(text(ctx, 'out') ?? credentialsFileName(file.vaultName, systemClock.now()));
  await writeCredentialsFile(out, file);
  if (ctx.json) ctx.out(JSON.stringify({ file: out, vaultName: file.vaultName, vaultId: file.vaultId, generation: file.generation, expiresAt: file.expiresAt }));
  else {
    ctx.out(`Wrote vault credentials ${out} (vault ${file.vaultName}, generation ${file.generation}).`);
    ctx.out(`Register a machine with it before ${file.expiresAt}; every earlier credentials file of this vault no longer works.`);
  }
  return 0;
}

/** The settings given by flags, merged over `base`; `none` clears the proxy or the throttle. */
async function settingsFrom(ctx: CommandContext, home: string, base: AgentSettings): Promise<AgentSettings> {
  let next: AgentSettings = { ...base };
  const proxyUrl = text(ctx, 'proxy');
  if (proxyUrl === 'none') {
    const { proxy: _removed, ...rest } = next;
    next = rest;
  } else if (proxyUrl !== undefined) {
    try {
      new URL(proxyUrl);
    } catch {
      throw new UsageError(`--proxy: "${proxyUrl}" is not a URL such as http://proxy.example.com:3128`);
    }
    const username = text(ctx, 'proxy-user');
    const password = process.env['VAULTPATH_PROXY_PASSWORD'];
    next = { ...next, proxy: { url: proxyUrl, ...(username ? { username } : {}), ...(password ? { password: await sealSecret(home, password) } : {}) } };
  }
  if (text(ctx, 'bwlimit') === 'none') {
    const { throttle: _removed, ...rest } = next;
    next = rest;
  } else if (throttleFrom(ctx)) {
    // throttleFrom has validated the flags (units, hours, the agent's range); the settings keep them as written.
    const t: ThrottleSettings = Object.fromEntries(THROTTLE_SETTING_FLAGS.flatMap(([key, flag]) => (text(ctx, flag) !== undefined ? [[key, text(ctx, flag)!]] : [])));
    next = { ...next, throttle: t };
  }
  const scratch = text(ctx, 'scratch');
  if (scratch !== undefined) next = { ...next, scratchDir: resolve(scratch) };
  const recovery = text(ctx, 'recovery-folder');
  if (recovery !== undefined) next = { ...next, recoveryFolder: resolve(recovery) };
  return next;
}

export async function registerCommand(ctx: CommandContext): Promise<number> {
  const credentialsPath = text(ctx, 'credentials');
  if (!credentialsPath) throw new UsageError('register needs --credentials FILE (the vault credentials file from the vault\u2019s owner)');
  const home = agentHome();
  const settings = await settingsFrom(ctx, home, {});
  const generated = ctx.options['generate-passphrase'] === true;
  const passphrase = generated
    ? generatePassphrase()
    : await readNewPassphrase(ctx, { purpose: 'Passphrase for this machine\u2019s backups (at least 16 characters)', env: 'VAULTPATH_PASSPHRASE', fromFile: true });
  const proxy = proxyFrom(ctx);
  const result = await register({
    credentialsPath,
    passphrase,
    home,
    settings,
    signal: ctx.signal,
    ...(text(ctx, 'machine-name') ? { machineName: text(ctx, 'machine-name')! } : {}),
    ...(proxy ? { proxy } : {}),
    kdf: kdfFrom(ctx),
  });
  if (ctx.json) ctx.out(JSON.stringify({ ...result, ...(generated ? { passphrase } : {}) }));
  else {
    ctx.out(`Registered machine ${result.machineName} with vault ${result.vaultName}${result.again ? ' (again)' : ''}.`);
    if (generated) ctx.out(`Passphrase: ${passphrase}`);
  }
  if (generated) {
    ctx.err('Write the passphrase down and keep it somewhere other than this machine: it is shown only this once, and a lost passphrase means the backups cannot be restored.');
  }
  return 0;
}

export async function settingsCommand(ctx: CommandContext): Promise<number> {
  const [sub] = ctx.positionals;
  const home = agentHome();
  const agent = await loadAgent(home);
  if (sub === 'set') {
    if (!agent.registration) throw new UsageError('this machine is not registered: run vaultpath register --credentials FILE first');
    const settings = await settingsFrom(ctx, home, agent.settings);
    await saveAgent(home, { ...agent, settings });
    const view = publicView({ ...agent, settings }) as { settings: unknown };
    ctx.out(ctx.json ? JSON.stringify(view.settings) : 'Settings changed; backups and restores use them from now on.');
    return 0;
  }
  if (sub !== 'show') throw new UsageError(`unknown subcommand "settings ${sub ?? ''}"; use "settings show" or "settings set"`);
  const view = publicView(agent);
  if (ctx.json) ctx.out(JSON.stringify(view));
  else ctx.out(JSON.stringify(view, null, 2));
  return 0;
}
