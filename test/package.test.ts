import { readFileSync, readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES } from '../src/errors.js';

const root = new URL('..', import.meta.url);
const pkg = JSON.parse(readFileSync(new URL('package.json', root), 'utf8')) as Record<string, unknown>;
const readme = readFileSync(new URL('README.md', root), 'utf8');
/** The README and the reference pages in docs/ it links to: the documentation as a whole. */
const docs = [readme, ...readdirSync(new URL('docs/', root)).filter((n) => n.endsWith('.md')).map((n) => readFileSync(new URL(`docs/${n}`, root), 'utf8'))].join('\n');
const errorsPage = readFileSync(new URL('docs/errors.md', root), 'utf8');

describe('the package', () => {
  it('is ESM only, side-effect free, with an exports map of ".", "./format" and "./package.json" only', () => {
    expect(pkg['name']).toBe('vaultpath');
    expect(pkg['type']).toBe('module');
    expect(pkg['sideEffects']).toBe(false);
    expect(pkg['exports']).toEqual({
      '.': { types: './dist/index.d.ts', default: './dist/index.js' },
      './format': { types: './dist/format.d.ts', default: './dist/format.js' },
      './package.json': './package.json',
    });
    expect(pkg['bin']).toEqual({ vaultpath: './dist/cli/main.js' });
    expect(pkg['engines']).toEqual({ node: '>=20.19' });
    expect(pkg['files']).toContain('dist');
  });

  it('depends at run time only on the chosen stack', () => {
    // picomatch: fast-glob's own matcher family, so the backup's depth-first walk applies exclusions exactly as the
    // streamed scan does. @node-rs/argon2: Argon2id prebuilt for each platform, @noble/hashes as its fallback.
    const allowed = ['@noble/ciphers', '@noble/hashes', '@node-rs/argon2', 'p-queue', 'bottleneck', 'undici', 'fast-glob', 'picomatch'];
    for (const dep of Object.keys((pkg['dependencies'] ?? {}) as object)) expect(allowed).toContain(dep);
  });
});

describe('the README', () => {
  it('has a Quick start of exactly two commands: install and run the main job, then the tests', () => {
    const quick = /## Quick start[\s\S]*?```sh\n([\s\S]*?)```/.exec(readme);
    expect(quick).not.toBeNull();
    const commands = quick![1]!.trim().split('\n');
    expect(commands).toEqual(['npm ci && npm run demo', 'npm test']);
    expect((pkg['scripts'] as Record<string, string>)['demo']).toBeDefined();
  });

  it('links to an error table that lists every error code', () => {
    expect(readme).toContain('](docs/errors.md)');
    for (const code of Object.keys(ERROR_CODES)) expect(errorsPage).toContain(`| \`${code}\` |`);
  });
});

describe('the public entry', () => {
  /** Each specifier the documentation may import from, and the source module that backs it. */
  const entries: Record<string, string> = { vaultpath: '../src/index.js', 'vaultpath/format': '../src/format.js' };

  it('exports every name the documentation imports from vaultpath and its subpaths', async () => {
    const imported = new Map<string, Set<string>>();
    for (const m of docs.matchAll(/import \{([^}]+)\} from '(vaultpath(?:\/[^']*)?)'/g)) {
      const names = imported.get(m[2]!) ?? new Set<string>();
      for (const name of m[1]!.split(',')) if (name.trim()) names.add(name.trim());
      imported.set(m[2]!, names);
    }
    expect(imported.get('vaultpath')?.size ?? 0).toBeGreaterThan(10);
    for (const [specifier, names] of imported) {
      expect(Object.keys(entries), `docs import from ${specifier}, which the package does not export`).toContain(specifier);
      const api = (await import(entries[specifier]!)) as Record<string, unknown>;
      for (const name of names) expect(api[name], `${name} from ${specifier}`).toBeDefined();
    }
  });
});
