/**
 * Azure Blob Storage credentials: Shared Key request signing, service SAS tokens, and reading credentials from the
 * usual environment variables or a connection string.
 *
 * Contracts:
 * - {@link signRequest} returns the `Authorization` header for a request under the Shared Key scheme (service
 *   version ≥ 2015-02-21): twelve standard header slots, the `x-ms-*` headers lower-cased and sorted, then the
 *   canonical resource `/<account><encoded path as sent>` and the query parameters lower-cased, sorted and decoded.
 *   With path-style URLs (Azurite) the path already begins with the account, so it appears twice, as the service
 *   expects.
 * - {@link containerSas} makes a container-scoped service SAS (`sr=c`) in the 16-field layout of versions
 *   ≥ 2020-12-06, permissions in canonical order.
 * - Keys and tokens are never put into messages: errors name the variable or the field, not its value.
 *
 * @module
 */
import { createHmac } from 'node:crypto';
import { VaultpathError } from '../errors.js';

/** The service version every request pins (the newest one Azurite 3.35 accepts). */
export const AZURE_API_VERSION = '2025-11-05';

/** Account name and key (the key base64, as the portal shows it). */
export interface SharedKeyCredential {
  readonly accountName: string;
  readonly accountKey: string;
}

/** A SAS token (the query string, with or without a leading `?`). */
export interface SasCredential {
  readonly sasToken: string;
}

export type AzureCredential = SharedKeyCredential | SasCredential;

const STANDARD_HEADERS = [
  'content-encoding',
  'content-language',
  'content-length',
  'content-md5',
  'content-type',
  'date',
  'if-modified-since',
  'if-match',
  'if-none-match',
  'if-unmodified-since',
  'range',
] as const;

/**
 * The `Authorization` header value for a request signed with `credential`.
 * `headers` are the request's headers (names in any case); `url` is the URL exactly as sent.
 */
export function signRequest(credential: SharedKeyCredential, method: string, url: URL, headers: Readonly<Record<string, string>>): string {
  const lower: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) lower[k.toLowerCase()] = v;
  const slots = STANDARD_HEADERS.map((h) => {
    const v = lower[h] ?? '';
    return h === 'content-length' && v === '0' ? '' : v;
  });
  const msHeaders = Object.keys(lower)
    .filter((k) => k.startsWith('x-ms-'))
    .sort()
    .map((k) => `${k}:${lower[k]!.trim()}\n`)
    .join('');
  const params = new Map<string, string[]>();
  for (const [k, v] of url.searchParams) {
    const key = k.toLowerCase();
    params.set(key, [...(params.get(key) ?? []), v]);
  }
  const query = [...params.keys()]
    .sort()
    .map((k) => `\n${k}:${params.get(k)!.join(',')}`)
    .join('');
  const resource = `/${credential.accountName}${url.pathname}${query}`;
  const toSign = `${method.toUpperCase()}\n${slots.join('\n')}\n${msHeaders}${resource}`;
  return `SharedKey ${credential.accountName}:${hmac(credential, toSign)}`;
}

function hmac(credential: SharedKeyCredential, text: string): string {
  let key: Buffer;
  try {
    key = Buffer.from(credential.accountKey, 'base64');
  } catch {
    key = Buffer.alloc(0);
  }
  if (key.length === 0) throw new VaultpathError('VP_STORE_AUTH', `The account key for storage account "${credential.accountName}" is not valid base64; copy it again from the portal.`);
  return createHmac('sha256', key).update(text, 'utf8').digest('base64');
}

export interface ContainerSasOptions {
  readonly container: string;
  /** Any of `racwdl`, written in canonical order. @default 'racwdl' */
  readonly permissions?: string;
  /** When the token stops working. */
  readonly expiresOn: Date;
  /** When it starts working. @default no start time */
  readonly startsOn?: Date;
  /** @default AZURE_API_VERSION */
  readonly version?: string;
}

/** A container-scoped service SAS token (without a leading `?`). */
export function containerSas(credential: SharedKeyCredential, options: ContainerSasOptions): string {
  const order = 'racwdxyltfmeopi';
  const wanted = options.permissions ?? 'racwdl';
  const sp = [...order].filter((c) => wanted.includes(c)).join('');
  const se = isoSeconds(options.expiresOn);
  const st = options.startsOn ? isoSeconds(options.startsOn) : '';
  const sv = options.version ?? AZURE_API_VERSION;
  const resource = `/blob/${credential.accountName}/${options.container}`;
  const toSign = [sp, st, se, resource, '', '', '', sv, 'c', '', '', '', '', '', '', ''].join('\n');
  const q = new URLSearchParams({ sv, sr: 'c', sp, se, ...(st ? { st } : {}), sig: hmac(credential, toSign) });
  return q.toString();
}

function isoSeconds(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** The expiry (`se`) of a SAS token, or undefined when it has none or it cannot be read. */
export function sasExpiry(sasToken: string): Date | undefined {
  const se = new URLSearchParams(sasToken.replace(/^\?/, '')).get('se');
  if (!se) return undefined;
  const t = Date.parse(se);
  return Number.isNaN(t) ? undefined : new Date(t);
}

/** Parses `DefaultEndpointsProtocol=…;AccountName=…;AccountKey=…[;BlobEndpoint=…][;SharedAccessSignature=…]`. */
export function parseConnectionString(text: string): { credential: AzureCredential; blobEndpoint?: string } {
  const fields = new Map<string, string>();
  for (const part of text.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0) fields.set(part.slice(0, eq).trim().toLowerCase(), part.slice(eq + 1).trim());
  }
  const blobEndpoint = fields.get('blobendpoint');
  const sas = fields.get('sharedaccesssignature');
  const name = fields.get('accountname');
  const key = fields.get('accountkey');
  const credential: AzureCredential | undefined = sas ? { sasToken: sas } : name && key ? { accountName: name, accountKey: key } : undefined;
  if (!credential) {
    throw new VaultpathError('VP_STORE_AUTH', 'The storage connection string has neither AccountName with AccountKey nor SharedAccessSignature; copy it again from the portal.');
  }
  return { credential, ...(blobEndpoint ? { blobEndpoint } : {}) };
}

/**
 * Credentials for `accountName` from the environment: `AZURE_STORAGE_CONNECTION_STRING`, then
 * `AZURE_STORAGE_SAS_TOKEN`, then `AZURE_STORAGE_KEY` (with `AZURE_STORAGE_ACCOUNT`, which must match the location's
 * account when set). Undefined when none is set.
 */
export function credentialFromEnv(accountName: string, env: NodeJS.ProcessEnv = process.env): AzureCredential | undefined {
  const conn = env.AZURE_STORAGE_CONNECTION_STRING;
  if (conn) return parseConnectionString(conn).credential;
  if (env.AZURE_STORAGE_SAS_TOKEN) return { sasToken: env.AZURE_STORAGE_SAS_TOKEN };
  if (env.AZURE_STORAGE_KEY) {
    const account = env.AZURE_STORAGE_ACCOUNT ?? accountName;
    if (account !== accountName) {
      throw new VaultpathError(
        'VP_STORE_AUTH',
        `AZURE_STORAGE_ACCOUNT is "${account}" but the vault location is in storage account "${accountName}"; set the key of "${accountName}".`,
      );
    }
    return { accountName, accountKey: env.AZURE_STORAGE_KEY };
  }
  return undefined;
}

export function isSharedKey(c: AzureCredential): c is SharedKeyCredential {
  return 'accountKey' in c;
}
