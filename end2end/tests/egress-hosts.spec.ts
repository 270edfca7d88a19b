import { expect, test } from '@playwright/test';
import { createToken, createUser, createWorkspace, openWorkspacePage, randomHex, upsertSecret } from './support';

// A secret's egress policy in the Studio: the table says where each secret may be sent by
// http_request ("nowhere" at first), and an editor changes it with the row's "Hosts" form,
// one origin a line. A bad origin is refused with the reason and changes nothing.

test('an editor sets where a secret may be sent, and a bad host is refused', async ({ page, request }) => {
  const user = createUser();
  const workspace = createWorkspace(user.username);
  const token = createToken(workspace.id);
  const key = `DEPLOY_${randomHex(3).toUpperCase()}`;
  await upsertSecret(request, workspace.id, token, key, `value-${randomHex(8)}`);

  await openWorkspacePage(page, user, workspace.id);

  const row = page.getByRole('row').filter({ hasText: key });
  await expect(row).toContainText('nowhere');

  await row.getByText('Hosts', { exact: true }).click();
  const hosts = page.getByLabel(`Hosts ${key} may be sent to, one a line`);
  await hosts.fill('https://api.github.com\nhttps://*.example.com:8443');
  await row.getByRole('button', { name: 'Save hosts' }).click();
  await expect(row).toContainText('https://api.github.com, https://*.example.com:8443');

  // The row's "Hosts" form may still be open after the save; open it only if it is not.
  const again = page.getByLabel(`Hosts ${key} may be sent to, one a line`);
  if (!(await again.isVisible())) await row.getByText('Hosts', { exact: true }).click();
  await again.fill('api.github.com');
  await row.getByRole('button', { name: 'Save hosts' }).click();
  await expect(page.getByRole('alert')).toContainText('is not an origin');

  const shown = await request.get(`/api/v1/workspaces/${workspace.id}/secrets`, { headers: { Authorization: `Bearer ${token}` } });
  const id = ((await shown.json()) as { id: string; key: string }[]).find((s) => s.key === key)!.id;
  const egress = await request.get(`/api/v1/workspaces/${workspace.id}/secrets/${id}/egress`, {
    headers: { Authorization: `Bearer ${token}` },
  });
  expect((await egress.json()).hosts).toEqual(['https://api.github.com', 'https://*.example.com:8443']);
});
