import { expect, test } from '@playwright/test';
import {
  agentSecretKeys,
  createToken,
  createUser,
  createWorkspace,
  openWorkspacePage,
  recordPageTraffic,
  upsertSecret,
} from './support';

// Keys the operator provides to every workspace (scripts/test.sh starts the server with
// LOOPSTACK_SECRETS_GLOBAL_KEYS=E2E_GLOBAL_KEY and passes its value here as E2E_GLOBAL_VALUE).
// The workspace page lists them read-only under "Provided by the server", and says which one a
// workspace secret overrides; the value never reaches the browser.

const GLOBAL_KEY = 'E2E_GLOBAL_KEY';

test('the workspace page shows the keys the server provides and which one the workspace overrides', async ({
  page,
  request,
}) => {
  const globalValue = process.env.E2E_GLOBAL_VALUE;
  expect(globalValue, 'scripts/test.sh sets E2E_GLOBAL_VALUE').toBeTruthy();
  const user = createUser();
  const workspace = createWorkspace(user.username);
  const token = createToken(workspace.id, ['secrets:write', 'secrets:list', 'tools:call']);
  const traffic = await recordPageTraffic(page);

  const before = await agentSecretKeys(request, workspace.id, token);
  expect(before.keys).toContainEqual({ key: GLOBAL_KEY, hasValue: true, global: true });

  await openWorkspacePage(page, user, workspace.id);

  const section = page.getByRole('region', { name: 'Provided by the server' });
  const row = section.getByRole('row').filter({ hasText: GLOBAL_KEY });
  await expect(row).toContainText('Value set');
  await expect(section.getByRole('button')).toHaveCount(0);
  await expect(page.getByRole('table', { name: 'Secrets', exact: true }).getByText(GLOBAL_KEY)).toHaveCount(0);

  // A workspace secret of the same key wins; the page follows the change as it happens.
  await upsertSecret(request, workspace.id, token, GLOBAL_KEY, 'the workspace own value');
  await expect(row).toContainText('Overridden by this workspace');
  const after = await agentSecretKeys(request, workspace.id, token);
  expect(after.keys).toContainEqual({ key: GLOBAL_KEY, hasValue: true, global: false });

  expect(await page.content()).not.toContain(globalValue!);
  for (const { url, body } of await traffic.bodies()) {
    expect(body, `response of ${url}`).not.toContain(globalValue!);
  }
});
