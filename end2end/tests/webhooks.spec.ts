import { createHmac } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect, test } from '@playwright/test';
import { createToken, createUser, createWorkspace, openWorkspacePage, randomHex, upsertSecret, waitForHydration } from './support';

// Webhooks in the Studio: an owner registers an endpoint (a receiver on loopback, which the
// test server allows), copies the signing secret shown once, and sees each delivery with its
// status; the receiver checks the signature as the README says. An endpoint is disabled and
// enabled again, and a delivery is re-sent.

interface Hit {
  signature: string;
  body: string;
}

async function startReceiver(): Promise<{ url: string; hits: Hit[]; server: Server }> {
  const hits: Hit[] = [];
  const server = createServer((req: IncomingMessage, res) => {
    let body = '';
    req.on('data', (chunk) => (body += chunk));
    req.on('end', () => {
      hits.push({ signature: String(req.headers['loopstack-signature'] ?? ''), body });
      res.statusCode = 204;
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/hooks/secrets`, hits, server };
}

/** The receiver's check: t within 5 minutes, v1 = HMAC-SHA256(secret, `${t}.${body}`). */
function verifies(secret: string, header: string, body: string): boolean {
  const parts = Object.fromEntries(header.split(',').map((p) => p.split('=') as [string, string]));
  const t = Number(parts.t);
  if (!Number.isFinite(t) || Math.abs(Date.now() / 1000 - t) > 300) return false;
  return createHmac('sha256', secret).update(`${t}.${body}`).digest('hex') === parts.v1;
}

test('an owner registers a webhook, and each change arrives signed', async ({ page, request }) => {
  const receiver = await startReceiver();
  try {
    const user = createUser();
    const workspace = createWorkspace(user.username);
    const token = createToken(workspace.id);

    await openWorkspacePage(page, user, workspace.id);
    await page.getByRole('link', { name: 'Webhooks' }).click();
    await expect(page.getByRole('heading', { name: 'Webhooks', exact: true })).toBeVisible();
    await waitForHydration(page);
    await page.getByLabel('URL').fill(receiver.url);
    await page.getByRole('button', { name: 'Add webhook' }).click();
    const shown = page.getByRole('status');
    await expect(shown).toContainText('not shown again');
    const secret = (await shown.locator('code').textContent())!.trim();
    expect(secret).toMatch(/^whsec_/);

    const key = `HOOKED_${randomHex(3).toUpperCase()}`;
    const value = `hook-value-${randomHex(8)}`;
    await upsertSecret(request, workspace.id, token, key, value);
    await expect.poll(() => receiver.hits.length, { timeout: 15_000 }).toBe(1);
    const hit = receiver.hits[0];
    expect(verifies(secret, hit.signature, hit.body)).toBe(true);
    expect(verifies('whsec_wrong', hit.signature, hit.body)).toBe(false);
    expect(hit.body).not.toContain(value);
    const event = JSON.parse(hit.body);
    expect(event.type).toBe('secret.upserted');
    expect(event.data.key).toBe(key);

    await page.reload();
    await waitForHydration(page);
    const endpoint = page.getByRole('article', { name: `Webhook ${receiver.url}` });
    const deliveries = endpoint.getByRole('table', { name: `Deliveries to ${receiver.url}` });
    await expect(deliveries.getByRole('row').nth(1)).toContainText('delivered');
    await expect(page.getByText(secret)).toHaveCount(0);

    await deliveries.getByRole('button', { name: 'Re-send secret.upserted' }).click();
    await expect.poll(() => receiver.hits.length, { timeout: 15_000 }).toBe(2);
    expect(receiver.hits[1].body).toBe(hit.body);

    await endpoint.getByRole('button', { name: `Disable ${receiver.url}` }).click();
    await expect(endpoint).toContainText('disabled');
    await endpoint.getByRole('button', { name: `Enable ${receiver.url}` }).click();
    await expect(endpoint).toContainText('enabled');
  } finally {
    receiver.server.close();
  }
});
