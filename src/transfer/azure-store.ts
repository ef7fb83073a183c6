/**
 * The Azure Blob Storage store: a vault in a container (optionally under a prefix), over undici.
 *
 * Locations:
 * - `https://ACCOUNT.blob.core.windows.net/CONTAINER[/PREFIX]` (virtual-host style, the service);
 * - `http(s)://HOST:PORT/ACCOUNT/CONTAINER[/PREFIX]` (path style: Azurite, or any host that is not `ACCOUNT.blob.…`).
 *
 * Writes:
 * - An object of at most `singlePutLimit` bytes (64 MiB by default; never less than `blockSize`) is one Put Blob:
 *   one transaction, where blocks cost one per block plus the commit (Azure bills per transaction; a 16 MiB pack
 *   in 4 MiB blocks is five). A larger one is Put Block × n (up to `blockConcurrency` at once, ids of one length,
 *   tagged per upload so two writers of one name never mix blocks) and one Put Block List. Every block and
 *   single-shot blob carries its Content-MD5, which the service checks (and, for a single Put Blob, records as the
 *   object's MD5); the commit records the whole object's MD5 (`x-ms-blob-content-md5`).
 * - The limit weighs transactions against what a failure costs: a failed Put Blob is sent again whole (the body is
 *   replayable, from the scratch cache), a failed block only itself. 64 MiB holds every pack the backup writes
 *   (16 MiB target plus one chunk) in one request, while a resend stays short on a slow link and the body held in
 *   memory stays small.
 * - A single Put Blob's body goes to the socket in 64 KiB slices, so the request's stall timer restarts as the
 *   socket drains: a large body on a slow link is not taken for a stall.
 * - Create-only writes send `If-None-Match: *`. When a retried create-only write (`attempt > 1`) is answered 409 or
 *   412, the object there is read back and compared (size and MD5): if it is ours, the earlier attempt had
 *   succeeded and its answer was lost, so the write succeeds; otherwise it is `VP_ALREADY_EXISTS`.
 * - The service's limits are enforced here, before any request, since Azurite does not: a block is at most
 *   4000 MiB, a single Put Blob at most 5000 MiB, an object at most 50,000 blocks (`VP_STORE_LIMIT`).
 * - Memory: a single Put Blob holds its whole body (at most `singlePutLimit` bytes); a block write holds at most
 *   `blockConcurrency` blocks.
 *
 * Errors: 403 → `VP_STORE_AUTH` (or `VP_CREDENTIALS_EXPIRED` for a SAS past its expiry), 404 ContainerNotFound →
 * `VP_CONTAINER_NOT_FOUND`, 404 BlobNotFound → `VP_NOT_FOUND` (`stat` says undefined, `delete` succeeds), a proxy's
 * 407 → `VP_PROXY_AUTH`, anything else → `VP_STORE_IO` carrying the HTTP `status` and `Retry-After`, which the retry
 * decorator reads. A Content-MD5 mismatch is marked retryable: the bytes were damaged on the way. So is a failure
 * with no answer whose network code the retry policy lists (undici surfaces a refused connection as ECONNREFUSED, a
 * reset as ECONNRESET, a connection closed mid-answer as UND_ERR_SOCKET, possibly inside an AggregateError when a
 * name has several addresses). Messages name the
 * operation, the object and the location, never a key or a SAS signature.
 *
 * Throttling: bodies are buffered (per block, or whole for one Put Blob), so the store declares `pacesWire` and pays
 * the throttle's `pace` for each 64 KiB as it goes on the wire (uploads) or arrives (downloads).
 *
 * Stalls: undici's headers and body timeouts (`timeoutMs`) end a request that goes quiet, as a retryable error.
 *
 * @module
 */
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Dispatcher } from 'undici';
import { VaultpathError, causeChain, throwIfAborted } from '../errors.js';
import { type Clock, systemClock } from '../throttle/clock.js';
import { DEFAULT_RETRY_POLICY } from './retry.js';
import { AZURE_API_VERSION, type AzureCredential, credentialFromEnv, isSharedKey, sasExpiry, signRequest } from './azure-auth.js';
import { type ProxySettings, describeProxy, isProxyAuthFailure, proxyAgent, proxyFor, undici } from './proxy.js';
import { type AzureLocation, parseAzureLocation } from './location.js';

export { type AzureLocation, isRemoteLocation, parseAzureLocation, redact } from './location.js';
import { type Body, type CallOptions, type GetOptions, type PutOptions, type Store, type StoreObjectInfo, bodySize, bodyStream, checkName, markProgress } from './store.js';

const MiB = 1024 * 1024;
/** Service limits (version ≥ 2019-12-12). */
export const AZURE_LIMITS = Object.freeze({ maxBlockSize: 4000 * MiB, maxPutBlobSize: 5000 * MiB, maxBlocks: 50_000, maxBlockIdBytes: 64 });
/** Objects up to this size go up as one Put Blob unless `singlePutLimit` says otherwise (see the module header). */
export const DEFAULT_SINGLE_PUT_LIMIT = 64 * MiB;

export interface AzureStoreOptions {
  /** Shared Key or SAS; @default from the environment (see credentialFromEnv) */
  readonly credential?: AzureCredential;
  /** The proxy: settings, `false` for none. @default from HTTPS_PROXY / HTTP_PROXY / NO_PROXY */
  readonly proxy?: ProxySettings | false;
  /** Create the container if it does not exist. @default false */
  readonly create?: boolean;
  /** Objects sent in blocks (larger than the single-put limit) are cut in blocks of this size. @default 4 MiB */
  readonly blockSize?: number;
  /**
   * Objects of at most this many bytes (or `blockSize`, if larger) go up as one Put Blob; 0 sends in blocks every
   * object larger than one block. At most 5000 MiB (`AZURE_LIMITS.maxPutBlobSize`). @default 64 MiB
   */
  readonly singlePutLimit?: number;
  /** Blocks of one object in flight at once. @default 4 */
  readonly blockConcurrency?: number;
  /** Names per listing page (the service's maximum is 5000). @default 5000 */
  readonly listPageSize?: number;
  /** A request that sends or receives nothing for this long fails (retryably). @default 60 s */
  readonly timeoutMs?: number;
  /** Tells SAS expiry. @default systemClock */
  readonly clock?: Clock;
  /** @default process.env */
  readonly env?: NodeJS.ProcessEnv;
  readonly signal?: AbortSignal;
}

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Dispatcher.ResponseData['body'];
}

export class AzureStore implements Store {
  readonly location: string;
  /** Block bodies are buffered (for their Content-MD5), so the throttle pays at the wire through `pace`. */
  readonly pacesWire = true;
  readonly #where: AzureLocation;
  readonly #credential: AzureCredential;
  readonly #dispatcher: Dispatcher;
  readonly #blockSize: number;
  readonly #blockConcurrency: number;
  /** Objects of at most this many bytes are one Put Blob: max(singlePutLimit, blockSize). */
  readonly #singlePutMax: number;
  readonly #clock: Clock;
  readonly #proxy: ProxySettings | undefined;
  readonly #pageSize: number;
  /** Block uploads that may be retried: per object name, the block id tag and the blocks acknowledged. */
  readonly #uploads = new Map<string, { tag: string; done: Map<number, string> }>();

  private constructor(where: AzureLocation, credential: AzureCredential, options: AzureStoreOptions) {
    this.#where = where;
    this.location = `${where.containerUrl.toString()}${where.prefix ? `/${where.prefix.slice(0, -1)}` : ''}`;
    this.#credential = credential;
    this.#blockSize = options.blockSize ?? 4 * MiB;
    this.#blockConcurrency = options.blockConcurrency ?? 4;
    this.#clock = options.clock ?? systemClock;
    this.#pageSize = Math.min(5000, Math.max(1, options.listPageSize ?? 5000));
    if (!Number.isInteger(this.#blockSize) || this.#blockSize < 1 || this.#blockSize > AZURE_LIMITS.maxBlockSize) {
      throw new RangeError(`blockSize must be a whole number of bytes from 1 to ${AZURE_LIMITS.maxBlockSize} (4000 MiB)`);
    }
    if (!Number.isInteger(this.#blockConcurrency) || this.#blockConcurrency < 1) throw new RangeError('blockConcurrency must be at least 1');
    const singlePutLimit = options.singlePutLimit ?? DEFAULT_SINGLE_PUT_LIMIT;
    if (!Number.isInteger(singlePutLimit) || singlePutLimit < 0 || singlePutLimit > AZURE_LIMITS.maxPutBlobSize) {
      throw new RangeError(`singlePutLimit must be a whole number of bytes from 0 to ${AZURE_LIMITS.maxPutBlobSize} (5000 MiB)`);
    }
    // An object that fits one block gains nothing from blocks: the same bytes are resent on failure, plus a commit.
    this.#singlePutMax = Math.min(AZURE_LIMITS.maxPutBlobSize, Math.max(singlePutLimit, this.#blockSize));
    const timeoutMs = options.timeoutMs ?? 60_000;
    const timeouts = { headersTimeout: timeoutMs, bodyTimeout: timeoutMs };
    this.#proxy = proxyFor(where.containerUrl, options.proxy, options.env ?? process.env);
    this.#dispatcher = this.#proxy
      ? proxyAgent(this.#proxy, where.containerUrl, timeouts)
      : new (undici().Agent)({ ...timeouts, keepAliveTimeout: 4_000, connections: 16 });
  }

  /**
   * Opens the vault location `location`, checking that the container exists and the credentials work (or creating
   * the container, with `create`).
   * @throws {VaultpathError} `VP_STORE_AUTH` without usable credentials; `VP_CONTAINER_NOT_FOUND`; `VP_PROXY_AUTH`.
   */
  static async open(location: string, options: AzureStoreOptions = {}): Promise<AzureStore> {
    const where = parseAzureLocation(location);
    const credential = options.credential ?? credentialFromEnv(where.account, options.env ?? process.env);
    if (!credential) {
      throw new VaultpathError(
        'VP_STORE_AUTH',
        `No credentials for storage account "${where.account}": set AZURE_STORAGE_KEY, AZURE_STORAGE_SAS_TOKEN or AZURE_STORAGE_CONNECTION_STRING.`,
      );
    }
    const store = new AzureStore(where, credential, options);
    const probe = async (): Promise<void> => {
      const a = await store.#call('GET', store.#url('', { restype: 'container', comp: 'list', maxresults: '1' }), { signal: options.signal, what: 'open the vault' }, [200]);
      await a.body.dump();
    };
    try {
      try {
        await probe();
      } catch (e) {
        // Only a missing container is created (a container SAS may not create one, and need not).
        if (!options.create || (e as VaultpathError).code !== 'VP_CONTAINER_NOT_FOUND') throw e;
        const a = await store.#call('PUT', store.#url('', { restype: 'container' }), { signal: options.signal, what: 'create the container' }, [201, 409]);
        await a.body.dump();
        await probe();
      }
    } catch (e) {
      await store.close();
      throw e;
    }
    return store;
  }

  /** Closes the connections. */
  async close(): Promise<void> {
    await this.#dispatcher.close();
  }

  async put(name: string, body: Body, options: PutOptions = {}): Promise<void> {
    checkName(name);
    throwIfAborted(options.signal);
    const size = bodySize(body);
    const single = size <= this.#singlePutMax;
    const blocks = Math.max(1, Math.ceil(size / this.#blockSize));
    if (!single && blocks > AZURE_LIMITS.maxBlocks) {
      throw new VaultpathError(
        'VP_STORE_LIMIT',
        `${name} is ${size} bytes: ${blocks} blocks of ${this.#blockSize} bytes, more than the ${AZURE_LIMITS.maxBlocks} an Azure blob may have; use a larger blockSize.`,
      );
    }
    const whole = createHash('md5');
    const conditions: Record<string, string> = options.ifNotExists ? { 'if-none-match': '*' } : {};
    let status: number;
    if (single) {
      const bytes = await collect(body, size, name);
      const md5 = createHash('md5').update(bytes).digest('base64');
      whole.update(bytes);
      const a = await this.#call(
        'PUT',
        this.#url(name),
        { signal: options.signal, what: `write ${name}`, headers: { 'x-ms-blob-type': 'BlockBlob', 'content-md5': md5, ...conditions }, body: bytes, pace: options.pace, sliced: true },
        [201, 409, 412],
      );
      status = a.status;
      await a.body.dump();
    } else {
      const ids = await this.#putBlocks(name, body, size, whole, options.attempt ?? 1, options.signal, options.pace);
      const xml = `<?xml version="1.0" encoding="utf-8"?><BlockList>${ids.map((id) => `<Latest>${id}</Latest>`).join('')}</BlockList>`;
      const a = await this.#call(
        'PUT',
        this.#url(name, { comp: 'blocklist' }),
        {
          signal: options.signal,
          what: `commit ${name}`,
          headers: { 'content-type': 'application/xml', 'x-ms-blob-content-md5': whole.copy().digest('base64'), ...conditions },
          body: Buffer.from(xml, 'utf8'),
        },
        [201, 409, 412],
      );
      status = a.status;
      await a.body.dump();
      this.#uploads.delete(name);
    }
    if (status === 201) return;
    // 409/412: the object exists. On a retry it may be our own earlier write, whose answer was lost.
    if ((options.attempt ?? 1) > 1) {
      const there = await this.#head(name, options.signal);
      if (there && there.size === size && there.md5 === whole.digest('base64')) return;
    }
    throw new VaultpathError('VP_ALREADY_EXISTS', `${name} already exists in ${this.location}; it was not replaced.`, { status });
  }

  /**
   * Uploads `body` as blocks; returns their ids in order. On a retry of the same write (`attempt > 1`), blocks the
   * service already acknowledged with the same content (index and MD5) are not sent again: uncommitted blocks stay
   * with the blob until committed (or for 7 days).
   */
  async #putBlocks(
    name: string,
    body: Body,
    size: number,
    whole: ReturnType<typeof createHash>,
    attempt: number,
    signal: AbortSignal | undefined,
    pace: CallOptions['pace'],
  ): Promise<string[]> {
    let upload = this.#uploads.get(name);
    if (attempt <= 1 || !upload) {
      upload = { tag: randomBytes(6).toString('hex'), done: new Map() };
      this.#uploads.delete(name);
      this.#uploads.set(name, upload);
      // Remembered for retries only; the oldest are forgotten first, so this stays small.
      while (this.#uploads.size > 64) this.#uploads.delete(this.#uploads.keys().next().value!);
    }
    const { tag, done } = upload;
    const ids: string[] = [];
    const inner = new AbortController();
    const onAbort = (): void => inner.abort(signal?.reason);
    signal?.addEventListener('abort', onAbort, { once: true });
    const inFlight = new Set<Promise<void>>();
    let failure: unknown;
    let acknowledged = 0;
    try {
      let sent = 0;
      for await (const block of blocksOf(bodyStream(body), this.#blockSize)) {
        if (failure !== undefined) break;
        sent += block.length;
        if (sent > size) break;
        whole.update(block);
        const id = Buffer.from(`${tag}-${String(ids.length).padStart(6, '0')}`).toString('base64');
        const index = ids.length;
        ids.push(id);
        const md5 = createHash('md5').update(block).digest('base64');
        if (done.get(index) === md5) continue;
        const p = this.#call('PUT', this.#url(name, { comp: 'block', blockid: id }), { signal: inner.signal, what: `write block ${index + 1} of ${name}`, headers: { 'content-md5': md5 }, body: block, pace }, [201])
          .then(async (a) => {
            await a.body.dump();
            done.set(index, md5);
            acknowledged++;
          })
          .catch((e: unknown) => {
            // Blocks already in flight are let finish: what they get acknowledged, a retry need not send again.
            failure ??= e;
          })
          .finally(() => inFlight.delete(p));
        inFlight.add(p);
        if (inFlight.size >= this.#blockConcurrency) await Promise.race(inFlight);
      }
      if (failure === undefined && sent !== size) {
        throw new VaultpathError('VP_STORE_IO', `The body of ${name} was ${sent} bytes, not the ${size} announced; nothing was stored.`);
      }
    } catch (e) {
      failure ??= e;
      inner.abort(e);
    } finally {
      await Promise.all(inFlight);
      signal?.removeEventListener('abort', onAbort);
    }
    throwIfAborted(signal);
    if (failure !== undefined) throw acknowledged > 0 ? markProgress(failure) : failure;
    return ids;
  }

  async get(name: string, options: GetOptions = {}): Promise<Buffer> {
    checkName(name);
    const offset = options.offset ?? 0;
    if (options.length === 0) {
      if (!(await this.#head(name, options.signal))) throw this.#notFound(name);
      return Buffer.alloc(0);
    }
    const ranged = offset > 0 || options.length !== undefined;
    const range: Record<string, string> = ranged ? { 'x-ms-range': `bytes=${offset}-${options.length !== undefined ? offset + options.length - 1 : ''}` } : {};
    const a = await this.#call('GET', this.#url(name), { signal: options.signal, what: `read ${name}`, headers: range }, [200, 206, 416]);
    if (a.status === 416) {
      await a.body.dump();
      return Buffer.alloc(0); // the range starts at or past the end: nothing of it exists
    }
    try {
      const parts: Buffer[] = [];
      for await (const piece of a.body as AsyncIterable<Buffer>) {
        if (options.pace) await options.pace(piece.length, options.signal);
        parts.push(piece);
      }
      return Buffer.concat(parts);
    } catch (e) {
      throw this.#failure(e, `read ${name}`, options.signal);
    }
  }

  async download(name: string, path: string, options: CallOptions = {}): Promise<number> {
    checkName(name);
    const a = await this.#call('GET', this.#url(name), { signal: options.signal, what: `read ${name}` }, [200]);
    const expected = Number(a.headers['content-length']);
    let got = 0;
    const { pace, signal } = options;
    try {
      await pipeline(
        a.body,
        async function* (source: AsyncIterable<Buffer>) {
          for await (const piece of source) {
            if (pace) await pace(piece.length, signal);
            got += piece.length;
            yield piece;
          }
        },
        createWriteStream(path),
        { signal: options.signal },
      );
    } catch (e) {
      throw this.#failure(e, `read ${name}`, options.signal);
    }
    if (Number.isFinite(expected) && got !== expected) {
      throw new VaultpathError('VP_STORE_IO', `Reading ${name} from ${this.location} ended after ${got} of ${expected} bytes.`, { retryable: true });
    }
    return got;
  }

  async stat(name: string, options: CallOptions = {}): Promise<StoreObjectInfo | undefined> {
    checkName(name);
    const there = await this.#head(name, options.signal);
    return there ? { name, size: there.size } : undefined;
  }

  async *list(prefix: string, options: CallOptions = {}): AsyncIterable<StoreObjectInfo> {
    let marker = '';
    do {
      const query: Record<string, string> = { restype: 'container', comp: 'list', prefix: this.#where.prefix + prefix, maxresults: String(this.#pageSize) };
      if (marker) query.marker = marker;
      const a = await this.#call('GET', this.#url('', query), { signal: options.signal, what: `list ${prefix || 'the vault'}` }, [200]);
      let xml: string;
      try {
        xml = await a.body.text();
      } catch (e) {
        throw this.#failure(e, `list ${prefix || 'the vault'}`, options.signal);
      }
      for (const m of xml.matchAll(/<Blob>([\s\S]*?)<\/Blob>/g)) {
        const full = xmlText(/<Name>([\s\S]*?)<\/Name>/.exec(m[1]!)?.[1] ?? '');
        const size = Number(/<Content-Length>(\d+)<\/Content-Length>/.exec(m[1]!)?.[1] ?? 'NaN');
        if (!full.startsWith(this.#where.prefix) || !Number.isFinite(size)) continue;
        yield { name: full.slice(this.#where.prefix.length), size };
      }
      marker = xmlText(/<NextMarker>([\s\S]*?)<\/NextMarker>/.exec(xml)?.[1] ?? '');
    } while (marker);
  }

  async delete(name: string, options: CallOptions = {}): Promise<void> {
    checkName(name);
    const a = await this.#call('DELETE', this.#url(name), { signal: options.signal, what: `delete ${name}` }, [202, 404]);
    await a.body.dump();
  }

  /** Size and stored MD5 of `name`, or undefined when it does not exist. */
  async #head(name: string, signal: AbortSignal | undefined): Promise<{ size: number; md5: string | undefined } | undefined> {
    const a = await this.#call('HEAD', this.#url(name), { signal, what: `look up ${name}` }, [200, 404]);
    await a.body.dump();
    if (a.status === 404) return undefined;
    const md5 = a.headers['content-md5'];
    return { size: Number(a.headers['content-length']), md5: typeof md5 === 'string' ? md5 : undefined };
  }

  #url(name: string, query: Record<string, string> = {}): URL {
    const base = this.#where.containerUrl.pathname;
    const blob = name ? `/${(this.#where.prefix + name).split('/').map(encodeURIComponent).join('/')}` : '';
    const url = new URL(`${this.#where.containerUrl.protocol}//${this.#where.containerUrl.host}${base}${blob}`);
    if (!isSharedKey(this.#credential)) {
      for (const [k, v] of new URLSearchParams(this.#credential.sasToken.replace(/^\?/, ''))) url.searchParams.append(k, v);
    }
    for (const [k, v] of Object.entries(query)) url.searchParams.set(k, v);
    return url;
  }

  /** One request; a status outside `expected` becomes the error it means. A 404 BlobNotFound is expected-or-thrown. */
  async #call(
    method: 'GET' | 'PUT' | 'HEAD' | 'DELETE',
    url: URL,
    init: { signal: AbortSignal | undefined; what: string; headers?: Record<string, string>; body?: Buffer; pace?: CallOptions['pace']; sliced?: boolean },
    expected: readonly number[],
  ): Promise<Answer> {
    throwIfAborted(init.signal);
    const headers: Record<string, string> = {
      'x-ms-version': AZURE_API_VERSION,
      'x-ms-date': new Date(this.#clock.now()).toUTCString(),
      'content-length': String(init.body?.length ?? 0),
      ...init.headers,
    };
    if (method === 'GET' || method === 'HEAD' || method === 'DELETE') delete headers['content-length'];
    if (isSharedKey(this.#credential)) headers.authorization = signRequest(this.#credential, method, url, headers);
    let a: Answer;
    try {
      // A body handed over whole is one socket write, after which undici's headers timer runs while the kernel still
      // drains it; in slices, each write that meets backpressure restarts that timer.
      const streamed = init.body !== undefined && init.body.length > 0 && (init.pace !== undefined || init.sliced === true);
      const body = streamed ? Readable.from(slices(init.body!, init.pace, init.signal), { objectMode: false }) : init.body;
      const r = await undici().request(url, { method, headers, body, dispatcher: this.#dispatcher, signal: init.signal });
      a = { status: r.statusCode, headers: r.headers, body: r.body };
    } catch (e) {
      throw this.#failure(e, init.what, init.signal);
    }
    const code = header(a.headers, 'x-ms-error-code');
    const containerMissing = a.status === 404 && code === 'ContainerNotFound';
    if (expected.includes(a.status) && !containerMissing) return a;
    let detail = '';
    try {
      detail = method === 'HEAD' ? '' : (await a.body.text()).slice(0, 2000);
    } catch {
      // the answer's body is only for the message
    }
    throw this.#statusError(a.status, code ?? xmlText(/<Code>([^<]*)<\/Code>/.exec(detail)?.[1] ?? ''), detail, a.headers, init.what);
  }

  #statusError(status: number, code: string, detail: string, headers: Answer['headers'], what: string): VaultpathError {
    const said = `answered ${status}${code ? ` ${code}` : ''}`;
    const serverMessage = xmlText(/<Message>([^<]*)<\/Message>/.exec(detail)?.[1] ?? '').split('\n')[0];
    const where = `${this.location}${serverMessage ? ` ("${serverMessage}")` : ''}`;
    if (status === 403) {
      if (!isSharedKey(this.#credential)) {
        const expiry = sasExpiry(this.#credential.sasToken);
        if (expiry && expiry.getTime() <= this.#clock.now()) {
          return new VaultpathError('VP_CREDENTIALS_EXPIRED', `The SAS token for ${this.location} expired at ${expiry.toISOString()}; get a new one and try again.`, { status });
        }
      }
      return new VaultpathError(
        'VP_STORE_AUTH',
        `Azure Blob Storage refused to ${what}: it ${said} for ${where}. Check the account key or SAS token and its permissions (read, add, create, write, delete, list).`,
        { status },
      );
    }
    if (status === 404 && code === 'ContainerNotFound') {
      return new VaultpathError('VP_CONTAINER_NOT_FOUND', `The container "${this.#where.container}" does not exist in ${this.#where.containerUrl.host}; create it, or run vaultpath init with this location.`, { status });
    }
    if (status === 404) return this.#notFound(what);
    if (status === 407) return new VaultpathError('VP_PROXY_AUTH', `The proxy ${this.#proxy ? describeProxy(this.#proxy) : ''} refused the user name or password (407); check the proxy settings.`, { status });
    if (status === 409 && (code === 'MemoryExtentStoreAtSizeLimit' || code === 'AccountStorageQuotaExceeded')) {
      return new VaultpathError('VP_STORE_FULL', `The storage behind ${this.location} is full (${code}); free space or raise the quota.`, { status });
    }
    const md5Mismatch = status === 400 && (code === 'Md5Mismatch' || /md5/i.test(detail));
    const retryAfter = Number(header(headers, 'retry-after'));
    return new VaultpathError('VP_STORE_IO', `Azure Blob Storage ${said} to "${what}" in ${where}.`, {
      status,
      retryable: md5Mismatch,
      ...(Number.isFinite(retryAfter) && retryAfter >= 0 ? { retryAfterMs: retryAfter * 1000 } : {}),
    });
  }

  #notFound(what: string): VaultpathError {
    return new VaultpathError('VP_NOT_FOUND', `Not found in ${this.location}: ${what.replace(/^(read|look up|write|delete) /, '')}.`, { status: 404 });
  }

  /** A failure with no HTTP answer: an abort, the proxy's 407, or a network error (the retry policy judges it). */
  #failure(e: unknown, what: string, signal: AbortSignal | undefined): VaultpathError {
    if (e instanceof VaultpathError) return e;
    if (signal?.aborted) return new VaultpathError('VP_ABORTED', 'The operation was aborted.', { cause: signal.reason });
    if (isProxyAuthFailure(e)) {
      return new VaultpathError('VP_PROXY_AUTH', `The proxy ${this.#proxy ? describeProxy(this.#proxy) : ''} refused the user name or password (407); check the proxy settings.`, { cause: e, status: 407 });
    }
    const code = networkCode(e);
    // A refused, reset or closed connection is said retryable here, where it is known, not left to a guess above.
    return new VaultpathError('VP_STORE_IO', `Could not ${what} in ${this.location}: ${code ? `${code}, ` : ''}${String((e as Error).message ?? e).split('\n')[0]}`, {
      cause: e,
      retryable: code !== '' && DEFAULT_RETRY_POLICY.retryErrors.includes(code),
    });
  }
}

/**
 * The network error code behind `e`: the first string code in its cause chain, or in the errors of an
 * AggregateError there (a connection tried on every address of a name fails with one error per address).
 */
function networkCode(e: unknown): string {
  for (const c of causeChain(e)) {
    if (typeof c.code === 'string' && c.code !== 'ERR_ABORTED') return c.code;
    const inner = (c as { errors?: unknown }).errors;
    if (Array.isArray(inner)) {
      for (const x of inner) if (typeof (x as { code?: unknown })?.code === 'string') return (x as { code: string }).code;
    }
  }
  return '';
}

function header(headers: Answer['headers'], name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function xmlText(s: string): string {
  return s.replace(/&(lt|gt|quot|apos|amp);/g, (_, n: string) => ({ lt: '<', gt: '>', quot: '"', apos: "'", amp: '&' })[n]!);
}

/** `bytes` in slices of 64 KiB, each paid through `pace` (when given) just before it is handed to the socket. */
async function* slices(bytes: Buffer, pace: CallOptions['pace'], signal: AbortSignal | undefined): AsyncIterable<Buffer> {
  for (let o = 0; o < bytes.length; o += 64 * 1024) {
    const piece = bytes.subarray(o, Math.min(bytes.length, o + 64 * 1024));
    if (pace) await pace(piece.length, signal);
    yield piece;
  }
}

/** The whole body in one buffer (objects sent as one Put Blob). */
async function collect(body: Body, size: number, name: string): Promise<Buffer> {
  if (body instanceof Uint8Array) return Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  const out = Buffer.allocUnsafe(size);
  let o = 0;
  for await (const piece of body.stream()) {
    if (o + piece.length > size) break;
    out.set(piece, o);
    o += piece.length;
  }
  if (o !== size) throw new VaultpathError('VP_STORE_IO', `The body of ${name} was not the ${size} bytes announced; nothing was stored.`);
  return out;
}

/** Re-cuts a stream into blocks of `size` bytes (the last one shorter), each its own buffer. */
async function* blocksOf(source: AsyncIterable<Uint8Array>, size: number): AsyncIterable<Buffer> {
  let block = Buffer.allocUnsafe(size);
  let fill = 0;
  for await (const piece of source) {
    let p = 0;
    while (p < piece.length) {
      const n = Math.min(size - fill, piece.length - p);
      block.set(piece.subarray(p, p + n), fill);
      fill += n;
      p += n;
      if (fill === size) {
        yield block;
        block = Buffer.allocUnsafe(size);
        fill = 0;
      }
    }
  }
  if (fill > 0) yield block.subarray(0, fill);
}
