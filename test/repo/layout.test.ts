import { describe, expect, it } from 'vitest';
import { Folder, idFromName, objectName } from '../../src/repo/layout.js';

const id = Buffer.from('3f'.repeat(32), 'hex');

describe('object names', () => {
  it('fan packs out by their first byte and keep other folders flat', () => {
    expect(objectName(Folder.data, id)).toBe(`data/3f/${'3f'.repeat(32)}`);
    expect(objectName(Folder.snapshots, id)).toBe(`snapshots/${'3f'.repeat(32)}`);
  });

  it('give back the id of a name they produced', () => {
    for (const folder of Object.values(Folder)) expect(idFromName(folder, objectName(folder, id))).toEqual(id);
  });

  it.each([
    `snapshots/${'3f'.repeat(32)}.tmp`,
    `snapshots/${'3F'.repeat(32)}`,
    `data/00/${'3f'.repeat(32)}`,
    `snapshots/../${'3f'.repeat(32)}`,
    'snapshots/',
    `index/${'3f'.repeat(32)}`,
  ])('ignore names this format does not write: %s', (name) => {
    const folder = name.startsWith('data') ? Folder.data : Folder.snapshots;
    expect(idFromName(folder, name)).toBeUndefined();
  });
});
