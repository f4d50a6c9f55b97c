import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    exclude: ['test/lab/**', 'node_modules/**', 'dist/**'],
    // Integration tests start real processes (servers, the daemon); give them room on a
    // loaded 2-core CI machine. These are hang guards, not speed assertions.
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
