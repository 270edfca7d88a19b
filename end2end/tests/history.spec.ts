import { expect, test } from '@playwright/test';
import {
  createToken,
  createUser,
  createWorkspace,
  exportedValues,
  openWorkspacePage,
  randomHex,
  recordPageTraffic,
  upsertSecret,
  waitForHydration,
} from './support';

// A secret's history in the Studio: the key links to its versions (never their values), an
// editor rolls back to an old one (a new version with its value), a deleted secret is
// restored from "Recently deleted", and a form opened before someone else's change is told
// the secret changed instead of overwriting it.

test('an editor sees a secret’s versions, rolls back, deletes and restores it', async ({ page, request }) => {
  const user = createUser();
  const workspace = createWorkspace(user.username);
  const token = createToken(workspace.id);
  const key = `HISTORY_${randomHex(3).toUpperCase()}`;
  const values = [1, 2, 3].map((n) => `history-v${n}-${randomHex(8)}`);
  for (const value of values) await upsertSecret(request, workspace.id, token, key, value);

  const traffic = await recordPageTraffic(page);
  await openWorkspacePage(page, user, workspace.id);
  await page.getByRole('link', { name: key }).click();
  await expect(page.getByRole('heading', { name: `History of ${key}` })).toBeVisible();
  await waitForHydration(page);
  const versions = page.getByRole('table', { name: 'Versions' });
  await expect(versions.getByRole('row')).toHaveCount(4);
  await expect(versions.getByRole('row').nth(1)).toContainText('3 (current)');
  // Written through the API: each version names the token that wrote it.
  await expect(versions.getByRole('row').nth(3)).toContainText('token:');

  await versions.getByRole('button', { name: 'Roll back to version 1' }).click();
  await expect(versions.getByRole('row').nth(1)).toContainText('4 (current)');
  await expect(versions.getByRole('row')).toHaveCount(5);
  expect(exportedValues(workspace.id).get(key)).toBe(values[0]);

  // Back on the workspace page: delete it, then restore it from "Recently deleted".
  await page.getByRole('link', { name: workspace.name }).click();
  const table = page.getByRole('table', { name: 'Secrets', exact: true });
  const row = table.getByRole('row').filter({ hasText: key });
  await row.getByText('Delete', { exact: true }).click();
  await row.getByRole('button', { name: `Delete ${key}` }).click();
  await expect(table.getByRole('row').filter({ hasText: key })).toHaveCount(0);
  const deleted = page.getByRole('table', { name: 'Recently deleted secrets' });
  await expect(deleted).toContainText(key);
  await deleted.getByRole('button', { name: `Restore ${key}` }).click();
  await expect(table.getByRole('row').filter({ hasText: key })).toHaveCount(1);
  expect(exportedValues(workspace.id).get(key)).toBe(values[0]);

  for (const { body } of await traffic.bodies()) {
    for (const value of values) expect(body).not.toContain(value);
  }
});

test('a rollback from a page opened before someone else’s change is refused, not applied', async ({ page, request }) => {
  const user = createUser();
  const workspace = createWorkspace(user.username);
  const token = createToken(workspace.id);
  const key = `STALE_${randomHex(3).toUpperCase()}`;
  const first = await upsertSecret(request, workspace.id, token, key, `first-${randomHex(8)}`);
  await upsertSecret(request, workspace.id, token, key, `second-${randomHex(8)}`);

  await openWorkspacePage(page, user, workspace.id);
  await page.goto(`/workspaces/${workspace.id}/secrets/${first.id}`);
  await waitForHydration(page);
  const versions = page.getByRole('table', { name: 'Versions' });
  await expect(versions.getByRole('row').nth(1)).toContainText('2 (current)');

  // Someone else writes version 3 while this page still shows 2 as current.
  const theirs = `theirs-${randomHex(8)}`;
  await upsertSecret(request, workspace.id, token, key, theirs);
  await versions.getByRole('button', { name: 'Roll back to version 1' }).click();
  await expect(page.getByRole('alert')).toContainText('changed since you read it');
  expect(exportedValues(workspace.id).get(key)).toBe(theirs);
});
