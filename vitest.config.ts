import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['tests/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Tests that stop and restart the real Redis must not overlap with other files using it.
    fileParallelism: true,
    pool: 'forks',
  },
});
