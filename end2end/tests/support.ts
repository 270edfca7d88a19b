// Fixtures for the end-to-end tests, created through the product's own CLI
// (LOOPSTACK_BIN) and REST API. The test script has already exported the
// environment the CLI needs (database path, master key, ...): it is passed
// through unchanged.
import { execFileSync } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { expect, type APIRequestContext, type Page } from '@playwright/test';

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const PASSWORD_CHARS = 'ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789';

export interface TestUser {
  username: string;
  password: string;
}

export interface TestWorkspace {
  id: string;
  name: string;
}

export interface UpsertedSecret {
  id: string;
  key: string;
  hasValue: boolean;
  updatedAt: string;
}

export function randomHex(bytes = 6): string {
  return randomBytes(bytes).toString('hex');
}

/** `e2e_<hex>`: letters, digits and underscore only, well inside 3-64 chars. */
export function uniqueUsername(): string {
  return `e2e_${randomHex(6)}`;
}

/** 20 random alphanumeric characters. */
export function randomPassword(length = 20): string {
  let out = '';
  for (let i = 0; i < length; i++) out += PASSWORD_CHARS[randomInt(PASSWORD_CHARS.length)];
  return out;
}

function loopstackBin(): string {
  const bin = process.env.LOOPSTACK_BIN;
  if (!bin) {
    throw new Error('LOOPSTACK_BIN is not set: it must be the path of the loopstack-secrets binary');
  }
  return bin;
}

/** Runs `LOOPSTACK_BIN ...args` and returns its stdout; throws with stdout/stderr on failure. */
export function runCli(args: string[], input?: string): string {
  const bin = loopstackBin();
  try {
    return execFileSync(bin, args, {
      env: process.env,
      input: input ?? '',
      encoding: 'utf8',
      stdio: ['pipe', 'pipe', 'pipe'],
      timeout: 30_000,
    });
  } catch (err) {
    const e = err as { status?: number | null; signal?: string | null; stdout?: string; stderr?: string; message?: string };
    // Never echo stdin (it may hold a password).
    throw new Error(
      `${bin} ${args.join(' ')} failed (status ${e.status ?? '?'}, signal ${e.signal ?? 'none'}): ${e.message ?? ''}\n` +
        `--- stdout ---\n${e.stdout ?? ''}\n--- stderr ---\n${e.stderr ?? ''}`,
    );
  }
}

/** The last non-empty stdout line (earlier lines may be log noise). */
export function lastLine(stdout: string): string {
  const lines = stdout
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l.length > 0);
  if (lines.length === 0) throw new Error('the command printed nothing on stdout');
  return lines[lines.length - 1];
}

/** `user create <USERNAME> --password-stdin`, password on stdin. */
export function createUser(): TestUser {
  const user: TestUser = { username: uniqueUsername(), password: randomPassword() };
  runCli(['user', 'create', user.username, '--password-stdin'], `${user.password}\n`);
  return user;
}

/** `workspace create <NAME> --owner <USERNAME>`; the id (a UUID) is the last stdout line. */
export function createWorkspace(owner: string, name = `e2e-ws-${randomHex(6)}`): TestWorkspace {
  const id = lastLine(runCli(['workspace', 'create', name, '--owner', owner]));
  if (!UUID_RE.test(id)) throw new Error(`workspace create did not end with a UUID line, got: ${JSON.stringify(id)}`);
  return { id, name };
}

/** `token create --workspace <ID> --name <NAME> --scope ...`; the token is the last stdout line. */
export function createToken(
  workspaceId: string,
  scopes: string[] = ['secrets:write', 'secrets:list'],
  name = `e2e-token-${randomHex(4)}`,
): string {
  const args = ['token', 'create', '--workspace', workspaceId, '--name', name];
  for (const scope of scopes) args.push('--scope', scope);
  const token = lastLine(runCli(args));
  if (/\s/.test(token) || token.length < 16) throw new Error('token create did not print a plausible token on its last line');
  return token;
}

/**
 * PUT /api/v1/workspaces/{ws}/secrets/upsert with a bearer token.
 * `request` is Playwright's `request` fixture (its baseURL is the config's).
 */
export async function upsertSecret(
  request: APIRequestContext,
  workspaceId: string,
  token: string,
  key: string,
  value: string,
): Promise<UpsertedSecret> {
  const res = await request.put(`/api/v1/workspaces/${workspaceId}/secrets/upsert`, {
    headers: { Authorization: `Bearer ${token}` },
    data: { key, value },
  });
  const text = await res.text();
  expect(res.status(), `upsert ${key}: ${text}`).toBe(200);
  const body = JSON.parse(text) as UpsertedSecret;
  expect(body.key).toBe(key);
  expect(body.hasValue).toBe(value.length > 0);
  expect(typeof body.id).toBe('string');
  expect(typeof body.updatedAt).toBe('string');
  // The API must never echo a secret value back.
  if (value.length > 0) expect(text).not.toContain(value);
  return body;
}

/** Waits until the client bundle has hydrated (set by the app's hydrate() entry). */
export async function waitForHydration(page: Page): Promise<void> {
  await page.waitForSelector('body[data-hydrated="true"]');
}

/** True for content types whose bodies we read when looking for leaked secrets. */
export function isTextual(contentType: string | undefined): boolean {
  if (!contentType) return false;
  const ct = contentType.toLowerCase();
  return (
    ct.startsWith('text/') ||
    ct.includes('json') ||
    ct.includes('javascript') ||
    ct.includes('xml') ||
    ct.includes('x-www-form-urlencoded')
  );
}

/**
 * Records the body of every textual response the page receives.
 * Call `bodies()` at the end to await them all; unreadable bodies (redirects,
 * aborted or evicted responses) are skipped.
 */
export function collectResponseBodies(page: Page): { bodies: () => Promise<{ url: string; body: string }[]> } {
  const pending: Promise<{ url: string; body: string } | null>[] = [];
  page.on('response', (response) => {
    if (!isTextual(response.headers()['content-type'])) return;
    pending.push(
      response.text().then(
        (body) => ({ url: response.url(), body }),
        () => null,
      ),
    );
  });
  return {
    bodies: async () => {
      const all = await Promise.all(pending);
      return all.filter((b): b is { url: string; body: string } => b !== null);
    },
  };
}

/** Fills the sign-in form by its labels and submits it. */
export async function signIn(page: Page, user: TestUser): Promise<void> {
  await page.getByLabel('Username', { exact: true }).fill(user.username);
  await page.getByLabel('Password', { exact: true }).fill(user.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

// ---------------------------------------------------------------------------
// Studio helpers: pages that keep a server-sent event stream open, the agent's
// side of the REST API (bearer token), and the CLI export for checking what a
// form really stored.
// ---------------------------------------------------------------------------

export interface RecordedBody {
  url: string;
  body: string;
}

/** True for a response that is a server-sent event stream (it never ends while the page is open). */
export function isEventStream(response: { headers(): Record<string, string> }): boolean {
  return (response.headers()['content-type'] ?? '').toLowerCase().startsWith('text/event-stream');
}

/**
 * Like collectResponseBodies, for pages that listen to a server-sent event stream: an
 * event-stream body never ends while the page is open, so it is not awaited (that would hang
 * `bodies()`); instead every message the page's EventSource receives is recorded, through the
 * Chrome DevTools Protocol (Chromium only), as a body of its own (url `event-stream:<event>`).
 * Call before the first navigation; `bodies()` awaits every other textual body.
 */
export async function recordPageTraffic(page: Page): Promise<{
  bodies: () => Promise<RecordedBody[]>;
  eventStreamUrls: () => string[];
}> {
  const pending: Promise<RecordedBody | null>[] = [];
  const messages: RecordedBody[] = [];
  const streams: string[] = [];
  page.on('response', (response) => {
    if (isEventStream(response)) {
      streams.push(response.url());
      return;
    }
    if (!isTextual(response.headers()['content-type'])) return;
    pending.push(
      response.text().then(
        (body) => ({ url: response.url(), body }),
        () => null,
      ),
    );
  });
  const cdp = await page.context().newCDPSession(page);
  cdp.on('Network.eventSourceMessageReceived', (event) => {
    messages.push({ url: `event-stream:${event.eventName}`, body: event.data });
  });
  await cdp.send('Network.enable');
  return {
    bodies: async () => {
      const all = await Promise.all(pending);
      return [...all.filter((b): b is RecordedBody => b !== null), ...messages];
    },
    eventStreamUrls: () => [...streams],
  };
}

/** Scopes of an agent token that may ask for secrets and wait for the answer. */
export const AGENT_SCOPES = ['tools:call', 'workflows:run', 'secrets:list', 'secrets:write'];

export interface RunDocumentJson {
  id: string;
  kind: string;
  content: unknown;
}

/** The parts of a workflow run (`GET .../workflows/{id}`) the tests look at. */
export interface WorkflowRunJson {
  id: string;
  workflow: string;
  place: string;
  status: string;
  result: unknown;
  transitions: string[];
  documents: RunDocumentJson[];
}

function bearer(token: string): Record<string, string> {
  return { Authorization: `Bearer ${token}` };
}

function parseJson<T>(what: string, text: string): T {
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new Error(`${what}: the answer is not JSON: ${text.slice(0, 500)}`);
  }
}

/** What a request tells the person: a reason, and per key a description and an https help link. */
export interface RequestContext {
  reason?: string;
  keys?: Record<string, { description?: string; helpUrl?: string }>;
}

/**
 * The agent calls the `request_secrets` tool for `keys` (in this order), with `context` if
 * given; returns the id of the run to wait on and the raw answer (for leak checks). The answer
 * names the keys only, context or not.
 */
export async function agentRequestSecrets(
  request: APIRequestContext,
  workspaceId: string,
  token: string,
  keys: string[],
  context: RequestContext = {},
): Promise<{ runId: string; text: string }> {
  const variables = keys.map((key) => ({ key, ...(context.keys?.[key] ?? {}) }));
  const args = context.reason === undefined ? { variables } : { reason: context.reason, variables };
  const res = await request.post(`/api/v1/workspaces/${workspaceId}/tools/request_secrets`, {
    headers: bearer(token),
    data: { args },
  });
  const text = await res.text();
  expect(res.status(), `request_secrets: ${text}`).toBe(200);
  const body = parseJson<{ data: { variables: { key: string }[] }; pending?: { workflowId?: string } }>('request_secrets', text);
  expect(body.data.variables).toEqual(keys.map((key) => ({ key })));
  const runId = body.pending?.workflowId;
  expect(runId, `request_secrets names no run to wait on: ${text}`).toMatch(UUID_RE);
  return { runId: runId as string, text };
}

/**
 * The agent long-polls `GET .../workflows/{id}/wait?timeout=S`. The HTTP timeout is longer
 * than the server's so a missed wake-up shows as the server's own answer.
 */
export async function agentWaitForRun(
  request: APIRequestContext,
  workspaceId: string,
  token: string,
  runId: string,
  timeoutSeconds = 60,
): Promise<{ status: number; outcome: string | undefined; run: WorkflowRunJson; text: string }> {
  const res = await request.get(`/api/v1/workspaces/${workspaceId}/workflows/${runId}/wait?timeout=${timeoutSeconds}`, {
    headers: bearer(token),
    timeout: (timeoutSeconds + 15) * 1000,
  });
  const text = await res.text();
  return { status: res.status(), outcome: res.headers()['x-wait-outcome'], run: parseJson<WorkflowRunJson>('wait', text), text };
}

/** `GET .../workflows/{id}`. */
export async function agentReadRun(
  request: APIRequestContext,
  workspaceId: string,
  token: string,
  runId: string,
): Promise<{ run: WorkflowRunJson; text: string }> {
  const res = await request.get(`/api/v1/workspaces/${workspaceId}/workflows/${runId}`, { headers: bearer(token) });
  const text = await res.text();
  expect(res.status(), `read run: ${text}`).toBe(200);
  return { run: parseJson<WorkflowRunJson>('read run', text), text };
}

/** The agent calls `get_secret_keys`: `[{key, hasValue}]`. */
export async function agentSecretKeys(
  request: APIRequestContext,
  workspaceId: string,
  token: string,
): Promise<{ keys: { key: string; hasValue: boolean; global: boolean }[]; text: string }> {
  const res = await request.post(`/api/v1/workspaces/${workspaceId}/tools/get_secret_keys`, {
    headers: bearer(token),
    data: {},
  });
  const text = await res.text();
  expect(res.status(), `get_secret_keys: ${text}`).toBe(200);
  const body = parseJson<{ data: { key: string; hasValue: boolean; global: boolean }[] }>('get_secret_keys', text);
  return { keys: body.data, text };
}

/** `POST .../workflows` `{workflow, args?}` → 201 run. */
export async function agentStartWorkflow(
  request: APIRequestContext,
  workspaceId: string,
  token: string,
  workflow: string,
  args?: unknown,
): Promise<WorkflowRunJson> {
  const data: Record<string, unknown> = { workflow };
  if (args !== undefined) data.args = args;
  const res = await request.post(`/api/v1/workspaces/${workspaceId}/workflows`, { headers: bearer(token), data });
  const text = await res.text();
  expect(res.status(), `start ${workflow}: ${text}`).toBe(201);
  const run = parseJson<WorkflowRunJson>(`start ${workflow}`, text);
  expect(run.id).toMatch(UUID_RE);
  return run;
}

/**
 * `export --workspace ID --format dotenv`, parsed into key → value: what is really stored (the
 * test's own canaries; never shown to a page). Lines are `KEY='value'`, single-quoted as a shell
 * word, with `'\''` standing for a quote; a value may span lines.
 */
export function exportedValues(workspaceId: string): Map<string, string> {
  const out = runCli(['export', '--workspace', workspaceId, '--format', 'dotenv']);
  const values = new Map<string, string>();
  const entry = /^([A-Za-z_][A-Za-z0-9_]*)=((?:'[^']*'|\\')+)$/gm;
  for (const m of out.matchAll(entry)) {
    values.set(m[1], m[2].replace(/'([^']*)'|\\'/g, (_, quoted: string | undefined) => quoted ?? "'"));
  }
  return values;
}

/** Signs `user` in and opens the page of `workspaceId`, hydrated. */
export async function openWorkspacePage(page: Page, user: TestUser, workspaceId: string): Promise<void> {
  await page.goto('/sign-in');
  await waitForHydration(page);
  await signIn(page, user);
  await expect(page).toHaveURL(/\/workspaces$/);
  await page.goto(`/workspaces/${workspaceId}`);
  await waitForHydration(page);
}
