import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KeyStore } from '../../src/auth/key-store.js';
import { startHarness, startHarnessBehindProxy, type Harness } from '../support/app.js';
import type { TestDatabase } from '../support/database.js';
import type { TcpProxy } from '../support/tcp-proxy.js';
import { asKey, bearer, createKey, expectProblem } from './support.js';

describe('AUTH=keys', () => {
  let harness: Harness;
  const tokens: Record<string, string> = {};
  beforeAll(async () => {
    harness = await startHarness({ config: { AUTH: 'keys', METRICS_TOKEN: 'metrics-token-0123456789' } });
    for (const scopes of [['lookup'], ['enrich'], ['jobs'], ['admin'], ['lookup', 'jobs']] as const) {
      tokens[scopes.join('+')] = (await createKey(harness.app, { name: scopes.join('+'), scopes })).token;
    }
  });
  afterAll(async () => harness.close());

  it('answers 401 with WWW-Authenticate to a request without a key, an unknown key or a malformed header', async () => {
    const missing = await harness.app.inject({ method: 'GET', url: '/ip/10.0.0.1' });
    expect(expectProblem(missing, 401, 'unauthorized').detail).toMatch(/needs an API key/);
    expect(missing.headers['www-authenticate']).toMatch(/^Bearer realm="ip-enrich"/);
    const unknown = await asKey(harness.app, `ipe_AAAAAAAA_${'A'.repeat(43)}`, { method: 'GET', url: '/ip/10.0.0.1' });
    expect(expectProblem(unknown, 401, 'unauthorized').detail).toMatch(/unknown or has been revoked/);
    expect(unknown.headers['www-authenticate']).toMatch(/error="invalid_token"/);
    const basic = await harness.app.inject({ method: 'GET', url: '/ip/10.0.0.1', headers: { authorization: 'Basic dXNlcjpwdw==' } });
    expectProblem(basic, 401, 'unauthorized');
  });

  it.each([
    ['lookup', 'GET', '/ip/10.0.0.1', undefined],
    ['enrich', 'POST', '/enrich', { ips: ['10.0.0.1'] }],
    ['jobs', 'GET', '/jobs', undefined],
  ] as const)('lets the %s scope (and admin) through %s %s, and answers 403 to a key without it', async (scope, method, url, payload) => {
    expect((await asKey(harness.app, tokens[scope], { method, url, payload })).statusCode).toBe(200);
    expect((await asKey(harness.app, tokens.admin, { method, url, payload })).statusCode).toBe(200);
    const other = scope === 'lookup' ? tokens.enrich : tokens.lookup;
    expect(expectProblem(await asKey(harness.app, other, { method, url, payload }), 403, 'forbidden').detail).toMatch(
      new RegExp(`lacks the ${scope} scope`),
    );
  });

  it('takes the key in X-API-Key as well', async () => {
    const response = await harness.app.inject({ method: 'GET', url: '/ip/10.0.0.1', headers: { 'x-api-key': tokens.lookup! } });
    expect(response.statusCode).toBe(200);
  });

  it('keeps /healthz and /readyz open, and asks for METRICS_TOKEN on /metrics', async () => {
    expect((await harness.app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
    expect((await harness.app.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(200);
    expectProblem(await harness.app.inject({ method: 'GET', url: '/metrics' }), 401, 'unauthorized');
    expectProblem(await asKey(harness.app, tokens.admin, { method: 'GET', url: '/metrics' }), 401, 'unauthorized');
    const scraped = await harness.app.inject({ method: 'GET', url: '/metrics', headers: bearer('metrics-token-0123456789') });
    expect(scraped.statusCode).toBe(200);
    expect(scraped.body).toMatch(/ipenrich_auth_refused_total\{reason="missing"\} [1-9]/);
  });

  it("shows a key its own jobs only, and an admin key every job", async () => {
    const submit = async (token: string) => {
      const response = await asKey(harness.app, token, { method: 'POST', url: '/jobs', payload: { ips: ['10.0.0.1'] } });
      expect(response.statusCode).toBe(202);
      return response.json<{ id: string }>().id;
    };
    const mine = await submit(tokens.jobs!);
    const theirs = await submit(tokens['lookup+jobs']!);
    const listed = (token: string) =>
      asKey(harness.app, token, { method: 'GET', url: '/jobs' }).then((response) => response.json<{ jobs: Array<{ id: string }> }>().jobs.map((job) => job.id));
    expect(await listed(tokens.jobs!)).toEqual([mine]);
    expect(await listed(tokens.admin!)).toEqual(expect.arrayContaining([mine, theirs]));
    for (const [method, url] of [
      ['GET', `/jobs/${theirs}`],
      ['GET', `/jobs/${theirs}/results`],
      ['DELETE', `/jobs/${theirs}`],
    ] as const) {
      expectProblem(await asKey(harness.app, tokens.jobs, { method, url }), 404, 'job-not-found');
    }
    expect((await asKey(harness.app, tokens.jobs, { method: 'GET', url: `/jobs/${mine}` })).statusCode).toBe(200);
    expect((await asKey(harness.app, tokens.admin, { method: 'GET', url: `/jobs/${theirs}` })).statusCode).toBe(200);
  });

  it('refuses a revoked key, and records when a key was last used', async () => {
    const key = await createKey(harness.app, { name: 'short-lived', scopes: ['lookup'] });
    expect((await asKey(harness.app, key.token, { method: 'GET', url: '/ip/10.0.0.1' })).statusCode).toBe(200);
    const store = new KeyStore(harness.app.database);
    await store.revoke(key.prefix, new Date());
    await harness.app.invalidations.publish({ kind: 'key-revoked', keyId: key.id });
    expectProblem(await asKey(harness.app, key.token, { method: 'GET', url: '/ip/10.0.0.1' }), 401, 'unauthorized');
    await harness.restart();
    const listed = (await new KeyStore(harness.app.database).list()).find((row) => row.id === key.id);
    expect(listed).toMatchObject({ revokedAt: expect.any(Date), lastUsedAt: expect.any(Date) });
  });
});

describe('per-key limits', () => {
  let harness: Harness;
  beforeAll(async () => {
    harness = await startHarness({ config: { AUTH: 'keys' } });
  });
  afterAll(async () => harness.close());

  it('answers 429 problem+json with Retry-After and RateLimit-* past the requests per minute', async () => {
    const { token } = await createKey(harness.app, { name: 'slow', scopes: ['lookup'], ratePerMinute: 2 });
    const ask = () => asKey(harness.app, token, { method: 'GET', url: '/ip/10.0.0.1' });
    const first = await ask();
    expect(first.headers).toMatchObject({ 'ratelimit-limit': '2', 'ratelimit-remaining': '1' });
    expect((await ask()).statusCode).toBe(200);
    const refused = await ask();
    expect(expectProblem(refused, 429, 'rate-limited').detail).toMatch(/2 requests a minute/);
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
    expect(refused.headers).toMatchObject({ 'ratelimit-limit': '2', 'ratelimit-remaining': '0' });
    const other = await createKey(harness.app, { name: 'other', scopes: ['lookup'], ratePerMinute: 2 });
    expect((await asKey(harness.app, other.token, { method: 'GET', url: '/ip/10.0.0.1' })).statusCode).toBe(200);
  });

  it('counts addresses per day over POST /enrich and jobs (JSON and text lists), and refuses what would pass the allowance', async () => {
    const { token } = await createKey(harness.app, { name: 'budget', scopes: ['enrich', 'jobs'], addressesPerDay: 5 });
    const enrich = (ips: string[]) => asKey(harness.app, token, { method: 'POST', url: '/enrich', payload: { ips } });
    const ok = await enrich(['10.0.0.1', '10.0.0.2']);
    expect(ok.statusCode).toBe(200);
    expect(ok.headers).toMatchObject({ 'ratelimit-limit': '5', 'ratelimit-remaining': '3' });
    const job = await asKey(harness.app, token, {
      method: 'POST',
      url: '/jobs',
      headers: { 'content-type': 'text/plain' },
      payload: '10.0.0.3\n# a comment\n10.0.0.4\n',
    });
    expect(job.statusCode).toBe(202);
    const refused = await enrich(['10.0.0.5', '10.0.0.6']);
    expect(expectProblem(refused, 429, 'address-limit').detail).toMatch(/5 addresses a day \(UTC\) and has 1 left today; this request has 2/);
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
    expect(Number(refused.headers['retry-after'])).toBeLessThanOrEqual(86_400);
    expect((await enrich(['10.0.0.5'])).statusCode).toBe(200);
  });
});

describe('the key cache', () => {
  let database: TestDatabase;
  let proxy: TcpProxy;
  let harness: Harness;
  beforeAll(async () => {
    // Far above what a query takes on a loaded machine: only the freeze makes one time out.
    ({ harness, proxy, database } = await startHarnessBehindProxy({ AUTH: 'keys', DATABASE_TIMEOUT_MS: 3000 }));
  });
  afterAll(async () => {
    await proxy.close();
    await harness.close();
    await database.drop();
  });

  it('answers a known key without a database round trip: it still works while the database does not answer', async () => {
    const { token } = await createKey(harness.app, { name: 'cached', scopes: ['lookup'] });
    expect((await asKey(harness.app, token, { method: 'GET', url: '/ip/10.0.0.1' })).statusCode).toBe(200);
    proxy.freeze();
    try {
      const started = performance.now();
      // A bogon needs no stored record, so the database is asked for nothing but (were it not cached) the key.
      expect((await asKey(harness.app, token, { method: 'GET', url: '/ip/10.0.0.2' })).statusCode).toBe(200);
      // Well under DATABASE_TIMEOUT_MS, which a round trip to the frozen database would have waited.
      expect(performance.now() - started).toBeLessThan(1500);
      const unknown = await createKeyless();
      expectProblem(unknown, 503, 'database-unavailable');
    } finally {
      proxy.unfreeze();
    }
  });

  const createKeyless = () => asKey(harness.app, `ipe_BBBBBBBB_${'B'.repeat(43)}`, { method: 'GET', url: '/ip/10.0.0.1' });
});
