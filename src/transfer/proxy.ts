/**
 * The HTTP proxy for remote stores: from explicit settings (the agent's "authenticated proxy" setting) or from the
 * usual environment (`HTTPS_PROXY`, `HTTP_PROXY`, `NO_PROXY`, in either case), as an undici `ProxyAgent`.
 *
 * Contracts:
 * - User name and password go in a `Proxy-Authorization: Basic` token, never in the proxy URI given to undici, and
 *   never in a message; {@link describeProxy} prints the proxy without them.
 * - https targets are tunnelled with CONNECT; http targets are sent to the proxy in absolute form.
 * - `NO_PROXY` entries are host names, domain suffixes (`.example.com` or `example.com`), `host:port`, or `*`.
 * - A proxy that refuses the credentials (407) is reported by the stores as `VP_PROXY_AUTH`, never retried
 *   ({@link isProxyAuthFailure} recognises undici's two forms of it).
 *
 * @module
 */
import { createRequire } from 'node:module';
import type { ProxyAgent } from 'undici';
import { VaultpathError, causeChain } from '../errors.js';

export interface ProxySettings {
  /** `http://host:port` (user name and password may also be given in it, percent-encoded). */
  readonly url: string;
  readonly username?: string;
  readonly password?: string;
}

/** The proxy for `target`: `settings` when given (`false`: none), else the environment's. */
export function proxyFor(target: URL, settings: ProxySettings | false | undefined, env: NodeJS.ProcessEnv = process.env): ProxySettings | undefined {
  if (settings === false) return undefined;
  if (settings) return settings;
  const pick = (name: string): string | undefined => env[name] ?? env[name.toLowerCase()];
  const url = target.protocol === 'https:' ? (pick('HTTPS_PROXY') ?? pick('ALL_PROXY')) : (pick('HTTP_PROXY') ?? pick('ALL_PROXY'));
  if (!url || bypasses(target, pick('NO_PROXY') ?? '')) return undefined;
  return { url };
}

function bypasses(target: URL, noProxy: string): boolean {
  const host = target.hostname.toLowerCase();
  const port = target.port || (target.protocol === 'https:' ? '443' : '80');
  for (const raw of noProxy.split(/[\s,]+/)) {
    const entry = raw.trim().toLowerCase();
    if (!entry) continue;
    if (entry === '*') return true;
    const [h, p] = entry.startsWith('[') ? [entry.slice(0, entry.indexOf(']') + 1), entry.split(']:')[1]] : (entry.split(':') as [string, string?]);
    if (p && p !== port) continue;
    const bare = h!.replace(/^\*?\./, '');
    if (host === bare || host.endsWith(`.${bare}`)) return true;
  }
  return false;
}

/** The proxy as `http://host:port`, with no credentials, for messages. */
export function describeProxy(settings: ProxySettings): string {
  try {
    const u = new URL(settings.url);
    return `${u.protocol}//${u.host}`;
  } catch {
    return '(an unreadable proxy address)';
  }
}

let loadedUndici: typeof import('undici') | undefined;

/**
 * undici, loaded when the first HTTP store or proxy is made: importing the package (or running a command on a local
 * vault) does not pay for an HTTP client it never uses (about 90 ms of start-up here).
 */
export function undici(): typeof import('undici') {
  return (loadedUndici ??= createRequire(import.meta.url)('undici') as typeof import('undici'));
}

/** An undici dispatcher that sends requests to `target` through the proxy. */
export function proxyAgent(settings: ProxySettings, target: URL, timeouts: { headersTimeout: number; bodyTimeout: number }): ProxyAgent {
  let uri: URL;
  try {
    uri = new URL(settings.url);
  } catch (e) {
    throw new VaultpathError('VP_STORE_IO', `The proxy address ${JSON.stringify(describeProxy(settings))} is not a URL such as http://proxy.example.com:8080.`, { cause: e });
  }
  const username = settings.username ?? decodeURIComponent(uri.username);
  const password = settings.password ?? decodeURIComponent(uri.password);
  uri.username = '';
  uri.password = '';
  return new (undici().ProxyAgent)({
    uri: uri.toString(),
    ...(username || password ? { token: `Basic ${Buffer.from(`${username}:${password}`, 'utf8').toString('base64')}` } : {}),
    proxyTunnel: target.protocol === 'https:',
    ...timeouts,
  });
}

/** True when `e` is undici's report of a proxy answering 407 (tunnel or forward mode). */
export function isProxyAuthFailure(e: unknown): boolean {
  for (const c of causeChain(e)) if (typeof c.message === 'string' && /\b407\b/.test(c.message)) return true;
  return false;
}
