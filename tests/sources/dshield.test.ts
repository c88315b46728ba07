import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { UpstreamAdmission } from '../../src/limiter/admission.js';
import { DSHIELD_NO_CONTACT, DShieldSource } from '../../src/sources/dshield.js';
import { HttpUpstreamDouble, respond } from '../doubles/http-upstream.js';

let upstream: HttpUpstreamDouble;
let source: DShieldSource | undefined;

beforeEach(async () => {
  upstream = await HttpUpstreamDouble.start();
});

afterEach(async () => {
  await source?.close();
  source = undefined;
  await upstream.close();
});

function dshield(contact: string | undefined = 'abuse-desk@example.org') {
  const admission = new UpstreamAdmission({ name: 'dshield', rate: 100, burst: 100 });
  source = new DShieldSource({ baseUrl: `${upstream.url}/`, contact, version: '1.2.3', admission, retryDelayMs: 10 });
  return source;
}

const soon = () => ({ deadline: Date.now() + 5_000 });

const ANSWER = {
  ip: {
    number: '45.148.10.121',
    count: '1520',
    attacks: 38,
    maxdate: '2026-01-01',
    mindate: '2025-10-02',
    updated: '2026-01-01 06:12:03',
    comment: null,
    maxrisk: null,
    asabusecontact: 'abuse@techoff.example',
    as: 48090,
    asname: 'TECHOFF',
    ascountry: 'NL',
    network: '45.148.10.0/24',
    threatfeeds: { ciarmy: { lastseen: '2026-01-01', firstseen: '2025-11-01' }, blocklistde22: { lastseen: '2025-12-30', firstseen: '2025-12-01' } },
  },
};

describe('DShieldSource', () => {
  it('asks with a User-Agent that carries the version and the contact', async () => {
    await dshield().lookup(['45.148.10.121'], soon());
    expect(upstream.requests).toHaveLength(1);
    expect(upstream.requests[0]?.path).toBe('/api/ip/45.148.10.121?json');
    expect(upstream.requests[0]?.headers['user-agent']).toBe('ip-enrich/1.2.3 (abuse-desk@example.org)');
  });

  it('maps counts given as strings or numbers, the dates, the threat feeds and the abuse contact', async () => {
    upstream.respondTo('45.148.10.121', respond.json(ANSWER));
    const outcomes = await dshield().lookup(['45.148.10.121'], soon());
    expect(outcomes.get('45.148.10.121')).toEqual({
      status: 'ok',
      data: {
        attacks: 38,
        reports: 1520,
        firstSeen: '2025-10-02',
        lastSeen: '2026-01-01',
        threatFeeds: ['ciarmy', 'blocklistde22'],
        abuseContact: 'abuse@techoff.example',
      },
    });
  });

  it('keeps an address with reports but no attack count, and no threat feeds', async () => {
    upstream.respondTo('5.6.7.8', respond.json({ ip: { ...ANSWER.ip, count: 4, attacks: null, threatfeeds: null, asabusecontact: '' } }));
    const outcomes = await dshield().lookup(['5.6.7.8'], soon());
    expect(outcomes.get('5.6.7.8')).toMatchObject({
      status: 'ok',
      data: { attacks: null, reports: 4, threatFeeds: [], abuseContact: null },
    });
  });

  it('answers not_found when neither reports nor attacks are known', async () => {
    const outcomes = await dshield().lookup(['9.9.9.9'], soon());
    expect(outcomes.get('9.9.9.9')).toEqual({ status: 'not_found', data: null });
  });

  it('keeps the abuse contact of an address without reports, and takes a threat-feed listing as an answer', async () => {
    const empty = { count: null, attacks: null, maxdate: null, mindate: null, updated: null };
    upstream.respondTo('9.9.9.1', respond.json({ ip: { number: '9.9.9.1', ...empty, threatfeeds: null, asabusecontact: 'abuse@example.net' } }));
    upstream.respondTo('9.9.9.2', respond.json({ ip: { number: '9.9.9.2', ...empty, threatfeeds: { ciarmy: { lastseen: '2026-11-20' } } } }));
    const outcomes = await dshield().lookup(['9.9.9.1', '9.9.9.2'], soon());
    expect(outcomes.get('9.9.9.1')).toEqual({
      status: 'not_found',
      data: { attacks: null, reports: null, firstSeen: null, lastSeen: null, threatFeeds: [], abuseContact: 'abuse@example.net' },
    });
    expect(outcomes.get('9.9.9.2')).toMatchObject({ status: 'ok', data: { reports: null, threatFeeds: ['ciarmy'] } });
  });

  it('passes on "bad IP address" as an error without retrying', async () => {
    upstream.respondTo('1.1.1.1', respond.json({ error: 'bad IP address' }));
    const outcomes = await dshield().lookup(['1.1.1.1'], soon());
    expect(outcomes.get('1.1.1.1')).toEqual({ status: 'error', error: 'bad IP address' });
    expect(upstream.requests).toHaveLength(1);
  });

  it('looks up IPv6 addresses', async () => {
    upstream.respondTo('2001:4860:4860::8888', respond.json({ ip: { ...ANSWER.ip, number: '2001:4860:4860::8888' } }));
    const outcomes = await dshield().lookup(['2001:4860:4860::8888'], soon());
    expect(outcomes.get('2001:4860:4860::8888')?.status).toBe('ok');
    expect(upstream.requests[0]?.path).toBe('/api/ip/2001:4860:4860::8888?json');
  });

  it('stays off and sends nothing without a contact', async () => {
    const source = dshield('');
    expect(source.availability()).toEqual({ status: 'disabled', reason: DSHIELD_NO_CONTACT });
    const outcomes = await source.lookup(['1.1.1.1'], soon());
    expect(outcomes.get('1.1.1.1')).toEqual({ status: 'disabled', reason: DSHIELD_NO_CONTACT });
    expect(upstream.requests).toHaveLength(0);
  });

  it('retries a 500 and broken JSON, then reports an error', async () => {
    upstream.respondTo('1.1.1.1', respond.serverError());
    upstream.respondTo('2.2.2.2', respond.brokenJson());
    upstream.respondTo('3.3.3.3', respond.serverError(), respond.json(ANSWER));
    const outcomes = await dshield().lookup(['1.1.1.1', '2.2.2.2', '3.3.3.3'], soon());
    expect(outcomes.get('1.1.1.1')).toEqual({ status: 'error', error: 'HTTP 500' });
    expect(outcomes.get('2.2.2.2')).toEqual({ status: 'error', error: 'unparseable JSON' });
    expect(outcomes.get('3.3.3.3')?.status).toBe('ok');
    expect(upstream.requestsFor('1.1.1.1')).toHaveLength(3);
    expect(upstream.requestsFor('2.2.2.2')).toHaveLength(3);
  });

  it('holds every address back after a 429 with an hour-long Retry-After', async () => {
    const source = dshield();
    upstream.enqueue(respond.limited(3600));
    const started = Date.now();
    const first = await source.lookup(['1.1.1.1'], { deadline: Date.now() + 10_000 });
    const rest = await source.lookup(['2.2.2.2', '2a00:1450:4001::200e'], { deadline: Date.now() + 10_000 });
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(first.get('1.1.1.1')?.status).toBe('rate_limited');
    expect([...rest.values()].map((o) => o.status)).toEqual(['rate_limited', 'rate_limited']);
    expect(upstream.requests).toHaveLength(1);
  });
});
