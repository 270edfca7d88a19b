import { expect, test, type Locator, type Page, type TestInfo } from '@playwright/test';
import {
  AGENT_SCOPES,
  agentReadRun,
  agentRequestSecrets,
  agentSecretKeys,
  agentStartWorkflow,
  agentWaitForRun,
  createToken,
  createUser,
  createWorkspace,
  exportedValues,
  isEventStream,
  randomHex,
  recordPageTraffic,
  signIn,
  upsertSecret,
  waitForHydration,
  type RecordedBody,
  type TestUser,
} from './support';

// The Studio: a workspace's secrets (add, update, filter, delete), its pending secret requests
// (live, through the page's server-sent event stream), and the run page where a person answers
// an agent's request. Tests tagged @nojs run only in the "chromium-no-js" project, all others
// only in "chromium" (see grep / grepInvert in playwright.config.ts). Each test has its own user
// and workspace.

const WORKSPACES_URL = /\/workspaces$/;
const workspacePath = (ws: string) => `/workspaces/${ws}`;
const runPath = (ws: string, run: string) => `/workspaces/${ws}/runs/${run}`;
const exactPath = (path: string) => new RegExp(`${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`);

/** A value typed into a form; must never come back in any page or response. */
const canary = (label: string) => `${label}-${randomHex(12)}`;

/** Signs in through the form; ends on the workspace list. */
async function signInAs(page: Page, user: TestUser, js: boolean) {
  await page.goto('/sign-in');
  if (js) await waitForHydration(page);
  await signIn(page, user);
  await expect(page).toHaveURL(WORKSPACES_URL);
}

/** Opens a Studio page (and waits for hydration when JavaScript is on). */
async function open(page: Page, path: string, js: boolean) {
  await page.goto(path);
  await expect(page).toHaveURL(exactPath(path));
  if (js) await waitForHydration(page);
}

/** Marks the current document so that a later check can tell it was not reloaded. */
async function markDocument(page: Page) {
  await page.evaluate(() => {
    (window as unknown as { __e2eSameDocument?: boolean }).__e2eSameDocument = true;
  });
}

async function expectSameDocument(page: Page, what: string) {
  const same = await page.evaluate(() => (window as unknown as { __e2eSameDocument?: boolean }).__e2eSameDocument === true);
  expect(same, `${what}: the page was reloaded or navigated to a new document`).toBe(true);
}

/** The data rows of the secrets table (the header row has column headers, not cells). */
function secretRows(page: Page): Locator {
  return page.getByRole('table', { name: 'Secrets', exact: true }).getByRole('row').filter({ has: page.getByRole('cell') });
}

function secretRow(page: Page, key: string): Locator {
  return secretRows(page).filter({ hasText: key });
}

/** The `<summary>` of one of a row's `<details>` ("Update" or "Delete"). */
function rowSummary(row: Locator, text: 'Update' | 'Delete'): Locator {
  return row.locator('summary', { hasText: new RegExp(`^\\s*${text}\\s*$`) });
}

async function addSecret(page: Page, key: string, value: string) {
  const keyInput = page.getByLabel('Key', { exact: true });
  const valueInput = page.getByLabel('Value', { exact: true });
  await expect(valueInput).toHaveAttribute('type', 'password');
  await keyInput.fill(key);
  await valueInput.fill(value);
  await page.getByRole('button', { name: 'Add secret', exact: true }).click();
}

async function expectSecretCount(page: Page, n: number) {
  // "1 secrets" or "1 secret": the contract only fixes "{n} secrets".
  const re = n === 1 ? /\b1 secrets?\b/ : new RegExp(`\\b${n} secrets\\b`);
  await expect(page.getByText(re)).toBeVisible();
}

async function screenshot(page: Page, testInfo: TestInfo, name: string) {
  const path = testInfo.outputPath(name);
  await page.screenshot({ path, fullPage: true });
  await testInfo.attach(name, { path, contentType: 'image/png' });
}

async function expectNoLeak(page: Page, values: string[], bodies: RecordedBody[] = []) {
  const html = await page.content();
  for (const value of values) {
    expect(html, `a typed value in the rendered page ${page.url()}`).not.toContain(value);
    for (const { url, body } of bodies) {
      expect(body, `a typed value in the response body of ${url}`).not.toContain(value);
    }
  }
}

test('adds, updates, filters and deletes secrets', async ({ page }, testInfo) => {
  test.slow(); // several hydrations and CLI exports on a shared machine
  const user = createUser();
  const ws = createWorkspace(user.username);
  const traffic = await recordPageTraffic(page);
  const stripe = canary('stripe');
  const github = canary('github');
  const stripeUpdated = canary('stripe2');
  const rejected = canary('rejected');
  const typed = [stripe, github, stripeUpdated, rejected];

  await signInAs(page, user, true);
  await open(page, workspacePath(ws.id), true);
  await expect(page.getByRole('heading', { level: 1 })).toHaveText(ws.name);
  await expect(page.getByText('No secrets yet.')).toBeVisible();
  await expect(page.getByRole('table', { name: 'Secrets', exact: true })).toHaveCount(0);
  await expect(page.getByRole('heading', { name: 'Pending requests', level: 2 })).toBeVisible();
  await expect(page.getByText('No pending requests.')).toBeVisible();
  await expect(page.getByRole('heading', { name: 'Add secret', level: 2 })).toBeVisible();
  await markDocument(page);

  // Add two secrets; with JavaScript the rows appear without a reload.
  await addSecret(page, 'STRIPE_API_KEY', stripe);
  await expect(secretRow(page, 'STRIPE_API_KEY')).toContainText('Value set');
  // The form is empty again: the typed value does not stay in its field.
  await expect(page.getByLabel('Value', { exact: true })).toHaveValue('');
  await expect(page.getByLabel('Key', { exact: true })).toHaveValue('');
  await addSecret(page, 'GITHUB_TOKEN', github);
  await expect(secretRow(page, 'GITHUB_TOKEN')).toContainText('Value set');
  await expect(secretRows(page)).toHaveCount(2);
  await expectSecretCount(page, 2);
  await expect(page.getByText('No secrets yet.')).toHaveCount(0);
  await expectSameDocument(page, 'adding a secret');
  await expect.poll(() => Object.fromEntries(exportedValues(ws.id))).toEqual({ STRIPE_API_KEY: stripe, GITHUB_TOKEN: github });

  // A bad key is refused with the reason; nothing is added.
  await addSecret(page, '1BAD', rejected);
  await expect(page.getByRole('alert').filter({ hasText: 'key must match' })).toBeVisible();
  await expect(secretRow(page, '1BAD')).toHaveCount(0);
  await expect(secretRows(page)).toHaveCount(2);

  // Update one value through the row's "Update" details.
  const stripeRow = secretRow(page, 'STRIPE_API_KEY');
  await rowSummary(stripeRow, 'Update').click();
  const newValue = page.getByLabel('New value for STRIPE_API_KEY', { exact: true });
  await expect(newValue).toBeVisible();
  await expect(newValue).toHaveAttribute('type', 'password');
  await newValue.fill(stripeUpdated);
  await stripeRow.getByRole('button', { name: 'Save', exact: true }).click();
  await expect.poll(() => exportedValues(ws.id).get('STRIPE_API_KEY')).toBe(stripeUpdated);
  await expect(secretRow(page, 'STRIPE_API_KEY')).toContainText('Value set');
  expect(exportedValues(ws.id).get('GITHUB_TOKEN')).toBe(github);

  // Filter (substring, case-insensitive) through the search form: ?q=...
  const search = page.getByRole('search');
  await search.getByLabel('Filter keys').fill('stripe');
  await search.getByRole('button', { name: 'Filter', exact: true }).click();
  await expect(page).toHaveURL(new RegExp(`/workspaces/${ws.id}\\?(.*&)?q=stripe(&.*)?$`));
  await expect(secretRow(page, 'STRIPE_API_KEY')).toBeVisible();
  await expect(secretRow(page, 'GITHUB_TOKEN')).toHaveCount(0);
  await expect(secretRows(page)).toHaveCount(1);

  // Clear the filter: the page without ?q shows everything again.
  await open(page, workspacePath(ws.id), true);
  await expect(secretRows(page)).toHaveCount(2);
  await screenshot(page, testInfo, 'studio-secrets.png');

  // Delete one through the row's "Delete" details.
  const githubRow = secretRow(page, 'GITHUB_TOKEN');
  await rowSummary(githubRow, 'Delete').click();
  await githubRow.getByRole('button', { name: 'Delete GITHUB_TOKEN', exact: true }).click();
  await expect(secretRow(page, 'GITHUB_TOKEN')).toHaveCount(0);
  await expect(secretRows(page)).toHaveCount(1);
  await expectSecretCount(page, 1);
  await expect.poll(() => exportedValues(ws.id).has('GITHUB_TOKEN')).toBe(false);

  // No typed value ever comes back: not in the DOM, not after a reload, not in any response.
  await expectNoLeak(page, typed);
  await page.reload();
  await waitForHydration(page);
  await expect(secretRows(page)).toHaveCount(1);
  await expect(secretRow(page, 'STRIPE_API_KEY')).toContainText('Value set');
  const bodies = await traffic.bodies();
  expect(bodies.length, 'no textual response was recorded').toBeGreaterThan(0);
  await expectNoLeak(page, typed, bodies);
});

test("an agent's request appears live and the user's answer wakes the agent", async ({ page, request }, testInfo) => {
  test.slow(); // a long-poll plus two pages; a missed wake-up should fail on its own assertion
  const user = createUser();
  const ws = createWorkspace(user.username);
  const tokenName = `deploy-bot-${randomHex(3)}`;
  const token = createToken(ws.id, AGENT_SCOPES, tokenName);
  const traffic = await recordPageTraffic(page);
  const openai = canary('openai');
  const slack = canary('slack');
  const context = {
    reason: 'Deploying the <b>billing</b> service needs these.',
    keys: {
      OPENAI_API_KEY: { description: 'A project key; it starts with sk-', helpUrl: 'https://platform.openai.com/api-keys' },
    },
  };

  await signInAs(page, user, true);
  // The page must be listening before the agent asks: wait for its event stream to open.
  const streamOpened = page.waitForResponse(isEventStream, { timeout: 15_000 });
  await open(page, workspacePath(ws.id), true);
  await streamOpened;
  await expect(page.getByRole('heading', { name: 'Pending requests', level: 2 })).toBeVisible();
  await expect(page.getByText('No pending requests.')).toBeVisible();
  await markDocument(page);

  // The agent asks; the request shows up on the open page without a reload.
  const asked = await agentRequestSecrets(request, ws.id, token, ['OPENAI_API_KEY', 'SLACK_TOKEN'], context);
  const runId = asked.runId;
  const link = page.getByRole('link', { name: 'Request for OPENAI_API_KEY, SLACK_TOKEN', exact: true });
  await expect(link).toBeVisible();
  await expect(link).toHaveAttribute('href', exactPath(runPath(ws.id, runId)));
  await expect(page.getByText('No pending requests.')).toHaveCount(0);
  await expectSameDocument(page, 'the pending request appearing');

  // The agent long-polls while the person answers.
  let settled = false;
  const waiting = agentWaitForRun(request, ws.id, token, runId, 60).finally(() => {
    settled = true;
  });
  waiting.catch(() => {}); // awaited below; no unhandled rejection if the test fails first

  await link.click();
  await expect(page).toHaveURL(exactPath(runPath(ws.id, runId)));
  await waitForHydration(page);
  await expect(page.getByText('Status: waiting')).toBeVisible();
  await expect(page.getByText('secrets panel')).toBeVisible();
  // Who asked, why, until when, and what each key is: as text, the markup in the reason shown.
  await expect(page.getByText(`API token \u201c${tokenName}\u201d`, { exact: true })).toBeVisible();
  await expect(page.getByText('Expires', { exact: true })).toBeVisible();
  await expect(page.getByText(context.reason, { exact: true })).toBeVisible();
  await expect(page.locator('b', { hasText: 'billing' })).toHaveCount(0);
  await expect(page.getByLabel('OPENAI_API_KEY', { exact: true })).toHaveAccessibleDescription(
    context.keys.OPENAI_API_KEY.description,
  );
  const help = page.getByRole('link', { name: 'How to get it (platform.openai.com)', exact: true });
  await expect(help).toHaveAttribute('href', context.keys.OPENAI_API_KEY.helpUrl);
  await expect(help).toHaveAttribute('target', '_blank');
  await expect(help).toHaveAttribute('rel', 'noopener noreferrer');
  const fields = { OPENAI_API_KEY: openai, SLACK_TOKEN: slack };
  for (const [key, value] of Object.entries(fields)) {
    const input = page.getByLabel(key, { exact: true });
    await expect(input).toHaveAttribute('type', 'password');
    await input.fill(value);
  }
  await expect(page.getByRole('button', { name: 'Decline', exact: true })).toBeVisible();
  await screenshot(page, testInfo, 'studio-request.png');
  expect(settled, 'the long-poll ended before the person answered').toBe(false);
  await markDocument(page);

  await page.getByRole('button', { name: 'Save & Continue', exact: true }).click();
  await expect(page.getByText('Status: completed')).toBeVisible();
  await expect(page.getByText('Secrets have been stored securely.')).toBeVisible();
  await expectSameDocument(page, 'answering the request');
  await expect(page.getByRole('button', { name: 'Save & Continue', exact: true })).toHaveCount(0);
  await expect(page.getByLabel('OPENAI_API_KEY', { exact: true })).toHaveCount(0);
  await expect(page.getByLabel('SLACK_TOKEN', { exact: true })).toHaveCount(0);

  // The answer wakes the agent at once (not at the end of its 60 s timeout).
  await expect.poll(() => settled, { timeout: 10_000, message: 'the long-poll did not wake up' }).toBe(true);
  const woken = await waiting;
  expect(woken.status, woken.text).toBe(200);
  expect(woken.outcome).toBe('changed');
  expect(woken.run.status).toBe('completed');
  const keys = await agentSecretKeys(request, ws.id, token);
  expect(keys.keys).toEqual(
    expect.arrayContaining([
      { key: 'OPENAI_API_KEY', hasValue: true, global: false },
      { key: 'SLACK_TOKEN', hasValue: true, global: false },
    ]),
  );
  const stored = exportedValues(ws.id);
  expect(stored.get('OPENAI_API_KEY')).toBe(openai);
  expect(stored.get('SLACK_TOKEN')).toBe(slack);

  // Nothing is pending any more.
  await open(page, workspacePath(ws.id), true);
  await expect(page.getByText('No pending requests.')).toBeVisible();
  await expect(page.getByRole('link', { name: /^Request for / })).toHaveCount(0);

  const agentAnswers = [asked.text, woken.text, keys.text].map((body, i) => ({ url: `agent answer ${i}`, body }));
  await expectNoLeak(page, [openai, slack], [...(await traffic.bodies()), ...agentAnswers]);
});

test('a change made elsewhere shows without disturbing the row being edited', async ({ page, request }) => {
  const user = createUser();
  const ws = createWorkspace(user.username);
  const token = createToken(ws.id);
  await upsertSecret(request, ws.id, token, 'EDITED_KEY', canary('first'));
  const typing = canary('typing');

  const streamOpened = page.waitForResponse(isEventStream, { timeout: 15_000 });
  await signInAs(page, user, true);
  await open(page, workspacePath(ws.id), true);
  await streamOpened;
  await markDocument(page);
  const edited = secretRow(page, 'EDITED_KEY');
  await rowSummary(edited, 'Update').click();
  const field = page.getByLabel('New value for EDITED_KEY', { exact: true });
  await field.fill(typing);

  // An agent adds another key: its row appears, and the open form keeps what was typed.
  await upsertSecret(request, ws.id, token, 'ARRIVED_KEY', canary('arrived'));
  await expect(secretRow(page, 'ARRIVED_KEY')).toContainText('Value set');
  await expectSecretCount(page, 2);
  await expect(field).toBeVisible();
  await expect(field).toHaveValue(typing);
  await expectSameDocument(page, 'a change made elsewhere');

  // A change to the row itself renders it again, closed, from the new version.
  await upsertSecret(request, ws.id, token, 'EDITED_KEY', canary('second'));
  await expect(field).toBeHidden();
  await expect(field).toHaveValue('');
  await expect(edited).toContainText('Value set');
});

test('the quick start run ends with a markdown result', async ({ page, request }) => {
  const user = createUser();
  const ws = createWorkspace(user.username);
  const token = createToken(ws.id, AGENT_SCOPES);
  const traffic = await recordPageTraffic(page);
  const apiKey = canary('example');

  const started = await agentStartWorkflow(request, ws.id, token, 'secrets_example');
  expect(started.workflow).toBe('secrets_example');

  await signInAs(page, user, true);
  await open(page, runPath(ws.id, started.id), true);
  await expect(page.getByText('Status: waiting')).toBeVisible();
  await expect(page.getByLabel('EXAMPLE_SECRET', { exact: true })).toBeVisible();
  // Only one of the two: the other one stays missing.
  await page.getByLabel('EXAMPLE_API_KEY', { exact: true }).fill(apiKey);
  await page.getByRole('button', { name: 'Save & Continue', exact: true }).click();

  await expect(page.getByText('Status: completed')).toBeVisible();
  const table = page.getByRole('table');
  await expect(table).toBeVisible();
  const apiRow = table.getByRole('row').filter({ hasText: 'EXAMPLE_API_KEY' });
  await expect(apiRow).toHaveCount(1);
  await expect(apiRow).toContainText('Stored');
  const missingRow = table.getByRole('row').filter({ hasText: 'EXAMPLE_SECRET' });
  await expect(missingRow).toHaveCount(1);
  await expect(missingRow).toContainText('Missing');
  // Rendered, not shown as markdown source.
  await expect(page.getByText('|---|')).toHaveCount(0);

  const { run, text } = await agentReadRun(request, ws.id, token, started.id);
  expect(run.status).toBe('completed');
  expect(run.documents.map((d) => d.kind)).toContain('MarkdownDocument');
  const keys = await agentSecretKeys(request, ws.id, token);
  expect(keys.keys).toContainEqual({ key: 'EXAMPLE_API_KEY', hasValue: true, global: false });
  expect(keys.keys.some((k) => k.key === 'EXAMPLE_SECRET' && k.hasValue)).toBe(false);
  expect(exportedValues(ws.id).get('EXAMPLE_API_KEY')).toBe(apiKey);

  await expectNoLeak(page, [apiKey], [
    ...(await traffic.bodies()),
    { url: 'agent: read run', body: text },
    { url: 'agent: get_secret_keys', body: keys.text },
  ]);
});

test('declining a request cancels it', async ({ page, request }) => {
  const user = createUser();
  const ws = createWorkspace(user.username);
  const token = createToken(ws.id, AGENT_SCOPES);
  const { runId } = await agentRequestSecrets(request, ws.id, token, ['DECLINED_KEY']);

  await signInAs(page, user, true);
  await open(page, workspacePath(ws.id), true);
  const link = page.getByRole('link', { name: 'Request for DECLINED_KEY', exact: true });
  await expect(link).toBeVisible();
  await link.click();
  await expect(page).toHaveURL(exactPath(runPath(ws.id, runId)));
  await waitForHydration(page);
  await expect(page.getByText('Status: waiting')).toBeVisible();

  await page.getByRole('button', { name: 'Decline', exact: true }).click();
  await expect(page.getByText('Status: cancelled')).toBeVisible();
  await expect(page.getByRole('button', { name: 'Save & Continue', exact: true })).toHaveCount(0);
  expect((await agentReadRun(request, ws.id, token, runId)).run.status).toBe('cancelled');

  await open(page, workspacePath(ws.id), true);
  await expect(page.getByText('No pending requests.')).toBeVisible();
  await expect(page.getByRole('link', { name: 'Request for DECLINED_KEY', exact: true })).toHaveCount(0);
  const keys = await agentSecretKeys(request, ws.id, token);
  expect(keys.keys.some((k) => k.key === 'DECLINED_KEY' && k.hasValue)).toBe(false);
});

test('@nojs the request form works without JavaScript', async ({ page, request }) => {
  const user = createUser();
  const ws = createWorkspace(user.username);
  const token = createToken(ws.id, AGENT_SCOPES);
  const traffic = await recordPageTraffic(page);
  const value = canary('nojs');
  const reason = 'The nightly export job needs it.';
  const { runId } = await agentRequestSecrets(request, ws.id, token, ['NOJS_API_KEY'], { reason });

  // JavaScript is off in this project: plain form posts and server redirects.
  await signInAs(page, user, false);
  await open(page, runPath(ws.id, runId), false);
  await expect(page.getByText('Status: waiting')).toBeVisible();
  await expect(page.getByText(reason, { exact: true })).toBeVisible();
  const input = page.getByLabel('NOJS_API_KEY', { exact: true });
  await expect(input).toHaveAttribute('type', 'password');
  await input.fill(value);
  await page.getByRole('button', { name: 'Save & Continue', exact: true }).click();

  // The server redirects back to the run page.
  await expect(page).toHaveURL(exactPath(runPath(ws.id, runId)));
  await expect(page.getByText('Status: completed')).toBeVisible();
  await expect(page.getByRole('button', { name: 'Save & Continue', exact: true })).toHaveCount(0);

  const woken = await agentWaitForRun(request, ws.id, token, runId, 5);
  expect(woken.run.status).toBe('completed');
  const keys = await agentSecretKeys(request, ws.id, token);
  expect(keys.keys).toContainEqual({ key: 'NOJS_API_KEY', hasValue: true, global: false });
  expect(exportedValues(ws.id).get('NOJS_API_KEY')).toBe(value);
  await expectNoLeak(page, [value], [
    ...(await traffic.bodies()),
    { url: 'agent: wait', body: woken.text },
    { url: 'agent: get_secret_keys', body: keys.text },
  ]);
});

test('@nojs adding a secret works without JavaScript', async ({ page }) => {
  const user = createUser();
  const ws = createWorkspace(user.username);
  const traffic = await recordPageTraffic(page);
  const value = canary('nojs-add');

  await signInAs(page, user, false);
  await open(page, workspacePath(ws.id), false);
  await expect(page.getByText('No secrets yet.')).toBeVisible();
  await expect(page.getByRole('table', { name: 'Secrets', exact: true })).toHaveCount(0);

  await addSecret(page, 'NOJS_SECRET', value);
  // Post, then the server redirects back to the workspace page.
  await expect(page).toHaveURL(new RegExp(`/workspaces/${ws.id}(\\?.*)?$`));
  await expect(secretRow(page, 'NOJS_SECRET')).toContainText('Value set');
  await expect(secretRows(page)).toHaveCount(1);
  await expectSecretCount(page, 1);
  expect(exportedValues(ws.id).get('NOJS_SECRET')).toBe(value);
  await expectNoLeak(page, [value], await traffic.bodies());
});

test('an owner adds a viewer who can read but not change anything', async ({ page, request }) => {
  const owner = createUser();
  const viewer = createUser();
  const ws = createWorkspace(owner.username);
  const token = createToken(ws.id, AGENT_SCOPES);
  const { runId } = await agentRequestSecrets(request, ws.id, token, ['VIEWER_ASKED']);

  // The owner adds the viewer on the Members page.
  await signInAs(page, owner, true);
  await open(page, `/workspaces/${ws.id}/members`, true);
  await page.getByLabel('Username', { exact: true }).fill(viewer.username);
  await page.getByLabel('Role', { exact: true }).selectOption('viewer');
  await page.getByRole('button', { name: 'Add member', exact: true }).click();
  const row = page.getByRole('row').filter({ hasText: viewer.username });
  await expect(row).toContainText('viewer');
  await page.getByRole('button', { name: 'Sign out' }).click();
  await expect(page).toHaveURL(/\/sign-in/);

  // The viewer sees the workspace, its secrets and requests, but no way to change them.
  await signInAs(page, viewer, true);
  await page.getByRole('link', { name: ws.name, exact: true }).click();
  await expect(page).toHaveURL(exactPath(workspacePath(ws.id)));
  await expect(page.getByText('your role: viewer')).toBeVisible();
  await expect(page.getByRole('heading', { name: 'Add secret' })).toHaveCount(0);
  await expect(page.locator('summary')).toHaveCount(0);
  await expect(page.getByRole('link', { name: 'Members' })).toHaveCount(0);
  await page.getByRole('link', { name: 'Request for VIEWER_ASKED', exact: true }).click();
  await expect(page).toHaveURL(exactPath(runPath(ws.id, runId)));
  await waitForHydration(page);
  await page.getByLabel('VIEWER_ASKED', { exact: true }).fill(canary('viewer'));
  await page.getByRole('button', { name: 'Save & Continue', exact: true }).click();
  await expect(page.getByRole('alert')).toContainText('secrets:write');
  expect((await agentReadRun(request, ws.id, token, runId)).run.status).toBe("waiting");
});

test('an owner creates an API token that is shown once', async ({ page, request }) => {
  const owner = createUser();
  const ws = createWorkspace(owner.username);

  await signInAs(page, owner, true);
  await open(page, `/workspaces/${ws.id}/tokens`, true);
  await page.getByLabel('Name', { exact: true }).fill('ci-agent');
  await page.getByRole('button', { name: 'Create token', exact: true }).click();
  const shown = page.getByRole('status').locator('code');
  await expect(shown).toHaveText(/^lss_/);
  const tokenText = (await shown.innerText()).trim();
  const listed = await request.get(`/api/v1/workspaces/${ws.id}/secrets`, { headers: { Authorization: `Bearer ${tokenText}` } });
  expect(listed.status()).toBe(200);

  await page.reload();
  await waitForHydration(page);
  await expect(page.getByRole('row').filter({ hasText: 'ci-agent' })).toContainText('active');
  expect(await page.content()).not.toContain(tokenText);
  await page.getByRole('button', { name: 'Revoke ci-agent', exact: true }).click();
  await expect(page.getByRole('row').filter({ hasText: 'ci-agent' })).toContainText('revoked');
  const refused = await request.get(`/api/v1/workspaces/${ws.id}/secrets`, { headers: { Authorization: `Bearer ${tokenText}` } });
  expect(refused.status()).toBe(401);
});
