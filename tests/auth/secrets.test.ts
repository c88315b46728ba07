import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../bench/service.js';
import { KeyStore } from '../../src/auth/key-store.js';
import { connectDatabase } from '../../src/db/client.js';
import { applyMigrations } from '../../src/db/migrate.js';
import { startCymruWhois, type CymruWhoisDouble } from '../doubles/cymru-whois.js';
import { HttpUpstreamDouble, respond } from '../doubles/http-upstream.js';
import { upstreamEnv, writeTestMaxMind } from '../support/app.js';
import { buildDist, ROOT } from '../support/cli.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

const secret = (name: string) => `${name}-${randomBytes(8).toString('hex')}`;

/** Every secret of the run; each must appear nowhere in what the service and the command print or answer. */
const SECRETS = {
  greynoiseKey: secret('greynoise-key'),
  metricsToken: secret('metrics-token'),
  databasePassword: secret('pg-password'),
  redisPassword: secret('redis-password'),
};

/** All that the processes printed, and every answer (status line, headers and body) the service gave. */
const seen: string[] = [];

interface Run {
  status: number | null;
  output: string;
}

/** Runs a command of the repository to its end, keeping all it printed. */
function run(command: string, args: string[], env: Record<string, string>, timeoutMs = 30_000): Promise<Run> {
  const child = spawn(command, args, { cwd: ROOT, env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  return new Promise((resolve) =>
    child.once('close', (status) => {
      clearTimeout(timer);
      seen.push(output);
      resolve({ status, output });
    }),
  );
}

describe('secrets, at LOG_LEVEL=debug', () => {
  let database: TestDatabase;
  let cymru: CymruWhoisDouble;
  let greynoise: HttpUpstreamDouble;
  let dshield: HttpUpstreamDouble;
  let mmdbDir: string;
  let env: Record<string, string>;
  const tokens: Record<string, string> = {};

  beforeAll(async () => {
    await buildDist();
    database = await createTestDatabase();
    cymru = await startCymruWhois();
    greynoise = await HttpUpstreamDouble.start();
    dshield = await HttpUpstreamDouble.start();
    mmdbDir = await mkdtemp(join(tmpdir(), 'ipenrich-secrets-'));
    const files = await writeTestMaxMind(mmdbDir);
    // PostgreSQL and Redis here take any password (trust authentication, no requirepass): the secrets
    // travel every path a real password does, and the service works.
    const databaseUrl = new URL(database.url);
    databaseUrl.password = SECRETS.databasePassword;
    env = {
      LOG_LEVEL: 'debug',
      AUTH: 'keys',
      DATABASE_URL: databaseUrl.toString(),
      REDIS_URL: `redis://:${SECRETS.redisPassword}@127.0.0.1:6379`,
      REDIS_KEY_PREFIX: `ipenrich-test:${randomBytes(6).toString('hex')}:`,
      METRICS_TOKEN: SECRETS.metricsToken,
      GREYNOISE_API_KEY: SECRETS.greynoiseKey,
      ...upstreamEnv({ cymru, greynoise, dshield }, files),
      JOB_LEASE_SECONDS: '2',
    };
    const handle = connectDatabase(database.url);
    try {
      await applyMigrations(handle.pool);
      const store = new KeyStore(handle);
      const make = async (name: string, spec: Parameters<KeyStore['create']>[0]) => {
        tokens[name] = (await store.create(spec, new Date())).token;
      };
      await make('admin', { name: 'admin', scopes: ['admin'] });
      await make('lookup', { name: 'lookup', scopes: ['lookup'], ratePerMinute: 3 });
      await make('budget', { name: 'budget', scopes: ['enrich'], addressesPerDay: 1 });
      await make('revoked', { name: 'revoked', scopes: ['lookup'] });
      await store.revoke('revoked', new Date());
    } finally {
      await handle.close();
    }
  }, 120_000);

  afterAll(async () => {
    await Promise.all([cymru.close(), greynoise.close(), dshield.close()]);
    await rm(mmdbDir, { recursive: true, force: true });
    await database.drop();
  });

  it('never shows a secret: through every route and failure path, the failed boots and the key commands', { timeout: 120_000 }, async () => {
    const port = await freePort();
    const service = spawn(process.execPath, ['dist/server.js'], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', ...env, HOST: '127.0.0.1', PORT: String(port) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    service.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    service.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    const closed = new Promise<number | null>((resolve) => service.once('close', resolve));
    const base = `http://127.0.0.1:${port}`;
    const ask = async (method: string, path: string, headers: Record<string, string> = {}, body?: string) => {
      const response = await fetch(`${base}${path}`, { method, headers, body });
      const text = await response.text();
      seen.push(`${response.status} ${JSON.stringify([...response.headers])} ${text}`);
      return { status: response.status, text };
    };
    try {
      for (let tries = 0; ; tries += 1) {
        if ((await ask('GET', '/healthz').catch(() => undefined))?.status === 200) break;
        if (tries > 150) throw new Error(`the service did not start:\n${output}`);
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      const key = (name: string) => ({ authorization: `Bearer ${tokens[name]}` });
      const json = { 'content-type': 'application/json' };
      greynoise.respondTo('81.2.69.7', respond.json({ message: 'invalid api key' }, 401));

      expect((await ask('GET', '/readyz')).status).toBe(200);
      expect((await ask('GET', '/metrics')).status).toBe(401);
      expect((await ask('GET', '/metrics', { authorization: `Bearer ${SECRETS.greynoiseKey}` })).status).toBe(401);
      expect((await ask('GET', '/openapi.json')).status).toBe(200);
      expect((await ask('GET', '/ip/81.2.69.1', key('admin'))).status).toBe(200);
      expect((await ask('GET', '/ip/81.2.69.7', key('admin'))).status).toBe(200);
      expect((await ask('GET', '/ip/45.93.1.1', key('lookup'))).status).toBe(200);
      expect((await ask('GET', '/ip/example.com', key('admin'))).status).toBe(400);
      expect((await ask('GET', '/ip/%ZZ', key('admin'))).status).toBe(400);
      expect((await ask('GET', `/ip/${'1'.repeat(150)}`, key('admin'))).status).toBe(414);
      expect((await ask('GET', `/ip/10.0.0.1?api_key=${tokens.admin}`, key('admin'))).status).toBe(400);
      expect((await ask('GET', '/ip/10.0.0.1', { 'x-api-key': tokens.revoked! })).status).toBe(401);
      expect((await ask('GET', '/ip/10.0.0.1', { authorization: `Bearer ${SECRETS.metricsToken}` })).status).toBe(401);
      expect((await ask('GET', '/ip/10.0.0.1', { authorization: `Basic ${Buffer.from(`u:${SECRETS.redisPassword}`).toString('base64')}` })).status).toBe(401);
      expect((await ask('POST', '/enrich', { ...key('lookup'), ...json }, '{"ips":["10.0.0.1"]}')).status).toBe(403);
      for (let i = 0; i < 3; i += 1) await ask('GET', '/ip/10.0.0.2', key('lookup'));
      expect((await ask('GET', '/ip/10.0.0.2', key('lookup'))).status).toBe(429);
      expect((await ask('POST', '/enrich', { ...key('budget'), ...json }, '{"ips":["10.0.0.1","10.0.0.2"]}')).status).toBe(429);
      expect((await ask('POST', '/enrich', { ...key('admin'), ...json }, '{"ips":["81.2.69.1","45.93.1.2","not-an-ip"]}')).status).toBe(200);
      expect((await ask('POST', '/enrich', { ...key('admin'), ...json }, '{"ips":')).status).toBe(400);
      expect((await ask('POST', '/enrich', { ...key('admin'), 'content-type': 'text/plain' }, 'x')).status).toBe(415);
      const job = await ask('POST', '/jobs', { ...key('admin'), 'content-type': 'text/plain' }, '45.93.1.3\n81.2.69.2\n');
      expect(job.status).toBe(202);
      const { id } = JSON.parse(job.text) as { id: string };
      expect((await ask('GET', `/jobs/${id}`, key('admin'))).status).toBe(200);
      expect((await ask('GET', `/jobs/${id}/results`, { ...key('admin'), accept: 'text/csv' })).status).toBe(200);
      expect((await ask('GET', '/jobs', key('admin'))).status).toBe(200);
      expect((await ask('GET', '/jobs/not-a-uuid', key('admin'))).status).toBe(400);
      expect([200, 409]).toContain((await ask('DELETE', `/jobs/${id}`, key('admin'))).status);
      expect((await ask('DELETE', '/ip/81.2.69.1', key('admin'))).status).toBe(200);
      expect((await ask('DELETE', '/nothing', key('admin'))).status).toBe(404);
      expect((await ask('GET', '/readyz')).text).toMatch(/"redis":\{"status":"ok"\}/);
      const metrics = await ask('GET', '/metrics', { authorization: `Bearer ${SECRETS.metricsToken}` });
      expect(metrics.status).toBe(200);
      expect(output).toMatch(/"msg":"request completed"/);
      expect(output).toContain('[redacted]');
    } finally {
      service.kill('SIGTERM');
      await closed;
      seen.push(output);
    }

    // The key commands, on the same settings.
    expect((await run(process.execPath, ['dist/cli/main.js', 'keys', 'list'], env)).status).toBe(0);
    expect((await run(process.execPath, ['dist/cli/main.js', 'keys', 'revoke', 'lookup'], env)).status).toBe(0);
    expect((await run(process.execPath, ['dist/cli/main.js', 'keys', 'revoke', 'lookup'], { ...env, REDIS_URL: `redis://:${SECRETS.redisPassword}@127.0.0.1:1` })).status).toBe(2);

    // Boots that fail on a setting, or on a resource they cannot reach: one line, naming the variable.
    const failedBoots: Array<[Record<string, string>, RegExp]> = [
      [{ GREYNOISE_API_KEY: `${SECRETS.greynoiseKey}é` }, /^configuration error: GREYNOISE_API_KEY=\(\d+ characters, not shown\) is invalid/],
      [{ METRICS_TOKEN: 'metrics-short' }, /^configuration error: METRICS_TOKEN=/],
      [{ REDIS_URL: `redis//:${SECRETS.redisPassword}@127.0.0.1:6379` }, /^configuration error: REDIS_URL="redis\/\/:\*\*\*@127\.0\.0\.1:6379" is invalid/],
      [{ DATABASE_URL: `postgresq://postgres:${SECRETS.databasePassword}@127.0.0.1/x` }, /^configuration error: DATABASE_URL="postgresq:\/\/postgres:\*\*\*@127\.0\.0\.1\/x" is invalid/],
      [{ DATABASE_URL: `postgresql://postgres:${SECRETS.databasePassword}@127.0.0.1:1/x`, DATABASE_TIMEOUT_MS: '1000' }, /^boot failed: cannot reach the database at DATABASE_URL/m],
    ];
    for (const [settings, message] of failedBoots) {
      const boot = await run(process.execPath, ['dist/server.js'], { ...env, ...settings, PORT: String(await freePort()) });
      expect(boot.status, boot.output).toBe(1);
      expect(boot.output.split('\n').find((line) => /^(configuration error|boot failed)/.test(line))).toMatch(message);
    }

    for (const [name, value] of Object.entries(SECRETS)) {
      for (const text of seen) expect(text.includes(value), `${name} shown in:\n${text.slice(0, 2000)}`).toBe(false);
    }
    for (const [name, token] of Object.entries(tokens)) {
      const secretPart = token.slice(13);
      for (const text of seen) expect(text.includes(secretPart), `the ${name} key shown in:\n${text.slice(0, 2000)}`).toBe(false);
    }
  });

  it('npm start with a mistyped DATABASE_URL scheme stops with the one-line error, without rebuilding', { timeout: 60_000 }, async () => {
    const started = await run('npm', ['start', '--silent'], { ...env, DATABASE_URL: `postgresq://postgres:${SECRETS.databasePassword}@127.0.0.1/x` });
    expect(started.status).not.toBe(0);
    expect(started.output).toMatch(/^configuration error: DATABASE_URL="postgresq:\/\/postgres:\*\*\*@127\.0\.0\.1\/x" is invalid/m);
    expect(started.output).not.toMatch(/prisma|binaries/i);
    expect(started.output).not.toContain(SECRETS.databasePassword);
  });
});
