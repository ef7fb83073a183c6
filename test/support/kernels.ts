// Kernels for tests that take the portable path: every factory returns null (as where the addon did not build) and
// records that it was asked, so a test can show the run consulted the port instead of calling the addon directly.
// The descriptor calls stay the addon's unless asked for `descriptorCalls: 'none'`: without them a restore sets
// times through futimes (to the microsecond), while the fallback tests compare nanosecond times; 'none' is a system
// with no addon at all.
import { type Kernels, nativeKernels } from '../../src/native/ports.js';

export interface AskedKernels {
  readonly kernels: Kernels;
  /** The ports the run asked for (each answered with "none", the descriptor calls as chosen). */
  readonly asked: Set<keyof Kernels>;
}

export function portableAsked(options: { descriptorCalls?: 'native' | 'none' } = {}): AskedKernels {
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
    descriptorCalls: options.descriptorCalls === 'none' ? none('descriptorCalls') : () => {
      asked.add('descriptorCalls');
      return nativeKernels.descriptorCalls();
    },
  };
  return { kernels, asked };
}
