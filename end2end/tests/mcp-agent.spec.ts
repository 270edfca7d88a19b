import { spawn } from 'node:child_process';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect, test } from '@playwright/test';
import { AGENT_SCOPES, createToken, createUser, createWorkspace, randomHex, signIn, waitForHydration } from './support';

// The example agent (examples/mcp_agent.rs) runs its LLM tool-calling loop against a fake
// OpenAI-compatible chat endpoint on loopback, connected to this server over MCP. The fake
// model scripts the tool calls (get_secret_keys, request_secrets, wait_for_secrets when still
// pending) and records every byte it is sent. The person opens the link the agent prints,
// enters a canary in Chromium, and the waiting call completes; the canary never reaches the
// model, in any message or tool result.

interface ChatMessage {
  role: string;
  content?: string | null;
  tool_call_id?: string;
  tool_calls?: { id: string; function: { name: string; arguments: string } }[];
}

/** The scripted model: decides the next reply from the conversation it is sent. */
function nextReply(messages: ChatMessage[], key: string): object {
  const called = new Map<string, string>();
  for (const m of messages) for (const c of m.tool_calls ?? []) called.set(c.id, c.function.name);
  const last = messages[messages.length - 1];
  const call = (name: string, args: object) => ({
    role: 'assistant',
    content: null,
    tool_calls: [{ id: `call_${randomHex(4)}`, type: 'function', function: { name, arguments: JSON.stringify(args) } }],
  });
  const say = (content: string) => ({ role: 'assistant', content });
  if (last.role !== 'tool') return call('get_secret_keys', {});
  const tool = called.get(last.tool_call_id ?? '');
  const answer = JSON.parse(last.content ?? '{}') as { structured?: { status?: string; workflowId?: string; keys?: { key: string; hasValue: boolean }[] } };
  if (tool === 'get_secret_keys') {
    const stored = (answer.structured?.keys ?? []).some((k) => k.key === key && k.hasValue);
    if (stored) return say(`${key} is already stored.`);
    return call('request_secrets', { reason: 'The deploy step calls the provider API.', variables: [{ key, description: 'The provider API key' }] });
  }
  if (answer.structured?.status === 'completed') return say(`Stored: ${key}.`);
  if (answer.structured?.status === 'pending') return call('wait_for_secrets', { workflowId: answer.structured.workflowId, timeoutSeconds: 60 });
  return say(`The request ended: ${answer.structured?.status ?? 'unknown'}.`);
}

async function body(request: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** Starts the fake chat endpoint; every request body it gets is kept in `received`. */
async function fakeModel(key: string): Promise<{ server: Server; url: string; received: string[] }> {
  const received: string[] = [];
  const server = createServer(async (request, response) => {
    const text = await body(request);
    received.push(`${request.method} ${request.url}\n${JSON.stringify(request.headers)}\n${text}`);
    if (request.method !== 'POST' || !request.url?.endsWith('/chat/completions')) {
      response.writeHead(404).end();
      return;
    }
    const { messages } = JSON.parse(text) as { messages: ChatMessage[] };
    const message = nextReply(messages, key);
    response.writeHead(200, { 'content-type': 'application/json' });
    response.end(JSON.stringify({ id: 'chatcmpl-fake', object: 'chat.completion', choices: [{ index: 0, message, finish_reason: 'stop' }] }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { server, url: `http://127.0.0.1:${port}/v1`, received };
}

test('the example agent gets a key from the person over MCP and the model never sees it', async ({ page, baseURL }) => {
  test.setTimeout(120_000);
  const agentBin = process.env.AGENT_BIN;
  if (!agentBin) throw new Error('AGENT_BIN is not set: it must be the path of the built mcp_agent example');
  const user = createUser();
  const ws = createWorkspace(user.username);
  const token = createToken(ws.id, AGENT_SCOPES, 'example-agent');
  const key = `DEPLOY_KEY_${randomHex(3).toUpperCase()}`;
  const canary = `canary-${randomHex(12)}`;
  const model = await fakeModel(key);

  await page.goto('/sign-in');
  await waitForHydration(page);
  await signIn(page, user);
  await expect(page).toHaveURL(/\/workspaces$/);

  const agent = spawn(agentBin, [key], {
    env: {
      PATH: process.env.PATH ?? '',
      LOOPSTACK_SECRETS_URL: baseURL ?? '',
      LOOPSTACK_SECRETS_TOKEN: token,
      OPENAI_BASE_URL: model.url,
      OPENAI_API_KEY: 'fake-key',
      OPENAI_MODEL: 'scripted',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  agent.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
  agent.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  const exited = new Promise<number | null>((resolve) => agent.on('exit', resolve));

  try {
    await expect.poll(() => /Open this link to enter them: (\S+)/.exec(stdout)?.[1], { timeout: 30_000, message: `agent stdout:\n${stdout}\nstderr:\n${stderr}` }).toBeTruthy();
    const link = /Open this link to enter them: (\S+)/.exec(stdout)![1];
    expect(new URL(link).pathname).toMatch(new RegExp(`^/workspaces/${ws.id}/runs/[0-9a-f-]{36}$`));
    expect(link, 'the link carries no credential').not.toContain(token);

    await page.goto(link);
    await waitForHydration(page);
    await expect(page.getByText('The deploy step calls the provider API.')).toBeVisible();
    await page.getByLabel(key, { exact: true }).fill(canary);
    await page.getByRole('button', { name: 'Save & Continue', exact: true }).click();

    expect(await exited, `agent stdout:\n${stdout}\nstderr:\n${stderr}`).toBe(0);
  } finally {
    agent.kill();
    model.server.close();
  }

  expect(stdout).toContain(`Stored: ${key}.`);
  const sent = model.received.join('\n');
  expect(sent, 'the tool results reached the model').toContain('Secrets have been stored securely by the user.');
  expect(sent).toContain(key);
  expect(sent, 'the value never reached the model').not.toContain(canary);
  expect(sent, 'nor its base64').not.toContain(Buffer.from(canary).toString('base64'));
  expect(stdout + stderr).not.toContain(canary);
});
