// The account page's sessions: a person signed in on two browsers sees both, ends the other one
// (that browser is signed out at its next step), and "Sign out everywhere" ends this one too.
// A password change ends every other session. An administrator creates a user whose generated
// password is shown once. Each browser is its own context (own cookies).
import { expect, test, type Browser, type Page } from '@playwright/test';
import {
  createUser,
  createWorkspace,
  randomPassword,
  runCli,
  signIn,
  uniqueUsername,
  waitForHydration,
  type TestUser,
} from './support';

async function signedInPage(browser: Browser, user: TestUser, userAgent: string): Promise<Page> {
  const context = await browser.newContext({ userAgent });
  const page = await context.newPage();
  await page.goto('/sign-in');
  await waitForHydration(page);
  await signIn(page, user);
  await expect(page).toHaveURL(/\/workspaces$/);
  return page;
}

/** Whether the page's session still opens a workspace (else the Studio sends it to sign in). */
async function expectSignedOut(page: Page, workspaceId: string): Promise<void> {
  await page.goto(`/workspaces/${workspaceId}`);
  await expect(page).toHaveURL(/\/sign-in/);
}

test('a person sees their sessions, ends another one and then signs out everywhere', async ({ browser }) => {
  const user = createUser();
  const ws = createWorkspace(user.username);
  const phone = await signedInPage(browser, user, 'Phone Browser e2e');
  const laptop = await signedInPage(browser, user, 'Laptop Browser e2e');

  await laptop.goto('/account');
  await waitForHydration(laptop);
  const sessions = laptop.getByRole('table').filter({ hasText: 'This session' });
  await expect(sessions.getByRole('row').filter({ hasText: 'Phone Browser e2e' })).toBeVisible();
  await expect(sessions.getByRole('row').filter({ hasText: 'Laptop Browser e2e' })).toContainText('This session');

  await sessions.getByRole('row').filter({ hasText: 'Phone Browser e2e' }).getByRole('button', { name: /End the session/ }).click();
  await expect(sessions.getByRole('row').filter({ hasText: 'Phone Browser e2e' })).toHaveCount(0);
  await expectSignedOut(phone, ws.id);

  await laptop.getByRole('button', { name: 'Sign out everywhere' }).click();
  await expect(laptop).toHaveURL(/\/sign-in/);
  await expectSignedOut(laptop, ws.id);
});

test('changing the password ends the other sessions', async ({ browser }) => {
  const user = createUser();
  const ws = createWorkspace(user.username);
  const other = await signedInPage(browser, user, 'Other Browser e2e');
  const here = await signedInPage(browser, user, 'This Browser e2e');

  await here.goto('/account');
  await waitForHydration(here);
  await here.getByLabel('Current password', { exact: true }).fill(user.password);
  await here.getByLabel('New password', { exact: true }).fill(`${user.password}-new`);
  await here.getByRole('button', { name: 'Change password' }).click();
  await expect(here.getByRole('status')).toContainText('Password changed.');

  await expectSignedOut(other, ws.id);
  await here.goto(`/workspaces/${ws.id}`);
  await expect(here).toHaveURL(new RegExp(`/workspaces/${ws.id}$`));
});

test('an administrator creates a user, whose generated password is shown once and signs in', async ({ browser }) => {
  const admin: TestUser = { username: uniqueUsername(), password: randomPassword() };
  runCli(['user', 'create', admin.username, '--password-stdin', '--admin'], `${admin.password}\n`);
  const page = await signedInPage(browser, admin, 'Admin Browser e2e');

  await page.goto('/account');
  await waitForHydration(page);
  const username = uniqueUsername();
  await page.getByLabel('New username', { exact: true }).fill(username);
  await page.getByRole('button', { name: 'Create user' }).click();
  const shown = page.getByRole('status');
  await expect(shown).toContainText(`User '${username}' created. Copy the generated password now`);
  const password = (await shown.locator('code').innerText()).trim();
  expect(password.length).toBeGreaterThanOrEqual(16);
  await expect(page.getByLabel('New username', { exact: true })).toHaveValue('');

  await page.reload();
  await waitForHydration(page);
  expect(await page.content()).not.toContain(password);
  const created = await signedInPage(browser, { username, password }, 'New User Browser e2e');
  await expect(created.getByRole('heading', { name: 'Workspaces' })).toBeVisible();
});
