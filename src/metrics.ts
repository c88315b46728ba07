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

  observe(stats: EnrichStats): void {
    for (const tier of ['l1', 'l2'] as const) {
      const { hits, misses, durationMs } = stats.tiers[tier];
      if (hits) this.tierLookups.inc({ tier, result: 'hit' }, hits);
      if (misses) this.tierLookups.inc({ tier, result: 'miss' }, misses);
      if (hits + misses > 0) this.tierLatency.observe({ tier }, durationMs / 1000);
    }
    for (const source of SOURCE_NAMES) {
      const counters = stats.sources[source];
      const outcomes = {
        ok: counters.ok,
        not_found: counters.notFound,
        error: counters.errors,
        rate_limited: counters.rateLimited,
      };
      for (const [outcome, value] of Object.entries(outcomes)) {
        if (value) this.upstreamLookups.inc({ source, outcome }, value);
      }
    }
    this.addresses.inc({ kind: 'routable' }, stats.unique);
    if (stats.invalid) this.addresses.inc({ kind: 'invalid' }, stats.invalid);
    if (stats.bogon) this.addresses.inc({ kind: 'bogon' }, stats.bogon);
    this.requestDuration.observe(stats.durationMs / 1000);
  }

  async text(): Promise<string> {
    return this.registry.metrics();
  }
}
