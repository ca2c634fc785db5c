import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // Three tiers, one run: test/unit (pure, seconds), test/integration (real fs, ffmpeg, GStreamer,
    // Chromium, servers; one component or a few), test/e2e (the real gateway, the whole pipeline).
    // `npm run test:unit|test:integration|test:e2e` runs one tier.
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Integration and e2e tests start real ffmpeg and servers; two cores, so keep parallelism modest.
    maxWorkers: 2,
    reporters: ['default'],
  },
});
