import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { EnrichStats } from './enrich/stats.js';
import { SOURCE_NAMES } from './record/model.js';

interface UpstreamGauges {
  cymruQueries(): number;
  cymruFailures(): number;
  limiterAdmitted(source: 'greynoise' | 'dshield'): number;
  limiterRefused(source: 'greynoise' | 'dshield'): number;
  cacheErrors(): number;
}

/**
 * Prometheus counters for the cache tiers and the upstreams. Per-request numbers arrive through
 * observe(); totals the services already keep (bulk queries, limiter admissions) are read at scrape time.
 */
export class Metrics {
  readonly registry = new Registry();
  private readonly tierLookups = new Counter({
    name: 'ipenrich_cache_lookups_total',
    help: 'addresses looked up in a cache tier, by result',
    labelNames: ['tier', 'result'] as const,
    registers: [this.registry],
  });
  private readonly tierLatency = new Histogram({
    name: 'ipenrich_cache_read_seconds',
    help: 'time to read one request’s addresses from a cache tier',
    labelNames: ['tier'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
    registers: [this.registry],
  });
  private readonly upstreamLookups = new Counter({
    name: 'ipenrich_upstream_lookups_total',
    help: 'addresses asked of an upstream source, by outcome',
    labelNames: ['source', 'outcome'] as const,
    registers: [this.registry],
  });
  private readonly addresses = new Counter({
    name: 'ipenrich_addresses_total',
    help: 'strings received for enrichment, by kind',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });
  private readonly requestDuration = new Histogram({
    name: 'ipenrich_enrich_seconds',
    help: 'time to enrich one request',
    buckets: [0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300],
    registers: [this.registry],
  });

  constructor(gauges: UpstreamGauges) {
    collectDefaultMetrics({ register: this.registry, prefix: 'ipenrich_' });
    const gauge = (name: string, help: string, read: () => number) =>
      new Gauge({
        name,
        help,
        registers: [this.registry],
        collect() {
          this.set(read());
        },
      });
    gauge('ipenrich_cymru_bulk_queries_total', 'bulk whois queries sent to Team Cymru', () => gauges.cymruQueries());
    gauge('ipenrich_cymru_bulk_failures_total', 'bulk whois queries that failed', () => gauges.cymruFailures());
    gauge('ipenrich_cache_errors_total', 'L1 cache commands that failed', () => gauges.cacheErrors());
    new Gauge({
      name: 'ipenrich_limiter_decisions_total',
      help: 'rate limiter decisions per upstream (admitted: a request left; refused: deferred past a deadline)',
      labelNames: ['source', 'decision'] as const,
      registers: [this.registry],
      collect() {
        for (const source of ['greynoise', 'dshield'] as const) {
          this.set({ source, decision: 'admitted' }, gauges.limiterAdmitted(source));
          this.set({ source, decision: 'refused' }, gauges.limiterRefused(source));
        }
      },
    });
  }

  /**
   * Label children are bound once: resolving labels per observation (hashing the label set) was a
   * measurable share of a cached GET /ip/:addr.
   */
  private readonly bound = {
    tiers: (['l1', 'l2'] as const).map((tier) => ({
      tier,
      hit: this.tierLookups.labels(tier, 'hit'),
      miss: this.tierLookups.labels(tier, 'miss'),
      latency: this.tierLatency.labels(tier),
    })),
    sources: SOURCE_NAMES.map((source) => ({
      source,
      ok: this.upstreamLookups.labels(source, 'ok'),
      notFound: this.upstreamLookups.labels(source, 'not_found'),
      errors: this.upstreamLookups.labels(source, 'error'),
      rateLimited: this.upstreamLookups.labels(source, 'rate_limited'),
    })),
    routable: this.addresses.labels('routable'),
    invalid: this.addresses.labels('invalid'),
    bogon: this.addresses.labels('bogon'),
  };

  observe(stats: EnrichStats): void {
    for (const { tier, hit, miss, latency } of this.bound.tiers) {
      const { hits, misses, durationMs } = stats.tiers[tier];
      if (hits) hit.inc(hits);
      if (misses) miss.inc(misses);
      if (hits + misses > 0) latency.observe(durationMs / 1000);
    }
    for (const bound of this.bound.sources) {
      const counters = stats.sources[bound.source];
      if (counters.lookups === 0) continue;
      if (counters.ok) bound.ok.inc(counters.ok);
      if (counters.notFound) bound.notFound.inc(counters.notFound);
      if (counters.errors) bound.errors.inc(counters.errors);
      if (counters.rateLimited) bound.rateLimited.inc(counters.rateLimited);
    }
    if (stats.unique) this.bound.routable.inc(stats.unique);
    if (stats.invalid) this.bound.invalid.inc(stats.invalid);
    if (stats.bogon) this.bound.bogon.inc(stats.bogon);
    this.requestDuration.observe(stats.durationMs / 1000);
  }

  async text(): Promise<string> {
    return this.registry.metrics();
  }
}
