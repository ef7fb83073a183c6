/**
 * Vault locations: a folder, or an Azure Blob Storage container URL. Kept apart from the Azure store so that
 * telling them apart does not load the HTTP client.
 *
 * - `https://ACCOUNT.blob.core.windows.net/CONTAINER[/PREFIX]` (virtual-host style, the service);
 * - `http(s)://HOST:PORT/ACCOUNT/CONTAINER[/PREFIX]` (path style: Azurite, or any host that is not `ACCOUNT.blob.…`).
 *
 * @module
 */
import { VaultpathError } from '../errors.js';

/** Where a vault lives in Azure Blob Storage. */
export interface AzureLocation {
  /** The container's URL, without query or credentials. */
  readonly containerUrl: URL;
  readonly account: string;
  readonly container: string;
  /** Blob name prefix, empty or ending in `/`. */
  readonly prefix: string;
}

/** The scheme of `location` (`https`, `file`), lower case, or undefined for a plain path. */
export function locationScheme(location: string): string | undefined {
  return /^([a-z][a-z0-9+.-]*):\/\//i.exec(location)?.[1]?.toLowerCase();
}

/** True when `location` names a remote (http or https) vault rather than a folder. */
export function isRemoteLocation(location: string): boolean {
  const scheme = locationScheme(location);
  return scheme === 'http' || scheme === 'https';
}

/** Parses a vault location URL; throws `VP_NOT_A_VAULT` with the expected forms when it is not one. */
export function parseAzureLocation(location: string): AzureLocation {
  const bad = (why: string): VaultpathError =>
    new VaultpathError(
      'VP_NOT_A_VAULT',
      `"${redact(location)}" is not an Azure vault location (${why}); use https://ACCOUNT.blob.core.windows.net/CONTAINER[/PREFIX] or http://HOST:PORT/ACCOUNT/CONTAINER[/PREFIX].`,
    );
  let url: URL;
  try {
    url = new URL(location);
  } catch {
    throw bad('not a URL');
  }
  const segments = url.pathname.split('/').filter((s) => s.length > 0).map(decodeURIComponent);
  const hostStyle = /^([a-z0-9]{3,24})\.blob\./i.exec(url.hostname);
  const account = hostStyle ? hostStyle[1]! : segments.shift();
  const container = segments.shift();
  if (!account) throw bad('no storage account');
  if (!container || !/^[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62}$/.test(container)) {
    throw bad('a container name is 3 to 63 lower-case letters, digits and single hyphens');
  }
  const base = hostStyle ? `/${container}` : `/${encodeURIComponent(account)}/${container}`;
  const containerUrl = new URL(`${url.protocol}//${url.host}${base}`);
  return { containerUrl, account, container, prefix: segments.length > 0 ? `${segments.join('/')}/` : '' };
}

/** `location` without query string or user info, safe to print. */
export function redact(location: string): string {
  try {
    const u = new URL(location);
    return `${u.protocol}//${u.host}${u.pathname}`.replace(/\/$/, '');
  } catch {
    return location.replace(/[?#].*$/, '');
  }
}
