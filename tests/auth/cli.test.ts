import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from '../support/app.js';
import { buildDist, runCli } from '../support/cli.js';
import { asKey, expectProblem } from './support.js';

describe('ip-enrich keys', () => {
  let harness: Harness;
  let env: Record<string, string>;
  beforeAll(async () => {
    await buildDist();
    const prefix = `ipenrich-test:${randomBytes(6).toString('hex')}:`;
    harness = await startHarness({ config: { AUTH: 'keys', REDIS_URL: 'redis://127.0.0.1:6379', REDIS_KEY_PREFIX: prefix } });
    env = { DATABASE_URL: harness.database.url, REDIS_URL: 'redis://127.0.0.1:6379', REDIS_KEY_PREFIX: prefix };
  }, 120_000);
  afterAll(async () => harness.close());

  it('creates a key on the configured database, printing the token alone on standard output, once', async () => {
    const created = await runCli(['keys', 'create', '--name', 'soc', '--scopes', 'lookup,enrich,jobs', '--rate', '600/min', '--addresses', '200000/day'], { env });
    expect(created.status, created.stderr).toBe(0);
    const token = created.stdout.trim();
    expect(token).toMatch(/^ipe_[A-Za-z0-9_-]{8}_[A-Za-z0-9_-]{43}$/);
    expect(created.stderr).toMatch(/created key ipe_\S{8} "soc" \(scopes lookup,enrich,jobs; 600\/min, 200000 addresses\/day\)/);
    expect((await asKey(harness.app, token, { method: 'GET', url: '/ip/10.0.0.1' })).statusCode).toBe(200);

    const listed = await runCli(['keys', 'list'], { env });
    expect(listed.status).toBe(0);
    expect(listed.stdout).toMatch(new RegExp(`^${token.slice(0, 12)}\\s+soc\\s+lookup,enrich,jobs\\s+600\\s+200000\\s+\\S+Z\\s+-\\s+-$`, 'm'));
    expect(listed.stdout).not.toContain(token.slice(13));
    const json = JSON.parse((await runCli(['keys', 'list', '--json'], { env })).stdout) as Array<{ name: string; hash?: string }>;
    expect(json.find((key) => key.name === 'soc')).toMatchObject({ prefix: token.slice(0, 12), scopes: ['lookup', 'enrich', 'jobs'] });
    expect(json[0]).not.toHaveProperty('hash');
  });

  it('revokes by name or prefix; the running service refuses the key at once', async () => {
    const token = (await runCli(['keys', 'create', '--name', 'temp', '--scopes', 'lookup'], { env })).stdout.trim();
    expect((await asKey(harness.app, token, { method: 'GET', url: '/ip/10.0.0.1' })).statusCode).toBe(200);
    const revoked = await runCli(['keys', 'revoke', token.slice(0, 12)], { env });
    expect(revoked.status, revoked.stderr).toBe(0);
    expect(revoked.stderr).toMatch(/revoked key ipe_\S{8} "temp"/);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expectProblem(await asKey(harness.app, token, { method: 'GET', url: '/ip/10.0.0.1' }), 401, 'unauthorized');
    const again = await runCli(['keys', 'revoke', 'temp'], { env });
    expect(again.status).toBe(2);
    expect(again.stderr).toMatch(/no active key has the prefix, id or name "temp"/);
  });

  it.each([
    [['keys', 'create', '--name', 'x', '--scopes', 'lookup,everything'], /expected a comma-separated list of lookup, enrich, jobs, admin/],
    [['keys', 'create', '--name', 'x', '--scopes', 'lookup', '--rate', 'fast'], /expected a count per min, like 600\/min/],
    [['keys', 'create', '--scopes', 'lookup'], /--name/],
  ])('refuses %j with exit status 2', async (args, message) => {
    const run = await runCli(args, { env });
    expect(run.status).toBe(2);
    expect(run.stderr).toMatch(message);
  });
});
