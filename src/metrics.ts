import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { EnrichKind } from './enrich/cascade.js';
import type { EnrichStats } from './enrich/stats.js';
import { SOURCE_NAMES } from './record/model.js';

type Labels = Record<string, string>;

/** One label set of a counter fed per request: increments are plain additions. */
interface Tally {
  pending: number;
}

/**
 * A Prometheus counter whose increments are handed to prom-client only when the registry is scraped: each
 * label set has a function that says how much it grew since the last scrape.
 */
class DeferredCounter {
  private readonly growth: Array<{ labels: Labels; grownBy: () => number }> = [];

  constructor(registry: Registry, name: string, help: string, labelNames: readonly string[]) {
    const growth = this.growth;
    new Counter({
      name,
      help,
      labelNames,
      registers: [registry],
      collect() {
        for (const { labels, grownBy } of growth) this.inc(labels, grownBy());
      },
    });
  }

  /**
   * A label set fed on every request. prom-client hashes the label set and allocates on each increment,
   * which was a measurable share of a cached GET /ip/:addr; here an increment is an addition.
   */
  tally(labels: Labels): Tally {
    const tally = { pending: 0 };
    this.follow(labels, () => {
      const grown = tally.pending;
      tally.pending = 0;
      return grown;
    });
    return tally;
  }

  /** A label set that mirrors a total the services already keep. */
  mirror(labels: Labels, total: () => number): void {
    let seen = 0;
    this.follow(labels, () => {
      const now = total();
      const grown = Math.max(0, now - seen);
      seen = Math.max(seen, now);
      return grown;
    });
  }

  private follow(labels: Labels, grownBy: () => number): void {
    this.growth.push({ labels, grownBy });
  }
}

/** What prom-client's registry reads from a metric when it is scraped. */
interface Exposition {
  name: string;
  help: string;
  type: 'histogram';
  aggregator: 'sum';
  values: Array<{ metricName: string; labels: Record<string, string | number>; value: number }>;
}

/** One label set of a histogram: `counts[i]` observations fell in bucket i (the last is +Inf). */
interface Series {
  labels: Labels;
  counts: number[];
  sum: number;
  count: number;
}

/**
 * A Prometheus histogram with the same exposition as prom-client's, for the same reason as
 * DeferredCounter: an observation is a bucket search over a handful of bounds and three additions.
 */
class DirectHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  private readonly series: Series[] = [];

  constructor(
    registry: Registry,
    readonly name: string,
    readonly help: string,
    private readonly buckets: readonly number[],
  ) {
    registry.registerMetric(this as never);
  }

  /** Observations of one label set; bind it once and observe on it. */
  bind(labels: Labels = {}): (value: number) => void {
    const series: Series = { labels, counts: Array<number>(this.buckets.length + 1).fill(0), sum: 0, count: 0 };
    this.series.push(series);
    const { buckets } = this;
    return (value) => {
      let bucket = 0;
      while (bucket < buckets.length && value > (buckets[bucket] as number)) bucket += 1;
      series.counts[bucket] = (series.counts[bucket] as number) + 1;
      series.sum += value;
      series.count += 1;
    };
  }

  get(): Promise<Exposition> {
    const values: Exposition['values'] = [];
    for (const { labels, counts, sum, count } of this.series) {
      let cumulative = 0;
      counts.forEach((inBucket, bucket) => {
        cumulative += inBucket;
        const le = bucket < this.buckets.length ? (this.buckets[bucket] as number) : '+Inf';
        values.push({ metricName: `${this.name}_bucket`, labels: { ...labels, le }, value: cumulative });
      });
      values.push({ metricName: `${this.name}_sum`, labels, value: sum });
      values.push({ metricName: `${this.name}_count`, labels, value: count });
    }
    return Promise.resolve({ name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values });
  }

  reset(): void {
    for (const series of this.series) {
      series.counts.fill(0);
      series.sum = 0;
      series.count = 0;
    }
  }
}

interface UpstreamTotals {
  cymruQueries(): number;
  cymruFailures(): number;
  limiterAdmitted(source: 'greynoise' | 'dshield'): number;
  limiterRefused(source: 'greynoise' | 'dshield'): number;
  cacheErrors(): number;
}

/** The state of the background jobs as the database holds it, read once per scrape. */
export interface JobGauges {
  byStatus: Record<string, number>;
  /** Jobs waiting for a worker. */
  queued: number;
  /** Age of the oldest of them, 0 when none waits. */
  oldestQueuedSeconds: number;
}

/** How long a scrape may reuse a state it read, so that the gauges fed by one read cost one read. */
const SCRAPE_REUSE_MS = 1000;
/**
 * A scrape does not wait longer for a state read from the database or Redis; its gauges then keep their last
 * values, and every other metric is still answered (an outage is when they matter most).
 */
const SCRAPE_WAIT_MS = 2000;

/** `read`, called at most once per SCRAPE_REUSE_MS, its answer undefined when it fails or does not come in time. */
function sampled<T>(read: () => Promise<T>): () => Promise<T | undefined> {
  let last: { at: number; value: Promise<T | undefined> } | undefined;
  return () => {
    const now = Date.now();
    if (!last || now - last.at > SCRAPE_REUSE_MS) {
      let timer: NodeJS.Timeout | undefined;
      const gaveUp = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), SCRAPE_WAIT_MS)));
      const answer = read().catch(() => undefined);
      last = { at: now, value: Promise.race([answer, gaveUp]).finally(() => clearTimeout(timer)) };
    }
    return last.value;
  };
}

/** Overall readiness as /readyz reports it. */
export const READINESS_STATES = ['ready', 'degraded', 'unready'] as const;

/**
 * Prometheus counters for the cache tiers and the upstreams. Per-request numbers arrive through
 * observe(); totals the services already keep (bulk queries, limiter admissions) are read at scrape time.
 */
export class Metrics {
  readonly registry = new Registry();
  private readonly tierLookups = new DeferredCounter(
    this.registry,
    'ipenrich_cache_lookups_total',
    'addresses looked up in a cache tier, by result',
    ['tier', 'result'],
  );
  private readonly tierLatency = new DirectHistogram(
    this.registry,
    'ipenrich_cache_read_seconds',
    'time to read one request’s addresses from a cache tier',
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
  );
  private readonly upstreamLookups = new DeferredCounter(
    this.registry,
    'ipenrich_upstream_lookups_total',
    'addresses asked of an upstream source, by outcome',
    ['source', 'outcome'],
  );
  private readonly addresses = new DeferredCounter(this.registry, 'ipenrich_addresses_total', 'strings received for enrichment, by kind', [
    'kind',
  ]);
  private readonly requestDuration = new DirectHistogram(
    this.registry,
    'ipenrich_enrich_seconds',
    'time to enrich one request',
    [0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300],
  );

  constructor(totals: UpstreamTotals) {
    collectDefaultMetrics({ register: this.registry, prefix: 'ipenrich_' });
    const mirror = (name: string, help: string, total: () => number) =>
      new DeferredCounter(this.registry, name, help, []).mirror({}, total);
    mirror('ipenrich_cymru_bulk_queries_total', 'bulk whois queries sent to Team Cymru', () => totals.cymruQueries());
    mirror('ipenrich_cymru_bulk_failures_total', 'bulk whois queries that failed', () => totals.cymruFailures());
    mirror('ipenrich_cache_errors_total', 'L1 cache commands that failed', () => totals.cacheErrors());
    const decisions = new DeferredCounter(
      this.registry,
      'ipenrich_limiter_decisions_total',
      'rate limiter decisions per upstream (admitted: a request left; refused: an address that could not go before its deadline)',
      ['source', 'decision'],
    );
    for (const source of ['greynoise', 'dshield'] as const) {
      decisions.mirror({ source, decision: 'admitted' }, () => totals.limiterAdmitted(source));
      decisions.mirror({ source, decision: 'refused' }, () => totals.limiterRefused(source));
    }
  }

  /** Label sets are bound once, so that observing a request never builds or hashes one. */
  private readonly bound = {
    tiers: (['l1', 'l2'] as const).map((tier) => ({
      tier,
      hit: this.tierLookups.tally({ tier, result: 'hit' }),
      miss: this.tierLookups.tally({ tier, result: 'miss' }),
      latency: this.tierLatency.bind({ tier }),
    })),
    sources: SOURCE_NAMES.map((source) => ({
      source,
      ok: this.upstreamLookups.tally({ source, outcome: 'ok' }),
      notFound: this.upstreamLookups.tally({ source, outcome: 'not_found' }),
      errors: this.upstreamLookups.tally({ source, outcome: 'error' }),
      rateLimited: this.upstreamLookups.tally({ source, outcome: 'rate_limited' }),
    })),
    routable: this.addresses.tally({ kind: 'routable' }),
    invalid: this.addresses.tally({ kind: 'invalid' }),
    bogon: this.addresses.tally({ kind: 'bogon' }),
    duration: this.requestDuration.bind(),
  };

  private readonly jobPhaseDuration = new DirectHistogram(
    this.registry,
    'ipenrich_job_phase_seconds',
    'time a job spent in a phase, from its first chunk to its last',
    [1, 5, 30, 60, 300, 900, 3600, 4 * 3600, 12 * 3600, 86_400, 3 * 86_400],
  );
  private readonly jobPhases = new Map<string, (value: number) => void>();

  /** Observes a phase a job has just finished. */
  observeJobPhase(phase: string, seconds: number): void {
    let observe = this.jobPhases.get(phase);
    if (!observe) this.jobPhases.set(phase, (observe = this.jobPhaseDuration.bind({ phase })));
    observe(seconds);
  }

  /** Gauges of the jobs' state, read from `read` when scraped (the jobs are shared by every replica). */
  trackJobs(statuses: readonly string[], read: () => Promise<JobGauges>): void {
    const current = sampled(read);
    const registers = [this.registry];
    new Gauge({
      name: 'ipenrich_jobs',
      help: 'background jobs kept (see JOB_RETENTION), by status',
      labelNames: ['status'],
      registers,
      async collect() {
        const gauges = await current();
        if (gauges) for (const status of statuses) this.set({ status }, gauges.byStatus[status] ?? 0);
      },
    });
    new Gauge({
      name: 'ipenrich_job_queue_depth',
      help: 'jobs waiting for a worker',
      registers,
      async collect() {
        const gauges = await current();
        if (gauges) this.set(gauges.queued);
      },
    });
    new Gauge({
      name: 'ipenrich_job_oldest_queued_seconds',
      help: 'age of the oldest job waiting for a worker (0 when none waits)',
      registers,
      async collect() {
        const gauges = await current();
        if (gauges) this.set(gauges.oldestQueuedSeconds);
      },
    });
  }

  /**
   * Readiness as /readyz reports it, one series per state with 1 for the current one (0 for the others), read
   * when scraped: `unready` while the database is unreachable, `degraded` while Redis is.
   */
  trackReadiness(read: () => Promise<{ status: (typeof READINESS_STATES)[number] }>): void {
    const current = sampled(read);
    new Gauge({
      name: 'ipenrich_readiness',
      help: 'readiness as /readyz reports it: 1 for the current state (ready, degraded: Redis unreachable, unready: database unreachable)',
      labelNames: ['status'],
      registers: [this.registry],
      async collect() {
        const report = await current();
        if (report) for (const status of READINESS_STATES) this.set({ status }, report.status === status ? 1 : 0);
      },
    });
  }

  /** Seconds left of each rate-limited upstream's Retry-After block (shared by every replica with Redis), 0 when none. */
  trackBlocks<S extends string>(sources: readonly S[], blockedUntil: (source: S) => Promise<number | null>, now: () => number): void {
    const current = sampled(() => Promise.all(sources.map((source) => blockedUntil(source))));
    new Gauge({
      name: 'ipenrich_upstream_blocked_seconds',
      help: 'seconds left of the Retry-After block (or backoff after failures) an upstream is under, 0 when none',
      labelNames: ['source'],
      registers: [this.registry],
      async collect() {
        const until = await current();
        if (!until) return;
        const at = now();
        sources.forEach((source, index) => this.set({ source }, Math.max(0, ((until[index] ?? at) - at) / 1000)));
      },
    });
  }

  private readonly httpDuration = new DirectHistogram(
    this.registry,
    'ipenrich_http_request_duration_seconds',
    'time from a request’s arrival to its answer sent, by route and status code',
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
  );

  /**
   * The observer of one route's answers. Its series are bound per status code on first use, so that a request
   * costs a map lookup and the histogram's additions.
   */
  routeTimer(method: string, route: string): (statusCode: number, seconds: number) => void {
    const byStatus = new Map<number, (seconds: number) => void>();
    return (statusCode, seconds) => {
      let observe = byStatus.get(statusCode);
      if (!observe) byStatus.set(statusCode, (observe = this.httpDuration.bind({ method, route, status_code: String(statusCode) })));
      observe(seconds);
    };
  }

  /**
   * A job's chunks count as upstream and cache traffic like any request, but not as requests: their
   * durations and strings are the job's own (see the job metrics).
   */
  observe(stats: EnrichStats, kind: EnrichKind = 'request'): void {
    for (const { tier, hit, miss, latency } of this.bound.tiers) {
      const { hits, misses, durationMs } = stats.tiers[tier];
      hit.pending += hits;
      miss.pending += misses;
      if (hits + misses > 0) latency(durationMs / 1000);
    }
    for (const bound of this.bound.sources) {
      const counters = stats.sources[bound.source];
      bound.ok.pending += counters.ok;
      bound.notFound.pending += counters.notFound;
      bound.errors.pending += counters.errors;
      bound.rateLimited.pending += counters.rateLimited;
    }
    if (kind === 'job') return;
    this.bound.routable.pending += stats.total - stats.invalid - stats.bogon;
    this.bound.invalid.pending += stats.invalid;
    this.bound.bogon.pending += stats.bogon;
    this.bound.duration(stats.durationMs / 1000);
  }

  async text(): Promise<string> {
    return this.registry.metrics();
  }
}
