import { exporter, SpanTree } from './in-memory.js';
import { SpanStatusCode } from '@opentelemetry/api';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Behaviour } from '../doubles/cymru-whois.js';
import { respond } from '../doubles/http-upstream.js';
import { startHarness, type Harness } from '../support/app.js';
import { submitJob, waitForJob } from '../support/jobs.js';

const GREYNOISE_KEY = 'gn-key-never-in-a-span-9f3c';
const DATABASE_PASSWORD = 'db-password-never-in-a-span-51a7';

/** Log lines of the app, as JSON. */
const lines: Array<Record<string, unknown>> = [];
const stream = new Writable({
  write(chunk: Buffer, _encoding, done) {
    for (const line of chunk.toString().split('\n')) if (line.trim() !== '') lines.push(JSON.parse(line) as Record<string, unknown>);
    done();
  },
});

/** How the Team Cymru double treats the next connections. */
let cymru: Behaviour = 'answer';

let harness: Harness;
beforeAll(async () => {
  harness = await startHarness({
    cymru: { behaviour: () => cymru },
    config: { GREYNOISE_API_KEY: GREYNOISE_KEY, LOG_LEVEL: 'info', CYMRU_RETRIES: 1 },
    overrides: { logger: { level: 'info', stream } },
  });
  // PostgreSQL here trusts local connections and ignores the password; it only has to stay out of the spans.
  const url = new URL(harness.config.DATABASE_URL!);
  url.password = DATABASE_PASSWORD;
  await harness.restart({ DATABASE_URL: url.toString() });
});
afterAll(async () => harness.close());
beforeEach(() => exporter.reset());

const post = (ips: string[], headers: Record<string, string> = {}) =>
  harness.app.inject({ method: 'POST', url: '/enrich', headers: { 'content-type': 'application/json', ...headers }, payload: { ips } });

describe('the trace of a POST /enrich', () => {
  it('runs from the HTTP request through the chunk, both tiers, every source and the statements that stored the records', async () => {
    // 45.93.1.1 has no ASN in the test MaxMind files, so Team Cymru is asked; 10.0.0.1 is a bogon.
    const response = await post(['45.93.1.1', '45.93.1.1', 'not-an-ip', '10.0.0.1']);
    expect(response.statusCode).toBe(200);
    const tree = SpanTree.latest('request');

    const request = tree.one('request');
    expect(request.attributes).toMatchObject({ 'http.route': '/enrich', 'http.request.method': 'POST', 'http.response.status_code': 200 });
    const enrich = tree.one('enrich');
    expect(enrich.attributes).toMatchObject({
      'ipenrich.kind': 'request',
      'ipenrich.addresses': 4,
      'ipenrich.unique': 1,
      'ipenrich.invalid': 1,
      'ipenrich.bogon': 1,
    });
    expect(tree.ancestry(enrich)).toContain('request');
    const chunk = tree.one('chunk');
    expect(tree.parentOf(chunk)).toBe(enrich);
    expect(chunk.attributes).toMatchObject({ 'ipenrich.addresses': 1 });

    const l1 = tree.one('cache.l1');
    const l2 = tree.one('cache.l2');
    for (const read of [l1, l2]) {
      expect(tree.parentOf(read)).toBe(chunk);
      expect(read.attributes).toMatchObject({ 'ipenrich.addresses': 1, 'ipenrich.cache.hits': 0, 'ipenrich.cache.misses': 1 });
    }
    // The L2 read is one SELECT on PostgreSQL, traced by the pg instrumentation under it.
    const l2Statements = tree.spans.filter((span) => tree.parentOf(span) === l2 && span.name.startsWith('pg.query'));
    expect(l2Statements).toHaveLength(1);
    expect(String(l2Statements[0]!.attributes['db.query.text'])).toContain('FROM ip_record WHERE ip = ANY(');

    const query = tree.one('cymru.query');
    expect(tree.ancestry(query)).toEqual(expect.arrayContaining(['chunk', 'enrich', 'request']));
    expect(query.attributes).toMatchObject({ 'ipenrich.addresses': 1, 'ipenrich.cymru.attempt': 1, 'ipenrich.cymru.outcome': 'ok', 'ipenrich.cymru.rows': 1 });
    expect(query.attributes['ipenrich.cymru.wait_ms']).toBeGreaterThanOrEqual(0);
    expect(query.status.code).not.toBe(SpanStatusCode.ERROR);

    for (const source of ['greynoise', 'dshield']) {
      const call = tree.one(source);
      expect(tree.parentOf(call)).toBe(chunk);
      expect(call.attributes).toMatchObject({ 'ipenrich.upstream.attempts': 1, 'http.response.status_code': source === 'greynoise' ? 404 : 200 });
      // Neither double knows the address: GreyNoise says so with a 404, DShield with an empty record.
      expect(call.attributes['ipenrich.upstream.outcome']).toBe('not_found');
      expect(call.attributes['ipenrich.limiter.wait_ms']).toBeGreaterThanOrEqual(0);
    }
    // The records are written in the chunk: the Cymru answer, then what the rate-limited sources brought.
    const writes = tree.spans.filter((span) => span.name.startsWith('pg.query:INSERT'));
    expect(writes.length).toBeGreaterThanOrEqual(1);
    for (const write of writes) expect(tree.ancestry(write)).toContain('chunk');

    const values = tree.values().join('\n');
    expect(values).not.toContain(GREYNOISE_KEY);
    expect(values).not.toContain(DATABASE_PASSWORD);
    expect(values).not.toContain('soc@example.org');
  });

  it('continues the trace of an incoming traceparent', async () => {
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const parentId = '00f067aa0ba902b7';
    await post(['81.2.69.160'], { traceparent: `00-${traceId}-${parentId}-01` });
    const tree = new SpanTree(traceId);
    const request = tree.one('request');
    expect(request.parentSpanContext?.spanId).toBe(parentId);
    expect(tree.ancestry(tree.one('enrich'))).toContain('request');
  });

  it('shows a Retry-After the upstream sent and how the call ended', async () => {
    // A block that ends after the request's deadline: the call ends rate_limited at once (and GreyNoise stays
    // blocked for the rest of this file, which asks nothing more of it).
    harness.greynoise.respondTo('45.93.2.2', respond.limited(60));
    await post(['45.93.2.2']);
    const call = SpanTree.latest('request').one('greynoise');
    expect(call.attributes).toMatchObject({
      'ipenrich.upstream.outcome': 'rate_limited',
      'http.response.status_code': 429,
      'ipenrich.upstream.retry_after': '60',
    });
    expect(call.events.map((event) => event.attributes?.['http.response.status_code'])).toContain(429);
  });
});

describe('the trace of a failing Team Cymru query', () => {
  it('marks each failed attempt in error with an event saying why, and the log lines written inside carry its ids', async () => {
    lines.length = 0;
    cymru = 'refuse';
    const response = await post(['45.93.3.3']);
    expect(response.statusCode).toBe(200);
    const tree = SpanTree.latest('request');
    const queries = tree.named('cymru.query');
    expect(queries.map((query) => query.attributes['ipenrich.cymru.attempt'])).toEqual([1, 2]);
    for (const query of queries) {
      expect(query.status.code).toBe(SpanStatusCode.ERROR);
      expect(query.attributes['ipenrich.cymru.outcome']).toBe('failed');
      expect(query.events.map((event) => event.name)).toContain('cymru.failure');
    }
    const warning = lines.find((line) => line.msg === 'Team Cymru bulk query failed');
    expect(warning).toBeDefined();
    expect(warning!.trace_id).toBe(queries[0]!.spanContext().traceId);
    expect(tree.spans.map((span) => span.spanContext().spanId)).toContain(warning!.span_id);
    cymru = 'answer';
  });
});

describe('the trace of a job', () => {
  it('has a slice span with the job id, a span per phase, and the chunks under the slice', async () => {
    const job = await submitJob(harness.app, { ips: ['45.93.4.4', '81.2.69.161', 'nope'], sources: ['maxmind', 'cymru', 'dshield'] });
    await waitForJob(harness.app, job.id);
    const slice = exporter.getFinishedSpans().find((span) => span.name === 'job.slice' && span.attributes['ipenrich.job.id'] === job.id);
    expect(slice).toBeDefined();
    expect(slice!.attributes).toMatchObject({ 'ipenrich.job.kind': 'list', 'ipenrich.job.unique': 2, 'ipenrich.job.slice_end': 'finished' });
    const tree = new SpanTree(slice!.spanContext().traceId);
    for (const phase of ['collect', 'maxmind', 'cymru', 'dshield', 'persist']) {
      const span = tree.one(`job.${phase}`);
      expect(tree.parentOf(span)).toBe(slice);
      expect(span.attributes).toMatchObject({ 'ipenrich.job.id': job.id, 'ipenrich.job.phase': phase, 'ipenrich.job.phase.finished': true });
    }
    expect(tree.named('job.greynoise')).toHaveLength(0);
    const chunks = tree.named('enrich');
    expect(chunks.length).toBeGreaterThanOrEqual(2);
    for (const chunk of chunks) {
      expect(tree.parentOf(chunk)).toBe(slice);
      expect(chunk.attributes['ipenrich.kind']).toBe('job');
    }
    expect(tree.named('cymru.query')).toHaveLength(1);
    expect(tree.named('dshield')).toHaveLength(2);
  });
});
