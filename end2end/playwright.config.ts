import { defineConfig } from '@playwright/test';

// The server is NOT started here (no webServer block): the test script starts
// loopstack-secrets first and exports E2E_BASE_URL, LOOPSTACK_BIN and the
// DB / master-key environment before running `playwright test`.
const baseURL = process.env.E2E_BASE_URL ?? 'http://127.0.0.1:3999';

// Debian's Chromium; never `npx playwright install` (nothing may be downloaded).
const launchOptions = {
  executablePath: '/usr/bin/chromium',
  args: [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
  ],
};

// Tests whose title contains @nojs run only in the no-JS project; every other
// test runs only in the JS project.
const NOJS = /@nojs/;

export default defineConfig({
  testDir: './tests',
  fullyParallel: true,
  forbidOnly: !!process.env.CI,
  workers: 2,
  retries: 0,
  timeout: 30_000,
  expect: { timeout: 10_000 },
  reporter: [['list'], ['html', { open: 'never', outputFolder: 'playwright-report' }]],
  outputDir: 'test-results',
  use: {
    baseURL,
    headless: true,
    screenshot: 'only-on-failure',
    trace: 'retain-on-failure',
    launchOptions,
  },
  projects: [
    {
      name: 'chromium',
      grepInvert: NOJS,
      use: { browserName: 'chromium', javaScriptEnabled: true },
    },
    {
      name: 'chromium-no-js',
      grep: NOJS,
      use: { browserName: 'chromium', javaScriptEnabled: false },
    },
  ],
});
