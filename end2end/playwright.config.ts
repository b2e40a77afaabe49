// Browser tests for the meshscope dashboard: Debian's Chromium against a real
// `meshscope serve` (started per test by the `server` fixture in
// tests/fixtures.ts) on a freshly seeded pre-backfill database.
import { defineConfig } from '@playwright/test';

export default defineConfig({
  testDir: './tests',
  globalSetup: './global-setup.ts',
  // Each test seeds a file and starts a server; on 2 cores one at a time is fastest.
  workers: 1,
  fullyParallel: false,
  retries: 0,
  forbidOnly: !!process.env.CI,
  timeout: 180_000,
  // Generous: migrations run at a low duty so they last several seconds.
  expect: { timeout: 30_000 },
  reporter: [
    ['list'],
    // Read by `cargo xtask test` to add these counts to its summary line.
    ['json', { outputFile: 'test-results/e2e-results.json' }],
  ],
  use: {
    browserName: 'chromium',
    viewport: { width: 1280, height: 720 },
    trace: 'retain-on-failure',
    launchOptions: {
      // `npx playwright install` cannot download browsers here: use Debian's.
      executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
      ],
    },
  },
});
