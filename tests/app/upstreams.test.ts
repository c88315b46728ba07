import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { IpRecord } from '../../src/record/model.js';
import { respond } from '../doubles/http-upstream.js';
import { startHarness, type Harness } from '../support/app.js';
import { expectToMatchSchema } from '../support/contract.js';
import { startRedisServer, type RedisServer } from '../support/redis-server.js';

interface EnrichAnswer {
  results: IpRecord[];
}

async function enrich(harness: Harness, body: object): Promise<IpRecord[]> {
  const response = await harness.app.inject({ method: 'POST', url: '/enrich', payload: body });
  expect(response.statusCode).toBe(200);
  const { results } = response.json<EnrichAnswer>();
  for (const record of results) expectToMatchSchema('IpRecord', record);
  return results;
}

describe('GreyNoise and DShield in the record', () => {
  let harness: Harness;
  beforeAll(async () => {
    harness = await startHarness();
  });
  afterAll(async () => harness.close());

  it('carries what GreyNoise and DShield said, with per-source status', async () => {
    harness.greynoise.respondTo(
      '45.83.64.1',
      respond.json({
        ip: '45.83.64.1',
        noise: true,
        riot: false,
        classification: 'malicious',
        name: 'unknown',
        link: 'https://viz.greynoise.io/ip/45.83.64.1',
        last_seen: '2026-11-21',
        message: 'Success',
      }),
    );
    harness.dshield.respondTo(
      '45.83.64.1',
      respond.json({
        ip: {
          number: '45.83.64.1',
          count: 1520,
          attacks: 310,
          maxdate: '2026-11-21',
          mindate: '2026-01-02',
          updated: '2026-11-21 10:11:12',
          asabusecontact: 'abuse@example.net',
          threatfeeds: { blocklistde22: { lastseen: '2026-11-20', firstseen: '2026-02-01' }, ciarmy: { lastseen: '2026-11-19', firstseen: '2026-03-01' } },
        },
      }),
    );
    const [record] = await enrich(harness, { ips: ['45.83.64.1'] });
    expect(record).toMatchObject({
      status: 'ok',
      greynoise: { noise: true, riot: false, classification: 'malicious', lastSeen: '2026-11-21' },
      dshield: { attacks: 310, reports: 1520, firstSeen: '2026-01-02', lastSeen: '2026-11-21', abuseContact: 'abuse@example.net' },
      sources: { greynoise: { status: 'ok' }, dshield: { status: 'ok' } },
    });
    expect(record!.dshield!.threatFeeds.sort()).toEqual(['blocklistde22', 'ciarmy']);
  });

  it('stores "not observed" and "never seen" as real answers', async () => {
    const [record] = await enrich(harness, { ips: ['45.83.64.2'] });
    expect(record).toMatchObject({
      status: 'ok',
      greynoise: { noise: false, riot: false },
      sources: { greynoise: { status: 'not_found' }, dshield: { status: 'not_found' } },
    });
    const calls = harness.greynoise.requests.length + harness.dshield.requests.length;
    await enrich(harness, { ips: ['45.83.64.2'] });
    expect(harness.greynoise.requests.length + harness.dshield.requests.length).toBe(calls);
  });

  it('never sends IPv6 to GreyNoise, but asks DShield', async () => {
    const [record] = await enrich(harness, { ips: ['2a03:2880::1'] });
    expect(record!.sources.greynoise.status).toBe('unsupported');
    expect(harness.greynoise.requestsFor('2a03:2880::1')).toHaveLength(0);
    expect(harness.dshield.requestsFor('2a03:2880::1')).toHaveLength(1);
  });

  it('sends DShield a User-Agent with the product, version and contact', async () => {
    await enrich(harness, { ips: ['45.83.64.3'], sources: ['dshield'] });
    expect(harness.dshield.requestsFor('45.83.64.3')[0]!.headers['user-agent']).toBe('ip-enrich/0.1.0 (soc@example.org)');
  });

  it('keeps what is stored of a source that fails during a refresh', async () => {
    harness.greynoise.respondTo(
      '45.83.64.6',
      respond.json({ ip: '45.83.64.6', noise: true, riot: false, classification: 'malicious', message: 'Success' }),
    );
    await enrich(harness, { ips: ['45.83.64.6'] });
    harness.greynoise.respondTo('45.83.64.6', respond.serverError());
    const [refreshed] = await enrich(harness, { ips: ['45.83.64.6'], refresh: true });
    expect(refreshed!.sources.greynoise.status).toBe('error');
    expect(refreshed!.greynoise).toMatchObject({ noise: true, classification: 'malicious' });
    expect(refreshed!.sources.greynoise.fetchedAt).not.toBeNull();
    const [later] = await enrich(harness, { ips: ['45.83.64.6'], sources: ['maxmind'] });
    expect(later!.greynoise).toMatchObject({ noise: true, classification: 'malicious' });
  });

  it('marks an upstream error on the address only, and leaves the record to be filled next time', async () => {
    harness.greynoise.respondTo('45.83.64.4', respond.serverError());
    const results = await enrich(harness, { ips: ['45.83.64.4', '45.83.64.5'], sources: ['greynoise'] });
    expect(results.map((r) => r.status)).toEqual(['partial', 'ok']);
    expect(results[0]!.sources.greynoise).toMatchObject({ status: 'error', error: expect.stringMatching(/500/) });
    harness.greynoise.respondTo('45.83.64.4', respond.notObserved('45.83.64.4'));
    const [again] = await enrich(harness, { ips: ['45.83.64.4'], sources: ['greynoise'] });
    expect(again!.sources.greynoise.status).toBe('not_found');
  });
});

describe('rate limits and deadlines', () => {
  let harness: Harness;
  afterEach(async () => harness.close());

  it('answers rate_limited with retryAt at once when the upstream blocked us past the deadline', async () => {
    harness = await startHarness({ config: { ENRICH_DEADLINE_MS: 5000 } });
    const ips = ['45.83.65.1', '45.83.65.2', '45.83.65.3'];
    for (const ip of ips) harness.greynoise.respondTo(ip, respond.limited(3600));
    const started = Date.now();
    const results = await enrich(harness, { ips, sources: ['greynoise'] });
    expect(Date.now() - started).toBeLessThan(2000);
    // Only requests already in flight when the first 429 arrived may have left; none after it.
    const sent = harness.greynoise.requests.length;
    expect(sent).toBeLessThanOrEqual(ips.length);
    await enrich(harness, { ips: ['45.83.65.9'], sources: ['greynoise'] });
    expect(harness.greynoise.requests.length).toBe(sent);
    for (const record of results) {
      expect(record.status).toBe('partial');
      expect(record.sources.greynoise.status).toBe('rate_limited');
      expect(Date.parse(record.sources.greynoise.retryAt!)).toBeGreaterThan(Date.now() + 3_500_000);
    }
    const db = new pg.Client({ connectionString: harness.database.url });
    await db.connect();
    const stored = await db.query("SELECT ip FROM ip_record WHERE greynoise_status IS NOT NULL");
    await db.end();
    expect(stored.rowCount).toBe(0);
    const ready = (await harness.app.inject({ method: 'GET', url: '/readyz' })).json<{ sources: { greynoise: { blockedUntil: string } } }>();
    expect(Date.parse(ready.sources.greynoise.blockedUntil)).toBeGreaterThan(Date.now() + 3_500_000);
  });

  it('counts in /metrics every address refused, the rest of a list refused with the first among them', async () => {
    // A burst of two, then one a second: the third address could only go after the deadline.
    harness = await startHarness({ config: { GREYNOISE_RATE: 1, GREYNOISE_BURST: 2, ENRICH_DEADLINE_MS: 300 } });
    const ips = Array.from({ length: 10 }, (_, k) => `45.83.68.${k + 1}`);
    const results = await enrich(harness, { ips, sources: ['greynoise'] });
    expect(results.filter((record) => record.sources.greynoise.status === 'rate_limited')).toHaveLength(8);
    const text = (await harness.app.inject({ method: 'GET', url: '/metrics' })).body;
    const decisions = (decision: string) => {
      const series = `ipenrich_limiter_decisions_total{source="greynoise",decision="${decision}"} `;
      return Number(text.split('\n').find((line) => line.startsWith(series))?.slice(series.length));
    };
    expect(decisions('admitted')).toBe(2);
    expect(decisions('refused')).toBe(8);
  });

  it('switches GreyNoise off on 401, makes the records partial and says why in /readyz', async () => {
    harness = await startHarness({ config: { GREYNOISE_API_KEY: 'wrong' } });
    for (const ip of ['45.83.66.1', '45.83.66.2']) harness.greynoise.respondTo(ip, respond.unauthorized());
    const results = await enrich(harness, { ips: ['45.83.66.1', '45.83.66.2'], sources: ['greynoise'] });
    expect(results.map((r) => r.sources.greynoise.status)).toEqual(['disabled', 'disabled']);
    expect(results.map((r) => r.status)).toEqual(['partial', 'partial']);
    const sent = harness.greynoise.requests.length;
    const [later] = await enrich(harness, { ips: ['45.83.66.3'], sources: ['greynoise'] });
    expect(later!.sources.greynoise.status).toBe('disabled');
    expect(harness.greynoise.requests.length).toBe(sent);
    expect(harness.greynoise.requests[0]!.headers.key).toBe('wrong');
    const ready = (await harness.app.inject({ method: 'GET', url: '/readyz' })).json<{ sources: { greynoise: { status: string; reason: string } } }>();
    expect(ready.sources.greynoise).toMatchObject({ status: 'disabled', reason: expect.stringMatching(/401/), refused: true });
  });

  it('keeps DShield disabled without DSHIELD_CONTACT, makes no request and leaves the record ok', async () => {
    harness = await startHarness({ config: { DSHIELD_CONTACT: undefined } });
    const [record] = await enrich(harness, { ips: ['45.83.67.1'] });
    expect(record!.sources.dshield).toMatchObject({ status: 'disabled', error: expect.stringMatching(/DSHIELD_CONTACT/) });
    expect(record!.status).toBe('ok');
    expect(harness.dshield.requests).toHaveLength(0);
    const ready = (await harness.app.inject({ method: 'GET', url: '/readyz' })).json<{ sources: { dshield: { status: string } } }>();
    expect(ready.sources.dshield.status).toBe('disabled');
  });
});

describe('two replicas on one Redis', () => {
  let redis: RedisServer;
  const harnesses: Harness[] = [];
  beforeAll(async () => {
    redis = await startRedisServer();
  });
  afterAll(async () => {
    for (const harness of harnesses) await harness.close();
    await redis.stop();
  });

  it('share one GreyNoise budget', async () => {
    const shared = { REDIS_URL: redis.url, REDIS_KEY_PREFIX: 'replicas:', GREYNOISE_RATE: 10, GREYNOISE_BURST: 5, ENRICH_DEADLINE_MS: 1500 };
    const first = await startHarness({ config: shared });
    harnesses.push(first);
    const second = await startHarness({ config: { ...shared, GREYNOISE_API_URL: first.greynoise.url }, database: first.database });
    harnesses.push(second);
    const ips = (offset: number) => Array.from({ length: 40 }, (_, i) => `45.84.${offset}.${i + 1}`);
    const started = Date.now();
    await Promise.all([
      enrich(first, { ips: ips(1), sources: ['greynoise'] }),
      enrich(second, { ips: ips(2), sources: ['greynoise'] }),
    ]);
    const elapsedSeconds = (Date.now() - started) / 1000;
    const sent = first.greynoise.requests.length;
    // One budget: burst + rate × elapsed. Two separate budgets would let through about twice that.
    expect(sent).toBeGreaterThan(5);
    expect(sent).toBeLessThanOrEqual(5 + 10 * elapsedSeconds + 1);
  });
});
