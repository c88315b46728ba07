import { describe, expect, it } from 'vitest';
import type { EnrichStats } from '../src/enrich/stats.js';
import { Metrics } from '../src/metrics.js';

const counters = (ok = 0, notFound = 0) => ({ lookups: ok + notFound, ok, notFound, errors: 0, rateLimited: 0 });

function stats(overrides: Partial<EnrichStats>): EnrichStats {
  return {
    total: 0,
    unique: 0,
    invalid: 0,
    bogon: 0,
    durationMs: 0,
    tiers: { l1: { hits: 0, misses: 0, durationMs: 0 }, l2: { hits: 0, misses: 0, durationMs: 0 } },
    sources: { maxmind: counters(), cymru: counters(), greynoise: counters(), dshield: counters() },
    ...overrides,
  };
}

/** The value of one exposition line, e.g. `name{a="b"} 3`. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((candidate) => candidate.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('Prometheus exposition', () => {
  const metrics = new Metrics({
    cymruQueries: () => 7,
    cymruFailures: () => 1,
    limiterAdmitted: () => 11,
    limiterRefused: () => 2,
    cacheErrors: () => 0,
  });

  it('adds up every observed request in counters and histograms, as prom-client would expose them', async () => {
    metrics.observe(
      stats({
        total: 5,
        unique: 3,
        invalid: 1,
        durationMs: 30,
        tiers: { l1: { hits: 2, misses: 1, durationMs: 0.2 }, l2: { hits: 0, misses: 1, durationMs: 3 } },
        sources: { maxmind: counters(0, 1), cymru: counters(1), greynoise: counters(0, 1), dshield: counters() },
      }),
    );
    metrics.observe(stats({ total: 1, unique: 1, durationMs: 2, tiers: { l1: { hits: 1, misses: 0, durationMs: 0.01 }, l2: { hits: 0, misses: 0, durationMs: 0 } } }));
    const text = await metrics.text();

    expect(text).toContain('# TYPE ipenrich_cache_lookups_total counter');
    expect(sample(text, 'ipenrich_cache_lookups_total{tier="l1",result="hit"}')).toBe(3);
    expect(sample(text, 'ipenrich_cache_lookups_total{tier="l1",result="miss"}')).toBe(1);
    expect(sample(text, 'ipenrich_cache_lookups_total{tier="l2",result="miss"}')).toBe(1);
    expect(sample(text, 'ipenrich_upstream_lookups_total{source="cymru",outcome="ok"}')).toBe(1);
    expect(sample(text, 'ipenrich_upstream_lookups_total{source="greynoise",outcome="not_found"}')).toBe(1);
    expect(sample(text, 'ipenrich_upstream_lookups_total{source="dshield",outcome="error"}')).toBe(0);
    // Strings, not distinct addresses: the first request held one address twice.
    expect(sample(text, 'ipenrich_addresses_total{kind="routable"}')).toBe(5);
    expect(sample(text, 'ipenrich_addresses_total{kind="invalid"}')).toBe(1);

    expect(text).toContain('# TYPE ipenrich_enrich_seconds histogram');
    expect(sample(text, 'ipenrich_enrich_seconds_bucket{le="0.005"}')).toBe(1);
    expect(sample(text, 'ipenrich_enrich_seconds_bucket{le="0.01"}')).toBe(1);
    expect(sample(text, 'ipenrich_enrich_seconds_bucket{le="0.05"}')).toBe(2);
    expect(sample(text, 'ipenrich_enrich_seconds_bucket{le="+Inf"}')).toBe(2);
    expect(sample(text, 'ipenrich_enrich_seconds_sum')).toBeCloseTo(0.032);
    expect(sample(text, 'ipenrich_enrich_seconds_count')).toBe(2);
    // A read of 0.2 ms and one of 0.01 ms both fall in the first L1 bucket; L2 was read once.
    expect(sample(text, 'ipenrich_cache_read_seconds_bucket{tier="l1",le="0.0005"}')).toBe(2);
    expect(sample(text, 'ipenrich_cache_read_seconds_count{tier="l1"}')).toBe(2);
    expect(sample(text, 'ipenrich_cache_read_seconds_bucket{tier="l2",le="0.0025"}')).toBe(0);
    expect(sample(text, 'ipenrich_cache_read_seconds_bucket{tier="l2",le="0.005"}')).toBe(1);
    expect(text).toContain('# TYPE ipenrich_cymru_bulk_queries_total counter');
    expect(sample(text, 'ipenrich_cymru_bulk_queries_total')).toBe(7);
    expect(sample(text, 'ipenrich_limiter_decisions_total{source="dshield",decision="refused"}')).toBe(2);
  });

  it('keeps counting across scrapes', async () => {
    const before = sample(await metrics.text(), 'ipenrich_addresses_total{kind="routable"}') ?? 0;
    metrics.observe(stats({ total: 5, unique: 5 }));
    expect(sample(await metrics.text(), 'ipenrich_addresses_total{kind="routable"}')).toBe(before + 5);
    expect(sample(await metrics.text(), 'ipenrich_addresses_total{kind="routable"}')).toBe(before + 5);
  });

  it('counts totals the services keep by what they grew between scrapes', async () => {
    let queries = 3;
    const fed = new Metrics({ cymruQueries: () => queries, cymruFailures: () => 0, limiterAdmitted: () => 0, limiterRefused: () => 0, cacheErrors: () => 0 });
    expect(sample(await fed.text(), 'ipenrich_cymru_bulk_queries_total')).toBe(3);
    queries = 10;
    expect(sample(await fed.text(), 'ipenrich_cymru_bulk_queries_total')).toBe(10);
    expect(sample(await fed.text(), 'ipenrich_cymru_bulk_queries_total')).toBe(10);
  });
});

describe('Prometheus gauges and route timings', () => {
  const totals = { cymruQueries: () => 0, cymruFailures: () => 0, limiterAdmitted: () => 0, limiterRefused: () => 0, cacheErrors: () => 0 };

  it('times each route by method and status code, in seconds', async () => {
    const metrics = new Metrics(totals);
    const ip = metrics.routeTimer('GET', '/ip/:addr');
    ip(200, 0.0004);
    ip(200, 0.003);
    ip(400, 0.0002);
    metrics.routeTimer('POST', '/enrich')(200, 0.2);
    const text = await metrics.text();
    expect(sample(text, 'ipenrich_http_request_duration_seconds_count{method="GET",route="/ip/:addr",status_code="200"}')).toBe(2);
    expect(sample(text, 'ipenrich_http_request_duration_seconds_bucket{method="GET",route="/ip/:addr",status_code="200",le="0.001"}')).toBe(1);
    expect(sample(text, 'ipenrich_http_request_duration_seconds_count{method="GET",route="/ip/:addr",status_code="400"}')).toBe(1);
    expect(sample(text, 'ipenrich_http_request_duration_seconds_sum{method="POST",route="/enrich",status_code="200"}')).toBeCloseTo(0.2);
  });

  it('shows the readiness state as 1 and the other states as 0', async () => {
    const metrics = new Metrics(totals);
    metrics.trackReadiness(() => Promise.resolve({ status: 'degraded' as const }));
    const text = await metrics.text();
    expect(sample(text, 'ipenrich_readiness{status="degraded"}')).toBe(1);
    expect(sample(text, 'ipenrich_readiness{status="ready"}')).toBe(0);
    expect(sample(text, 'ipenrich_readiness{status="unready"}')).toBe(0);
  });

  it('shows the seconds left of each upstream block, 0 for an upstream not blocked', async () => {
    const metrics = new Metrics(totals);
    const now = 1_800_000_000_000;
    const until = { greynoise: now + 90_500, dshield: null };
    metrics.trackBlocks(['greynoise', 'dshield'] as const, (source) => Promise.resolve(until[source]), () => now);
    const text = await metrics.text();
    expect(sample(text, 'ipenrich_upstream_blocked_seconds{source="greynoise"}')).toBe(90.5);
    expect(sample(text, 'ipenrich_upstream_blocked_seconds{source="dshield"}')).toBe(0);
  });
});
