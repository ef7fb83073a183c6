/**
 * Every test file gets per-user working folders (reports, scratch, recovery) of its own, removed after it: a run of
 * the suite leaves nothing in the user's cache. See test/support/own-cache.ts.
 */
import { useOwnCache } from '../support/own-cache.js';

useOwnCache();
