// The Studio runs under its Content-Security-Policy (nonce scripts, WebAssembly, no inline
// styles) without a single violation, and the front-end files arrive compressed with
// content-hashed names cached for a year.
import { expect, test } from '@playwright/test';
import { createUser, createWorkspace, signIn, waitForHydration } from './support';

test('the Studio hydrates and works under its CSP without a violation', async ({ page }) => {
  const violations: string[] = [];
  page.on('console', (message) => {
    if (/Content.Security.Policy|Refused to/i.test(message.text())) violations.push(message.text());
  });
  const assets: { url: string; cache: string; encoding: string }[] = [];
  page.on('response', (response) => {
    if (new URL(response.url()).pathname.startsWith('/pkg/')) {
      const headers = response.headers();
      assets.push({ url: response.url(), cache: headers['cache-control'] ?? '', encoding: headers['content-encoding'] ?? '' });
    }
  });
  const user = createUser();
  const workspace = createWorkspace(user.username);

  await page.goto('/sign-in');
  await waitForHydration(page);
  await signIn(page, user);
  await page.goto(`/workspaces/${workspace.id}`);
  await waitForHydration(page);

  expect(violations).toEqual([]);
  const kinds = assets.map((a) => a.url.split('.').pop());
  expect(kinds).toEqual(expect.arrayContaining(['js', 'wasm', 'css']));
  for (const asset of assets) {
    expect(asset.url, 'a content hash in the name').toMatch(/\/pkg\/loopstack-secrets\.[A-Za-z0-9_-]{10,}\.(js|wasm|css)$/);
    expect(asset.cache).toBe('public, max-age=31536000, immutable');
    if (!asset.url.endsWith('.css')) expect(['gzip', 'br']).toContain(asset.encoding);
  }
});
