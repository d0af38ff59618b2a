import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/helpers/global-setup.ts'],
    reporters: ['default', './test/helpers/plain-summary.ts'],
    testTimeout: 240_000,
    hookTimeout: 240_000,
    // Two cores: more workers would only fight over the single-threaded S3 emulator.
    maxWorkers: 2,
    // Each worker runs its files one after another in one process, loading the SDKs once rather than once per file:
    // measured on this machine, the files' imports took 23 s in all instead of 87-99 s, and the suite 8 min 13 s
    // instead of 9 min 22-58 s. So a file leaves the process as it found it: env restored, SDK mocks restored
    // (aws-sdk-client-mock patches the client classes), servers closed.
    isolate: false,
    env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
  },
});
