/**
 * The parsers of the vault's objects refuse, with a typed error, each kind of damage they once let through or
 * crashed on: trees, snapshots, locks, the config, index entries, pack headers and trailers.
 */
import { describe, expect, it } from 'vitest';
import { VaultKeys } from '../../src/crypto/keys.js';
import { ObjectType } from '../../src/crypto/object-type.js';
import { joinSealed, sealBlob, sealObject } from '../../src/crypto/envelope.js';
import { MAX_TREE_NODES, decodeSnapshot, decodeTree, encodeSnapshot, type Snapshot, type TreeNode } from '../../src/repo/tree.js';
import { decodeLock, encodeLock } from '../../src/repo/lock.js';
import { CONFIG_ID, openConfig } from '../../src/repo/config.js';
import { type IndexEntry, decodeIndex, encodeIndex } from '../../src/repo/index-file.js';
import { PACK_HEADER_ID, encodePackHeader, openPackHeader, readPackTrailer } from '../../src/repo/pack.js';
import { FIXED_MASTER_KEY } from '../support/seeded.js';

const keys = VaultKeys.fromMasterKey(FIXED_MASTER_KEY);
const HEX = 'ab'.repeat(32);
const file = (over: Record<string, unknown> = {}): Record<string, unknown> => ({ name: 'f', type: 'file', mode: 0o644, mtimeNs: '1', size: 5, content: [HEX], ...over });
const tree = (...nodes: unknown[]): Buffer => Buffer.from(JSON.stringify({ nodes }));
const decode = (bytes: Buffer) => () => decodeTree(bytes, 'tree x');

describe('decodeTree', () => {
  it('accepts a valid tree with every kind of node', () => {
    const nodes: readonly TreeNode[] = decodeTree(
      tree(
        file({ name: 'a', holes: [[0, 2]], size: 7, decision: 'backup-sparse', ctimeNs: '-3', inode: '9' }),
        { nameRaw: Buffer.from([0xff]).toString('base64'), type: 'dir', mode: 0o755, mtimeNs: '-1', subtree: HEX },
        { name: 'l', type: 'symlink', mode: 0o777, mtimeNs: '1', linkTarget: '../a' },
      ),
      'tree x',
    ).nodes;
    expect(nodes).toHaveLength(3);
  });

  it('refuses a hole that is not a pair with VP_MALFORMED_OBJECT, not a TypeError', () => {
    for (const holes of [[5], [null], [{ 0: 1, 1: 2 }], [[1]], [[0, 1, 2]], [['0', 1]]]) {
      expect(decode(tree(file({ holes }))), JSON.stringify(holes)).toThrow(expect.objectContaining({ code: 'VP_MALFORMED_OBJECT' }));
    }
  });

  it(`refuses more than ${MAX_TREE_NODES} nodes with VP_FORMAT_LIMIT`, () => {
    const nodes = Array.from({ length: MAX_TREE_NODES + 1 }, (_, i) => file({ name: `f${i}` }));
    expect(decode(tree(...nodes))).toThrow(expect.objectContaining({ code: 'VP_FORMAT_LIMIT' }));
    expect(() => decodeTree(tree(...nodes.slice(1)), 'tree x')).not.toThrow();
  });

  it('refuses JSON nested deeper than a tree can be, before parsing it, with VP_FORMAT_LIMIT', () => {
    expect(decode(Buffer.from('{"nodes":[],"extra":[[[[[1]]]]]}'))).toThrow(expect.objectContaining({ code: 'VP_FORMAT_LIMIT' }));
  });

  it('refuses a nameRaw that is empty or not canonical base64, and a name with both fields', () => {
    for (const nameRaw of ['', 'QQ', 'Q Q=', '====', '!!!!', 'QUJD\n']) {
      expect(decode(tree({ nameRaw, type: 'dir', mode: 0, mtimeNs: '1', subtree: HEX })), JSON.stringify(nameRaw)).toThrow(
        expect.objectContaining({ code: 'VP_MALFORMED_OBJECT' }),
      );
    }
    expect(decode(tree(file({ nameRaw: 'QQ==' })))).toThrow(expect.objectContaining({ code: 'VP_MALFORMED_OBJECT' }));
  });

  it('refuses a name over 4095 bytes and a name that appears twice', () => {
    expect(decode(tree(file({ name: 'é'.repeat(2048) })))).toThrow(expect.objectContaining({ code: 'VP_MALFORMED_OBJECT' }));
    expect(decode(tree(file({ name: 'A' }), file({ nameRaw: 'QQ==', name: undefined })))).toThrow(expect.objectContaining({ code: 'VP_MALFORMED_OBJECT' }));
  });

  it('refuses a chunk list that cannot hold the size: more chunks than bytes, or data and no chunk', () => {
    expect(decode(tree(file({ size: 1, content: [HEX, HEX] })))).toThrow(expect.objectContaining({ code: 'VP_MALFORMED_OBJECT' }));
    expect(decode(tree(file({ size: 10, content: [] })))).toThrow(expect.objectContaining({ code: 'VP_MALFORMED_OBJECT' }));
    expect(decode(tree(file({ size: 10, holes: [[0, 10]], content: [HEX] })))).toThrow(expect.objectContaining({ code: 'VP_MALFORMED_OBJECT' }));
    expect(() => decodeTree(tree(file({ size: 10, holes: [[0, 10]], content: [] })), 'tree x')).not.toThrow();
  });

  it('refuses optional fields of the wrong type and fields of another kind of node', () => {
    expect(decode(tree(file({ decision: 5 })))).toThrow(expect.objectContaining({ code: 'VP_MALFORMED_OBJECT' }));
    expect(decode(tree(file({ decision: 'maybe' })))).toThrow(expect.objectContaining({ code: 'VP_MALFORMED_OBJECT' }));
    expect(decode(tree({ name: 'd', type: 'dir', mode: 0, mtimeNs: '1', subtree: HEX, content: 'x' }))).toThrow(expect.objectContaining({ code: 'VP_MALFORMED_OBJECT' }));
    expect(decode(tree({ name: 'd', type: 'dir', mode: 0, mtimeNs: '1', subtree: HEX, linkTarget: 5 }))).toThrow(expect.objectContaining({ code: 'VP_MALFORMED_OBJECT' }));
  });

  it('refuses a link target that is empty, over 4095 bytes, or holds a NUL', () => {
    for (const linkTarget of ['', 'a\u0000b', 'x'.repeat(4096)]) {
      expect(decode(tree({ name: 'l', type: 'symlink', mode: 0o777, mtimeNs: '1', linkTarget })), linkTarget.slice(0, 8)).toThrow(
        expect.objectContaining({ code: 'VP_MALFORMED_OBJECT' }),
      );
    }
  });
});

describe('decodeSnapshot', () => {
  const valid: Snapshot = {
    version: 1, time: '2026-11-22T00:00:00.000Z', hostname: 'h', paths: ['/src'], tree: HEX, parent: null, status: 'complete', warnings: 0,
    stats: { files: 1, dirs: 1, bytesRead: 0, bytesNew: 0, bytesStored: 0, skipped: 0 }, program: 'test',
  };
  const snap = (over: Record<string, unknown>) => () => decodeSnapshot(Buffer.from(JSON.stringify({ ...valid, ...over })), 'snapshot x');

  it('accepts a valid snapshot', () => {
    expect(decodeSnapshot(encodeSnapshot(valid), 'snapshot x')).toEqual(valid);
  });

  it('checks every field: hostname, paths, status, warnings, stats, program', () => {
    for (const over of [
      { hostname: 5 }, { hostname: undefined }, { paths: [5] }, { paths: [''] }, { status: 'done' }, { warnings: -1 }, { warnings: '2' },
      { stats: null }, { stats: { ...valid.stats, files: 1.5 } }, { stats: { ...valid.stats, bytesRead: undefined } }, { program: [] },
    ]) {
      expect(snap(over), JSON.stringify(over)).toThrow(expect.objectContaining({ code: 'VP_MALFORMED_OBJECT' }));
    }
  });
});

describe('decodeLock', () => {
  const lock = { time: '2026-11-22T00:00:00.000Z', hostname: 'h', pid: 7, exclusive: false };
  it('refuses a pid no process can have (a probe of it would call a live run abandoned)', () => {
    expect(decodeLock(encodeLock(lock), 'lock x')).toEqual(lock);
    expect(() => decodeLock(encodeLock({ ...lock, pid: 2 ** 40 }), 'lock x')).toThrow(expect.objectContaining({ code: 'VP_MALFORMED_OBJECT' }));
  });
  it('refuses nested JSON with VP_FORMAT_LIMIT', () => {
    expect(() => decodeLock(Buffer.from(JSON.stringify({ ...lock, extra: [[1]] })), 'lock x')).toThrow(expect.objectContaining({ code: 'VP_FORMAT_LIMIT' }));
  });
});

describe('openConfig', () => {
  it('refuses a config over 64 KiB with VP_FORMAT_LIMIT before parsing it', () => {
    const json = `${JSON.stringify({ version: 1, id: HEX, createdAt: '2026-11-22T00:00:00.000Z', chunker: { minSize: 524288, avgSize: 1048576, maxSize: 8388608 } })}${' '.repeat(70_000)}`;
    const sealed = joinSealed(sealObject(keys, ObjectType.config, CONFIG_ID, Buffer.from(json)));
    expect(() => openConfig(keys, sealed)).toThrow(expect.objectContaining({ code: 'VP_FORMAT_LIMIT' }));
    expect(openConfig(keys, joinSealed(sealObject(keys, ObjectType.config, CONFIG_ID, Buffer.from(json.trim())))).id).toBe(HEX);
  });
});

describe('index entries and pack headers', () => {
  const entry: IndexEntry = { id: Buffer.alloc(32, 1), type: ObjectType.data, codec: 0, packId: Buffer.alloc(32, 2), offset: 0, length: 148, plaintextLength: 100 };
  const index = (over: Partial<IndexEntry>) => () => decodeIndex(encodeIndex({ entries: [{ ...entry, ...over }], supersedes: [] }));

  it('refuses an index entry shorter than a sealed blob, ending past the largest pack, or with a wrong plaintext length', () => {
    expect(index({})).not.toThrow();
    expect(index({ length: 47, plaintextLength: 0 })).toThrow(expect.objectContaining({ code: 'VP_MALFORMED_OBJECT' }));
    expect(index({ offset: 0xffff_ff00, length: 0x1000, plaintextLength: 0x1000 - 48 })).toThrow(expect.objectContaining({ code: 'VP_MALFORMED_OBJECT' }));
    expect(index({ plaintextLength: 99 })).toThrow(expect.objectContaining({ code: 'VP_MALFORMED_OBJECT' }));
  });

  it('refuses a pack header entry with a wrong plaintext length', () => {
    const header = (plaintextLength: number) => joinSealed(sealBlob(keys, ObjectType.packHeader, PACK_HEADER_ID, encodePackHeader([{ ...entry, plaintextLength }])));
    const packSize = 148 + header(100).length + 8;
    expect(openPackHeader(keys, header(100), packSize, 'pack x')).toHaveLength(1);
    expect(() => openPackHeader(keys, header(7), packSize, 'pack x')).toThrow(expect.objectContaining({ code: 'VP_MALFORMED_OBJECT' }));
  });

  it('refuses a trailer whose header length fits no number of entries, or more entries than the pack holds', () => {
    const trailer = (headerLength: number) => Buffer.concat([Buffer.from(Uint32Array.of(headerLength).buffer), Buffer.from('VPK\x01', 'latin1')]);
    expect(readPackTrailer(trailer(52 + 44), 52 + 44 + 8 + 148, 'pack x')).toBe(96);
    expect(() => readPackTrailer(trailer(100), 10_000, 'pack x')).toThrow(expect.objectContaining({ code: 'VP_MALFORMED_OBJECT' }));
    expect(() => readPackTrailer(trailer(52 + 44 * 20), 1000, 'pack x')).toThrow(expect.objectContaining({ code: 'VP_MALFORMED_OBJECT' }));
  });
});
