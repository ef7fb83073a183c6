/**
 * Every test file gets per-user working folders (reports, scratch, recovery) of its own, removed after it: a run of
 * the suite leaves nothing in the user's cache. See test/support/hygiene-cache.ts.
 */
import { useOwnCache } from '../support/hygiene-cache.js';

useOwnCache();
