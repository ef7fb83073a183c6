// Kernels for tests that take the portable path: every factory returns null (as where the addon did not build) and
// records that it was asked, so a test can show the run consulted the port instead of calling the addon directly.
import type { Kernels } from '../../src/native/ports.js';

export interface AskedKernels {
  readonly kernels: Kernels;
  /** The ports the run asked for (each answered with "none"). */
  readonly asked: Set<keyof Kernels>;
}

export function portableAsked(): AskedKernels {
  const asked = new Set<keyof Kernels>();
  const none = <K extends keyof Kernels>(name: K) => () => {
    asked.add(name);
    return null;
  };
  const kernels: Kernels = {
    fileSealer: none('fileSealer'),
    chunkSealer: none('chunkSealer'),
    packWriter: none('packWriter'),
    blobOpener: none('blobOpener'),
    blobWriter: none('blobWriter'),
    fileWriter: none('fileWriter'),
    openDirect: () => {
      asked.add('openDirect');
      return Promise.resolve(undefined);
    },
  };
  return { kernels, asked };
}
