import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ManualClock } from '../support/manual-clock.js';
import { UpstreamAdmission } from '../../src/limiter/admission.js';
import { GreyNoiseSource } from '../../src/sources/greynoise.js';
import { VERSION } from '../../src/version.js';
import { HttpUpstreamDouble, respond } from '../doubles/http-upstream.js';
import { capturingLogger } from '../doubles/logger.js';

let upstream: HttpUpstreamDouble;
let source: GreyNoiseSource | undefined;

beforeEach(async () => {
  upstream = await HttpUpstreamDouble.start();
});

afterEach(async () => {
  await source?.close();
  source = undefined;
  await upstream.close();
});

function greynoise(options: { apiKey?: string; maxInFlight?: number; timeoutMs?: number } = {}) {
  const admission = new UpstreamAdmission({ name: 'greynoise', rate: 100, burst: 100, maxInFlight: options.maxInFlight });
  source = new GreyNoiseSource({
    baseUrl: upstream.url,
    apiKey: options.apiKey,
    admission,
    retryDelayMs: 10,
    timeoutMs: options.timeoutMs,
  });
  return { source, admission };
}

const soon = () => ({ deadline: Date.now() + 5_000 });

const REJECTED = { status: 'disabled', reason: 'GreyNoise rejected the API key (401)', refused: true };

/** Real I/O answers while a ManualClock stands still: what it brings is waited for in real time. */
const inRealTime = { timeout: 5_000, interval: 1 };

describe('GreyNoiseSource', () => {
  it('maps a community answer and sends the API key', async () => {
    const { source } = greynoise({ apiKey: 'secret-key' });
    upstream.respondTo(
      '8.8.8.8',
      respond.json({
        ip: '8.8.8.8',
        noise: false,
        riot: true,
        classification: 'benign',
        name: 'Google Public DNS',
        link: 'https://viz.greynoise.io/riot/8.8.8.8',
        last_seen: '2026-01-01',
        message: 'Success',
      }),
    );
    upstream.respondTo('1.2.3.4', respond.json({ ip: '1.2.3.4', noise: true }));
    const outcomes = await source.lookup(['8.8.8.8', '1.2.3.4'], soon());
    expect(outcomes.get('8.8.8.8')).toEqual({
      status: 'ok',
      data: {
        noise: false,
        riot: true,
        classification: 'benign',
        name: 'Google Public DNS',
        link: 'https://viz.greynoise.io/riot/8.8.8.8',
        lastSeen: '2026-01-01',
      },
    });
    expect(outcomes.get('1.2.3.4')).toEqual({
      status: 'ok',
      data: { noise: true, riot: false, classification: null, name: null, link: null, lastSeen: null },
    });
    expect(upstream.requestsFor('8.8.8.8')[0]?.path).toBe('/v3/community/8.8.8.8');
    expect(upstream.requests.every((r) => r.headers.key === 'secret-key')).toBe(true);
  });

  it('takes "IP not observed" (404) as a real answer: not_found', async () => {
    const { source } = greynoise();
    upstream.respondTo('9.9.9.9', respond.notObserved('9.9.9.9'));
    const outcomes = await source.lookup(['9.9.9.9'], soon());
    expect(outcomes.get('9.9.9.9')).toEqual({
      status: 'not_found',
      data: { noise: false, riot: false, classification: null, name: null, link: null, lastSeen: null },
    });
    expect(upstream.requests[0]?.headers.key).toBeUndefined();
  });

  it('does not remember a 404 that is not GreyNoise speaking about the address', async () => {
    const { source } = greynoise();
    upstream.respondTo('9.9.9.8', respond.json({ error: 'route not found' }, 404));
    upstream.respondTo('9.9.9.7', respond.json({ ip: '1.2.3.4', noise: false, riot: false }, 404));
    const outcomes = await source.lookup(['9.9.9.8', '9.9.9.7'], soon());
    expect(outcomes.get('9.9.9.8')).toEqual({ status: 'error', error: 'HTTP 404 without a GreyNoise answer' });
    expect(outcomes.get('9.9.9.7')).toEqual({ status: 'error', error: 'HTTP 404 without a GreyNoise answer' });
  });

  it('never sends an IPv6 address to GreyNoise', async () => {
    const { source } = greynoise();
    const outcomes = await source.lookup(['2606:4700::1111', '1.1.1.1'], soon());
    expect(outcomes.get('2606:4700::1111')?.status).toBe('unsupported');
    expect(upstream.requests.map((r) => r.ip)).toEqual(['1.1.1.1']);
  });

  it('switches itself off after a 401 instead of failing every address', async () => {
    const { source, admission } = greynoise({ apiKey: 'wrong', maxInFlight: 1 });
    upstream.enqueue(respond.unauthorized());
    const ips = ['1.1.1.1', '2.2.2.2', '3.3.3.3', '4.4.4.4'];
    const outcomes = await source.lookup(ips, soon());
    expect([...outcomes.values()]).toEqual(ips.map(() => REJECTED));
    expect(source.availability()).toEqual(REJECTED);
    expect(upstream.requests).toHaveLength(1);
    expect((await admission.state()).consecutiveFailures).toBe(1);

    const later = await source.lookup(['5.5.5.5'], soon());
    expect(later.get('5.5.5.5')).toEqual(REJECTED);
    expect(upstream.requests).toHaveLength(1);
  });

  it('probes once GREYNOISE_REPROBE has passed after a 401, and is back on when the key works again', async () => {
    const clock = new ManualClock();
    const { logger, lines } = capturingLogger();
    // The probe takes real time to answer, so that lookups can come while it is out.
    const slow = await HttpUpstreamDouble.start({ latencyMs: 50 });
    const admission = new UpstreamAdmission({ name: 'greynoise', rate: 100, burst: 100, clock });
    const probed = new GreyNoiseSource({ baseUrl: slow.url, apiKey: 'renewed', admission, clock, reprobeMs: 900_000, logger });
    const lookup = async (ip: string) => (await probed.lookup([ip], { deadline: clock.now() + 5_000 })).get(ip);
    try {
      slow.enqueue(respond.unauthorized());
      expect(await lookup('1.1.1.1')).toEqual(REJECTED);
      await clock.advance(899_999);
      expect(await lookup('2.2.2.2')).toEqual(REJECTED);
      expect(slow.requests).toHaveLength(1);

      await clock.advance(1);
      await vi.waitFor(() => expect(slow.requests).toHaveLength(2), inRealTime);
      expect(await lookup('3.3.3.3')).toEqual(REJECTED);
      expect(probed.availability()).toEqual(REJECTED);
      await vi.waitFor(() => expect(probed.availability()).toEqual({ status: 'ready' }), inRealTime);
      expect(slow.requests.map((request) => request.ip)).toEqual(['1.1.1.1', '1.1.1.1']);
      expect(await lookup('4.4.4.4')).toMatchObject({ status: 'not_found' });
      expect(slow.requests).toHaveLength(3);
      expect(lines.filter((line) => line.msg.includes('switched off'))).toHaveLength(1);
      expect(lines.filter((line) => line.msg.includes('switched back on'))).toHaveLength(1);
    } finally {
      await probed.close();
      await slow.close();
    }
  });

  it('stays off for another GREYNOISE_REPROBE when the probe is refused again', async () => {
    const clock = new ManualClock();
    const { logger, lines } = capturingLogger();
    const admission = new UpstreamAdmission({ name: 'greynoise', rate: 100, burst: 100, clock });
    source = new GreyNoiseSource({ baseUrl: upstream.url, apiKey: 'revoked', admission, clock, reprobeMs: 900_000, logger });
    const lookup = async (ip: string) => (await source!.lookup([ip], { deadline: clock.now() + 5_000 })).get(ip);
    upstream.enqueue(respond.unauthorized(), respond.unauthorized());
    expect(await lookup('1.1.1.1')).toEqual(REJECTED);
    await clock.advance(900_000);
    await vi.waitFor(() => expect(lines.map((line) => line.msg)).toContainEqual(expect.stringContaining('still off')), inRealTime);
    expect(upstream.requests).toHaveLength(2);
    expect(source.availability()).toEqual(REJECTED);

    await clock.advance(899_999);
    expect(await lookup('2.2.2.2')).toEqual(REJECTED);
    expect(upstream.requests).toHaveLength(2);
    await clock.advance(1);
    await vi.waitFor(() => expect(source?.availability()).toEqual({ status: 'ready' }), inRealTime);
    expect(upstream.requests).toHaveLength(3);
    expect(await lookup('2.2.2.2')).toMatchObject({ status: 'not_found' });
  });

  it('sends the ip-enrich/<version> User-Agent, as DShield does', async () => {
    const { source } = greynoise();
    await source.lookup(['1.1.1.1'], soon());
    expect(upstream.requests[0]?.headers['user-agent']).toBe(`ip-enrich/${VERSION}`);
  });

  it('keeps 32 requests in flight without a MaxListenersExceededWarning, with or without a caller signal', async () => {
    const warnings: string[] = [];
    const onWarning = (warning: Error) => warnings.push(warning.name);
    process.on('warning', onWarning);
    const wide = await HttpUpstreamDouble.start({ latencyMs: 20 });
    // The burst sends 32 at once; after it the workers also wait for their moments, each listening on the
    // lookup's signal.
    const bounded = new GreyNoiseSource({
      baseUrl: wide.url,
      admission: new UpstreamAdmission({ name: 'greynoise', rate: 500, burst: 32, maxInFlight: 32 }),
    });
    try {
      const ips = (list: number) => Array.from({ length: 200 }, (_, k) => `8.${list}.${k >> 8}.${(k & 255) + 1}`);
      await bounded.lookup(ips(1), soon());
      await bounded.lookup(ips(2), { ...soon(), signal: new AbortController().signal });
      // Node emits a warning on the next tick.
      await new Promise((resolve) => setImmediate(resolve));
      expect(wide.requests).toHaveLength(400);
      expect(wide.mostInFlight).toBe(32);
      expect(warnings).not.toContain('MaxListenersExceededWarning');
    } finally {
      process.off('warning', onWarning);
      await bounded.close();
      await wide.close();
    }
  });

  it('sends nothing inside a Retry-After window and answers rate_limited at once (delta-seconds)', async () => {
    const { source } = greynoise();
    upstream.respondTo('1.1.1.1', respond.limited(3600));
    const started = Date.now();
    const first = await source.lookup(['1.1.1.1'], { deadline: Date.now() + 10_000 });
    const rest = await source.lookup(['2.2.2.2', '3.3.3.3'], { deadline: Date.now() + 10_000 });
    expect(Date.now() - started).toBeLessThan(1_000);
    const retryAt = Date.parse((first.get('1.1.1.1') as { retryAt: string }).retryAt);
    expect(retryAt).toBeGreaterThan(started + 3_599_000);
    expect([...rest.values()].every((o) => o.status === 'rate_limited')).toBe(true);
    expect(upstream.requests).toHaveLength(1);
  });

  it('sends nothing inside a Retry-After window given as an HTTP-date', async () => {
    const { source, admission } = greynoise();
    upstream.respondTo('1.1.1.1', respond.limitedUntil(new Date(Date.now() + 3_600_000)));
    const started = Date.now();
    const first = await source.lookup(['1.1.1.1'], { deadline: Date.now() + 10_000 });
    const rest = await source.lookup(['2.2.2.2', '3.3.3.3'], { deadline: Date.now() + 10_000 });
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(first.get('1.1.1.1')?.status).toBe('rate_limited');
    expect([...rest.values()].every((o) => o.status === 'rate_limited')).toBe(true);
    expect((await admission.state()).blockedUntil).toBeGreaterThan(started + 3_590_000);
    expect(upstream.requests).toHaveLength(1);
  });

  it('retries 429s beyond its retry count while the limiter admits, and answers rate_limited once a block outlasts the deadline', async () => {
    const { source } = greynoise();
    const limitedNow = () => respond.limited(0);
    upstream.respondTo('1.1.1.1', limitedNow(), limitedNow(), limitedNow(), limitedNow(), respond.json({ ip: '1.1.1.1', noise: true }));
    upstream.respondTo('2.2.2.2', limitedNow(), limitedNow(), limitedNow(), respond.limited(3600));
    const started = Date.now();
    const answered = await source.lookup(['1.1.1.1'], soon());
    expect(answered.get('1.1.1.1')?.status).toBe('ok');
    const asked = upstream.requestsFor('1.1.1.1').map((request) => request.at);
    expect(asked).toHaveLength(5);
    // Retry-After: 0 holds nothing in the limiter, so each repeat waits the growing pause (10 ms, doubling).
    for (let k = 1; k < asked.length; k++) expect(asked[k]! - asked[k - 1]!).toBeGreaterThanOrEqual(10 * 2 ** (k - 1) - 1);
    const refused = await source.lookup(['2.2.2.2'], soon());
    expect(refused.get('2.2.2.2')).toMatchObject({ status: 'rate_limited' });
    expect(Date.parse((refused.get('2.2.2.2') as { retryAt: string }).retryAt)).toBeGreaterThan(started + 3_599_000);
    expect(upstream.requestsFor('2.2.2.2')).toHaveLength(4);
  });

  it('retries an address after a short 429 through the limiter, within the deadline', async () => {
    const { source } = greynoise();
    upstream.respondTo('1.1.1.1', respond.limited(1), respond.json({ ip: '1.1.1.1', noise: true }));
    const outcomes = await source.lookup(['1.1.1.1'], { deadline: Date.now() + 5_000 });
    expect(outcomes.get('1.1.1.1')?.status).toBe('ok');
    const [refused, answered] = upstream.requestsFor('1.1.1.1');
    expect((answered?.at ?? 0) - (refused?.at ?? 0)).toBeGreaterThanOrEqual(990);
  });

  it('retries a 500 and then reports an error', async () => {
    const { source } = greynoise();
    upstream.respondTo('1.1.1.1', respond.serverError());
    const outcomes = await source.lookup(['1.1.1.1'], soon());
    expect(outcomes.get('1.1.1.1')).toEqual({ status: 'error', error: 'HTTP 500' });
    expect(upstream.requestsFor('1.1.1.1')).toHaveLength(3);
  });

  it('retries broken JSON and succeeds when a good answer follows', async () => {
    const { source } = greynoise();
    upstream.respondTo('1.1.1.1', respond.brokenJson(), respond.json({ ip: '1.1.1.1', noise: true }));
    upstream.respondTo('2.2.2.2', respond.brokenJson());
    const outcomes = await source.lookup(['1.1.1.1', '2.2.2.2'], soon());
    expect(outcomes.get('1.1.1.1')?.status).toBe('ok');
    expect(outcomes.get('2.2.2.2')).toEqual({ status: 'error', error: 'unparseable JSON' });
    expect(upstream.requestsFor('2.2.2.2')).toHaveLength(3);
  });

  it('gives up on a hanging upstream after the request timeout', async () => {
    const { source } = greynoise({ timeoutMs: 100 });
    upstream.respondTo('1.1.1.1', respond.hang());
    const outcomes = await source.lookup(['1.1.1.1'], soon());
    expect(outcomes.get('1.1.1.1')).toEqual({ status: 'error', error: 'timeout after 100 ms' });
    expect(upstream.requestsFor('1.1.1.1')).toHaveLength(3);
  });

  it('gives up at the deadline on an answer that is slow to come or trickles in, keeping the rest of the list', async () => {
    const { source } = greynoise({ timeoutMs: 5_000 });
    upstream.respondTo('1.1.1.1', respond.trickle({ ip: '1.1.1.1', noise: true, riot: false, message: 'Success' }, 200));
    upstream.respondTo('2.2.2.2', respond.hang());
    const started = Date.now();
    const outcomes = await source.lookup(['1.1.1.1', '2.2.2.2', '3.3.3.3'], { deadline: started + 600 });
    const took = Date.now() - started;
    expect(outcomes.get('1.1.1.1')).toEqual({ status: 'error', error: 'no answer before the deadline' });
    expect(outcomes.get('2.2.2.2')).toEqual({ status: 'error', error: 'no answer before the deadline' });
    expect(outcomes.get('3.3.3.3')?.status).toBe('not_found');
    expect(took).toBeLessThan(1_500);
  });

  it('answers once per distinct address and refuses what is not an address', async () => {
    const { source } = greynoise();
    const outcomes = await source.lookup(['1.1.1.1', '1.1.1.1', '1.1.1.1/24'], soon());
    expect([...outcomes.keys()]).toEqual(['1.1.1.1', '1.1.1.1/24']);
    expect(outcomes.get('1.1.1.1/24')).toEqual({ status: 'error', error: 'not an IP address' });
    expect(upstream.requests).toHaveLength(1);
  });

  it('stays within an upstream that enforces its own ceiling, where an unbounded client is refused', async () => {
    const ceilingUpstream = await HttpUpstreamDouble.start({ latencyMs: 20, ceiling: { rate: 20, burst: 8 } });
    const ips = Array.from({ length: 15 }, (_, k) => `8.8.4.${k + 1}`);
    try {
      const bounded = new GreyNoiseSource({
        baseUrl: ceilingUpstream.url,
        admission: new UpstreamAdmission({ name: 'greynoise', rate: 20, burst: 5 }),
      });
      const outcomes = await bounded.lookup(ips, { deadline: Date.now() + 5_000 });
      await bounded.close();
      expect([...outcomes.values()].every((o) => o.status === 'not_found')).toBe(true);
      expect(ceilingUpstream.requests).toHaveLength(15);

      const unbounded = new GreyNoiseSource({
        baseUrl: ceilingUpstream.url,
        admission: new UpstreamAdmission({ name: 'greynoise', rate: 10_000, burst: 10_000, maxInFlight: 100 }),
      });
      const flooded = await unbounded.lookup(ips, { deadline: Date.now() + 200 });
      await unbounded.close();
      expect([...flooded.values()].some((o) => o.status === 'rate_limited')).toBe(true);
    } finally {
      await ceilingUpstream.close();
    }
  });

  it('asks at most maxInFlight addresses at once across all lookups under way, with no waiter per address', async () => {
    const clock = new ManualClock();
    const slow = await HttpUpstreamDouble.start({ latencyMs: 2 });
    const admission = new UpstreamAdmission({ name: 'greynoise', rate: 1_000, burst: 1_000, maxInFlight: 3, clock });
    const bounded = new GreyNoiseSource({ baseUrl: slow.url, admission, clock });
    try {
      const lists = Array.from({ length: 4 }, (_, list) => Array.from({ length: 50 }, (_, k) => `8.8.${list}.${k + 1}`));
      let mostWaiting = 0;
      let done = false;
      const deadline = clock.now() + 60_000;
      const lookups = Promise.all(lists.map((ips) => bounded.lookup(ips, { deadline }))).finally(() => (done = true));
      while (!done) {
        // Every wait on this clock (for a slot, a moment, or a deadline) is a sleep; the clock never moves here.
        mostWaiting = Math.max(mostWaiting, clock.sleeping);
        await new Promise((resolve) => setImmediate(resolve));
      }
      const outcomes = (await lookups).flatMap((map) => [...map.values()]);
      expect(outcomes.filter((o) => o.status === 'not_found')).toHaveLength(200);
      expect(slow.requests).toHaveLength(200);
      expect(slow.mostInFlight).toBe(3);
      // One deadline per lookup, and nothing per address.
      expect(mostWaiting).toBeLessThanOrEqual(lists.length);
    } finally {
      await bounded.close();
      await slow.close();
    }
  });

  it('serves the lookup with the earliest deadline first, so that a short one does not wait behind a long list', async () => {
    const slow = await HttpUpstreamDouble.start({ latencyMs: 2 });
    const bounded = new GreyNoiseSource({
      baseUrl: slow.url,
      admission: new UpstreamAdmission({ name: 'greynoise', rate: 1_000, burst: 1_000, maxInFlight: 1 }),
    });
    try {
      const long = Array.from({ length: 30 }, (_, k) => `8.8.8.${k + 1}`);
      let longDone = false;
      const first = bounded.lookup(long, { deadline: Date.now() + 60_000 }).finally(() => (longDone = true));
      while (slow.requests.length === 0) await new Promise((resolve) => setImmediate(resolve));
      const short = await bounded.lookup(['9.9.9.9'], { deadline: Date.now() + 10_000 });
      expect(short.get('9.9.9.9')?.status).toBe('not_found');
      expect(longDone).toBe(false);
      expect(slow.requests.findIndex((r) => r.ip === '9.9.9.9')).toBeLessThanOrEqual(2);
      expect([...(await first).values()].every((o) => o.status === 'not_found')).toBe(true);
    } finally {
      await bounded.close();
      await slow.close();
    }
  });

  it('answers a lookup still waiting for a worker when its deadline passes, and sends none of it', async () => {
    const clock = new ManualClock();
    const stuck = await HttpUpstreamDouble.start();
    const admission = new UpstreamAdmission({ name: 'greynoise', rate: 100, burst: 100, maxInFlight: 1, clock });
    const bounded = new GreyNoiseSource({ baseUrl: stuck.url, admission, clock, retries: 0 });
    stuck.enqueue(respond.hang());
    const now = clock.now();
    const hanging = bounded.lookup(['1.1.1.1'], { deadline: now + 10_000 });
    while (stuck.requests.length === 0) await new Promise((resolve) => setImmediate(resolve));
    let answered = false;
    const waiting = bounded.lookup(['2.2.2.2', '3.3.3.3'], { deadline: now + 1_000 }).finally(() => (answered = true));
    await clock.advance(1_000);
    expect(answered).toBe(false);
    await clock.advance(1);
    const outcomes = await waiting;
    const retryAt = new Date(now + 1_001).toISOString();
    expect([...outcomes.values()]).toEqual([
      { status: 'rate_limited', retryAt },
      { status: 'rate_limited', retryAt },
    ]);
    expect(stuck.requests).toHaveLength(1);
    await stuck.close();
    expect((await hanging).get('1.1.1.1')?.status).toBe('error');
    await bounded.close();
  });

  it('answers the rest of a list rate_limited at once when the limiter refuses one address past the deadline', async () => {
    const clock = new ManualClock();
    const admission = new UpstreamAdmission({ name: 'greynoise', rate: 1, burst: 2, maxInFlight: 2, clock });
    source = new GreyNoiseSource({ baseUrl: upstream.url, admission, clock });
    const ips = [...Array.from({ length: 50 }, (_, k) => `9.9.9.${k + 1}`), '2001:db8::1'];
    const now = clock.now();
    const outcomes = await source.lookup(ips, { deadline: now + 500 });
    // The burst lets two go; the third would have to wait until now + 1 s, past the deadline.
    const retryAt = new Date(now + 1_000).toISOString();
    expect(upstream.requests).toHaveLength(2);
    expect([...outcomes.values()].filter((o) => o.status === 'not_found')).toHaveLength(2);
    expect([...outcomes.values()].filter((o) => o.status === 'rate_limited')).toEqual(
      Array.from({ length: 48 }, () => ({ status: 'rate_limited', retryAt })),
    );
    expect(outcomes.get('2001:db8::1')?.status).toBe('unsupported');
    // The limiter refused one; its list refused the other 47 without asking it.
    expect(admission.stats()).toEqual({ admitted: 2, refused: 48 });
  });

  it('stops a lookup when its signal aborts, and sends none of the addresses still queued', async () => {
    const { source, admission } = greynoise({ maxInFlight: 2 });
    upstream.enqueue(respond.hang(), respond.hang());
    const controller = new AbortController();
    const ips = Array.from({ length: 20 }, (_, k) => `7.7.7.${k + 1}`);
    const lookup = source.lookup(ips, { deadline: Date.now() + 5_000, signal: controller.signal });
    while (upstream.requests.length < 2) await new Promise((resolve) => setTimeout(resolve, 5));
    controller.abort(new Error('client went away'));
    await expect(lookup).rejects.toThrow('client went away');
    expect(upstream.requests).toHaveLength(2);
    expect((await admission.state()).inFlight).toBe(0);
  });

  it('sends one request for a hot address asked by 100 lookups at once', async () => {
    const { source, admission } = greynoise({ maxInFlight: 4 });
    upstream.respondTo('8.8.4.4', respond.json({ ip: '8.8.4.4', noise: true, classification: 'malicious' }));
    const answers = await Promise.all(Array.from({ length: 100 }, () => source.lookup(['8.8.4.4'], soon())));
    expect(upstream.requestsFor('8.8.4.4')).toHaveLength(1);
    expect(admission.stats().admitted).toBe(1);
    expect(new Set(answers.map((answer) => answer.get('8.8.4.4')?.status))).toEqual(new Set(['ok']));
  });

  it('does not join a lookup that may wait past its own deadline', async () => {
    const { source } = greynoise();
    upstream.enqueue(respond.json({ ip: '8.8.4.5', noise: false }), respond.json({ ip: '8.8.4.5', noise: false }));
    const later = source.lookup(['8.8.4.5'], { deadline: Date.now() + 5_000 });
    const sooner = source.lookup(['8.8.4.5'], { deadline: Date.now() + 1_000 });
    await Promise.all([later, sooner]);
    expect(upstream.requestsFor('8.8.4.5')).toHaveLength(2);
  });

  it('asks for the address itself when the lookup it joined is given up by its caller', async () => {
    const { source } = greynoise({ maxInFlight: 1 });
    upstream.enqueue(respond.hang());
    const controller = new AbortController();
    const given = source.lookup(['8.8.4.6'], { deadline: Date.now() + 5_000, signal: controller.signal });
    const joined = source.lookup(['8.8.4.6'], { deadline: Date.now() + 5_000 });
    while (upstream.requests.length < 1) await new Promise((resolve) => setTimeout(resolve, 5));
    controller.abort(new Error('job cancelled'));
    await expect(given).rejects.toThrow('job cancelled');
    expect((await joined).get('8.8.4.6')?.status).toBe('not_found');
    expect(upstream.requestsFor('8.8.4.6')).toHaveLength(2);
  });
});
