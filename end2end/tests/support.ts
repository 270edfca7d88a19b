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
