import { expect, test, type APIRequestContext, type Page, type TestInfo } from '@playwright/test';
import {
  collectResponseBodies,
  createToken,
  createUser,
  createWorkspace,
  randomHex,
  randomPassword,
  signIn,
  uniqueUsername,
  upsertSecret,
  waitForHydration,
  type TestWorkspace,
} from './support';

// Tests tagged @nojs run only in the "chromium-no-js" project, all others only
// in "chromium" (see grep / grepInvert in playwright.config.ts).

const SIGN_IN_URL = /\/sign-in(\?.*)?$/;
const WORKSPACES_URL = /\/workspaces$/;
const workspaceUrl = (id: string) => new RegExp(`/workspaces/${id}$`);

/** A user owning a fresh workspace with OPENAI_API_KEY = canary and EMPTY_ONE = "". */
async function seedWorkspace(request: APIRequestContext) {
  const user = createUser();
  const workspace = createWorkspace(user.username);
  const token = createToken(workspace.id);
  const canary = `canary-${randomHex(12)}`;
  await upsertSecret(request, workspace.id, token, 'OPENAI_API_KEY', canary);
  await upsertSecret(request, workspace.id, token, 'EMPTY_ONE', '');
  return { user, workspace, canary };
}

async function openWorkspaceFromList(page: Page, workspace: TestWorkspace) {
  await expect(page).toHaveURL(WORKSPACES_URL);
  await expect(page.getByRole('heading', { name: 'Workspaces', exact: true })).toBeVisible();
  const link = page.getByRole('link', { name: workspace.name, exact: true });
  await expect(link).toBeVisible();
  await link.click();
  await expect(page).toHaveURL(workspaceUrl(workspace.id));
}

async function expectSecretsTable(page: Page) {
  const table = page.getByRole('table', { name: 'Secrets', exact: true });
  await expect(table).toBeVisible();

  const keyRow = table.getByRole('row').filter({ hasText: 'OPENAI_API_KEY' });
  await expect(keyRow).toHaveCount(1);
  await expect(keyRow).toContainText('Value set');
  await expect(keyRow).not.toContainText('No value');

  const emptyRow = table.getByRole('row').filter({ hasText: 'EMPTY_ONE' });
  await expect(emptyRow).toHaveCount(1);
  await expect(emptyRow).toContainText('No value');
  await expect(emptyRow).not.toContainText('Value set');
}

async function screenshotTable(page: Page, testInfo: TestInfo) {
  const path = testInfo.outputPath('secrets-table.png');
  await page.screenshot({ path, fullPage: true });
  await testInfo.attach('secrets-table', { path, contentType: 'image/png' });
}

test('signs in and sees the secrets table', async ({ page, request }, testInfo) => {
  const { user, workspace, canary } = await seedWorkspace(request);
  const responses = collectResponseBodies(page);

  await page.goto('/sign-in');
  await waitForHydration(page);
  await signIn(page, user);

  await openWorkspaceFromList(page, workspace);
  await expectSecretsTable(page);
  await screenshotTable(page, testInfo);
  expect(await page.content(), 'secret value in the rendered page').not.toContain(canary);

  await page.getByRole('button', { name: 'Sign out' }).click();
  await expect(page).toHaveURL(SIGN_IN_URL);

  // Signed out: the workspace page redirects to the sign-in page.
  await page.goto(`/workspaces/${workspace.id}`);
  await expect(page).toHaveURL(SIGN_IN_URL);
  await expect(page.getByRole('table', { name: 'Secrets', exact: true })).toHaveCount(0);

  const bodies = await responses.bodies();
  expect(bodies.length, 'no textual response was recorded').toBeGreaterThan(0);
  for (const { url, body } of bodies) {
    expect(body, `secret value in the response body of ${url}`).not.toContain(canary);
  }
});

test('a wrong password is refused without saying which part was wrong', async ({ page }) => {
  const user = createUser();

  await page.goto('/sign-in');
  await waitForHydration(page);
  await signIn(page, { username: user.username, password: randomPassword() });

  const alert = page.getByRole('alert');
  await expect(alert).toContainText('Invalid username or password');
  await expect(page).toHaveURL(SIGN_IN_URL);
  const wrongPasswordText = (await alert.innerText()).trim();

  // An unknown username gets exactly the same answer.
  await page.goto('/sign-in');
  await waitForHydration(page);
  await signIn(page, { username: uniqueUsername(), password: randomPassword() });
  await expect(page.getByRole('alert')).toContainText('Invalid username or password');
  await expect(page).toHaveURL(SIGN_IN_URL);
  expect((await page.getByRole('alert').innerText()).trim()).toBe(wrongPasswordText);
});

test('signs in without JavaScript @nojs', async ({ page, request }, testInfo) => {
  const { user, workspace, canary } = await seedWorkspace(request);

  // JavaScript is off in this project: plain form posts and server redirects.
  await page.goto('/sign-in');
  await signIn(page, user);

  await openWorkspaceFromList(page, workspace);
  await expectSecretsTable(page);
  await screenshotTable(page, testInfo);
  expect(await page.content(), 'secret value in the rendered page').not.toContain(canary);
});

test('another user does not see the workspace', async ({ page, request }) => {
  const { workspace, canary } = await seedWorkspace(request);
  const other = createUser();

  await page.goto('/sign-in');
  await waitForHydration(page);
  await signIn(page, other);

  await expect(page).toHaveURL(WORKSPACES_URL);
  await expect(page.getByRole('heading', { name: 'Workspaces', exact: true })).toBeVisible();
  await expect(page.getByRole('link', { name: workspace.name, exact: true })).toHaveCount(0);

  await page.goto(`/workspaces/${workspace.id}`);
  await waitForHydration(page);
  await expect(page.getByRole('alert')).toContainText('Not found');
  await expect(page.getByRole('table', { name: 'Secrets', exact: true })).toHaveCount(0);
  const html = await page.content();
  expect(html).not.toContain(canary);
  expect(html, 'secret key names of a foreign workspace in the page').not.toContain('OPENAI_API_KEY');
});
