import { fileURLToPath } from 'node:url'
import { defineConfig } from 'vitest/config'

export default defineConfig({
  resolve: {
    // Apps import Fleet by name; in tests that is the sources, the same modules the tests import.
    alias: [
      {
        find: /^@fleet-stack\/fleet$/,
        replacement: fileURLToPath(new URL('./src/index.ts', import.meta.url)),
      },
      ...Object.entries({
        testing: 'testing',
        types: 'types',
        errors: 'error-classes',
        runtime: 'runtime',
      }).map(([sub, file]) => ({
        find: new RegExp(`^@fleet-stack/fleet/${sub}$`),
        replacement: fileURLToPath(new URL(`./src/${file}.ts`, import.meta.url)),
      })),
    ],
  },
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    pool: 'forks',
    testTimeout: 30_000,
    hookTimeout: 120_000,
    teardownTimeout: 60_000,
    reporters: ['default'],
  },
})
