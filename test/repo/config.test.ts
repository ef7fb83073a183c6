import { describe, expect, it } from 'vitest';
import { type VaultConfig, openConfig, sealConfig, CONFIG_ID } from '../../src/repo/config.js';
import { VaultKeys, generateMasterKey } from '../../src/crypto/keys.js';
import { ObjectType } from '../../src/crypto/object-type.js';
import { joinSealed, sealObject } from '../../src/crypto/envelope.js';
import { DEFAULT_CHUNKER_PARAMS } from '../../src/chunk/fastcdc.js';

const keys = VaultKeys.fromMasterKey(generateMasterKey());
const config: VaultConfig = { version: 1, id: 'ab'.repeat(32), createdAt: '2026-11-22T10:00:00.000Z', chunker: DEFAULT_CHUNKER_PARAMS };
const sealRaw = (o: unknown): Buffer => joinSealed(sealObject(keys, ObjectType.config, CONFIG_ID, Buffer.from(JSON.stringify(o))));

describe('the vault config', () => {
  it('round-trips', () => {
    expect(openConfig(keys, sealConfig(keys, config))).toEqual(config);
  });

  it('does not open under another vault key', () => {
    const other = VaultKeys.fromMasterKey(generateMasterKey());
    expect(() => openConfig(other, sealConfig(keys, config))).toThrow(expect.objectContaining({ code: 'VP_AUTH_FAILED' }));
  });

  it('refuses a vault format version it does not know, saying so', () => {
    expect(() => openConfig(keys, sealRaw({ ...config, version: 2 }))).toThrow(
      expect.objectContaining({ code: 'VP_UNSUPPORTED_VERSION', message: expect.stringMatching(/format version 2/) }),
    );
  });

  it('refuses fields it does not know rather than half-reading a newer meaning', () => {
    expect(() => openConfig(keys, sealRaw({ ...config, compression: 'zstd' }))).toThrow(/fields this version does not know: compression/);
  });

  it('refuses unusable chunker sizes and a malformed id', () => {
    expect(() => openConfig(keys, sealRaw({ ...config, chunker: { minSize: 1, avgSize: 3, maxSize: 2 } }))).toThrow(
      expect.objectContaining({ code: 'VP_CHUNKER_PARAMS' }),
    );
    expect(() => openConfig(keys, sealRaw({ ...config, id: 'xyz' }))).toThrow(expect.objectContaining({ code: 'VP_MALFORMED_OBJECT' }));
  });
});
