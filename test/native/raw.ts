// The addon's functions untyped, for tests that call them with arguments of the wrong type or range on purpose.
import { type AddonFunctions, nativeFunction } from '../../src/native/addon.js';

/** The addon's function `name` (which must be built), callable with anything. */
export function rawFunction<T = (...args: unknown[]) => unknown>(name: keyof AddonFunctions): T {
  const fn = nativeFunction(name);
  if (!fn) throw new Error(`the native addon (or its ${name}) did not build or load`);
  return fn as unknown as T;
}
