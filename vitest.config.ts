import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/setup/build.ts', 'test/setup/azurite.ts'],
    setupFiles: ['test/setup/own-cache.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Under CI a JSON report is written as well, from which .ci/run prints a one-line summary.
    reporters: process.env['CI'] ? ['default', 'json'] : ['default'],
    outputFile: { json: '.ci/results.json' },
  },
});
