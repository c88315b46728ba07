import type { RecordCache } from '../cache/tier.js';
import type { Clock } from '../clock.js';
import type { RecordStore, RecordUpdate } from '../db/record-store.js';
import { parseAddress, type ParsedAddress } from '../ip/address.js';
import {
  SOURCE_NAMES,
  type IpRecord,
  type SourceName,
  type SourceOutcome,
  type StoredRecord,
  type StoredSourceState,
  type StoredSources,
} from '../record/model.js';
import { routableView, unroutedView, type Outcomes } from './record-view.js';
import type { LookupRecorder } from './lookup-recorder.js';
import type { EnrichStats, SourceCounters } from './stats.js';
import type { Freshness, PerAddressSource, SourceSet } from './sources.js';

export interface EnrichRequest {
  inputs: readonly string[];
  sources?: readonly SourceName[];
  refresh?: boolean;
  /** Epoch ms; rate-limited sources answer `rate_limited` rather than wait past it. */
  deadline: number;
}

export interface EnrichResult {
  results: IpRecord[];
  stats: EnrichStats;
}

export interface EnricherDeps {
  sources: SourceSet;
  store: RecordStore;
  cache: RecordCache;
  freshness: Freshness;
  clock: Clock;
  /** Counts lookups of addresses a request answered from the tiers without writing them. */
  lookups: LookupRecorder;
  /** Told of every finished request, e.g. to feed Prometheus counters. */
  onStats?: (stats: EnrichStats) => void;
}

/** What one request does for one address: what it knew, and what each source answered now. */
interface Work {
  ip: string;
  known: StoredRecord | undefined;
  outcomes: Outcomes;
  update: Partial<StoredSources>;
  /** Sources of `update` already written, so a later write in this request carries only new answers. */
  saved: Set<SourceName>;
  /** Whether this request's lookup was already counted in the stored lookup count. */
  counted: boolean;
}

const EMPTY_SOURCES: StoredSources = { maxmind: null, cymru: null, greynoise: null, dshield: null };

/** Durations are measured in real time whatever clock decides freshness: they describe this process. */
const elapsed = (since: number) => Math.round((performance.now() - since) * 100) / 100;

function emptyCounters(): Record<SourceName, SourceCounters> {
  return Object.fromEntries(
    SOURCE_NAMES.map((source) => [source, { lookups: 0, ok: 0, notFound: 0, errors: 0, rateLimited: 0 }]),
  ) as Record<SourceName, SourceCounters>;
}

function count(counters: SourceCounters, outcome: SourceOutcome<unknown>): void {
  counters.lookups += 1;
  if (outcome.status === 'ok') counters.ok += 1;
  else if (outcome.status === 'not_found') counters.notFound += 1;
  else if (outcome.status === 'error') counters.errors += 1;
  else if (outcome.status === 'rate_limited') counters.rateLimited += 1;
}

/**
 * The cascade: collect what each address still needs, ask every source in bulk, merge, persist, and
 * answer in input order. Work for an address is done once however often it appears in the list.
 */
export class Enricher {
  constructor(private readonly deps: EnricherDeps) {}

  async enrich(request: EnrichRequest): Promise<EnrichResult> {
    const started = performance.now();
    const at = new Date(this.deps.clock.now());
    const parsed = request.inputs.map((input) => parseAddress(input));
    const unique = [...new Set(parsed.flatMap((p) => (p.kind === 'routable' ? [p.ip] : [])))];
    const stats: EnrichStats = {
      total: request.inputs.length,
      unique: unique.length,
      invalid: parsed.filter((p) => p.kind === 'invalid').length,
      bogon: parsed.filter((p) => p.kind === 'bogon').length,
      durationMs: 0,
      tiers: { l1: { hits: 0, misses: 0, durationMs: 0 }, l2: { hits: 0, misses: 0, durationMs: 0 } },
      sources: emptyCounters(),
    };

    const { known, fromL2 } = request.refresh
      ? { known: new Map<string, StoredRecord>(), fromL2: [] }
      : await this.readTiers(unique, stats);
    const work = new Map<string, Work>(
      unique.map((ip) => [ip, { ip, known: known.get(ip), outcomes: {}, update: {}, saved: new Set(), counted: false }]),
    );
    await this.fetch(work, new Set(request.sources ?? SOURCE_NAMES), request, stats, at);

    const merged = new Map<string, StoredRecord>();
    const cacheable: StoredRecord[] = [];
    const unchanged: string[] = [];
    for (const [ip, item] of work) {
      const changed = item.saved.size > 0;
      const record: StoredRecord = {
        ip,
        sources: { ...(item.known?.sources ?? EMPTY_SOURCES), ...item.update },
        updatedAt: changed || !item.known ? at.toISOString() : item.known.updatedAt,
      };
      merged.set(ip, record);
      if (changed) cacheable.push(record);
      else if (item.known) unchanged.push(ip);
    }
    for (const ip of fromL2) if (!work.get(ip)!.saved.size) cacheable.push(merged.get(ip)!);
    this.deps.lookups.record(unchanged);
    await this.deps.cache.setMany(cacheable);

    const results = request.inputs.map((input, index) => {
      const address = parsed[index] as ParsedAddress;
      if (address.kind !== 'routable') return unroutedView(input, address);
      return routableView(input, merged.get(address.ip)!, work.get(address.ip)!.outcomes);
    });
    stats.durationMs = elapsed(started);
    this.deps.onStats?.(stats);
    return { results, stats };
  }

  private async readTiers(ips: string[], stats: EnrichStats) {
    let started = performance.now();
    const known = await this.deps.cache.getMany(ips);
    stats.tiers.l1 = { hits: known.size, misses: ips.length - known.size, durationMs: elapsed(started) };
    const missing = ips.filter((ip) => !known.has(ip));
    started = performance.now();
    const stored = await this.deps.store.load(missing);
    stats.tiers.l2 = { hits: stored.size, misses: missing.length - stored.size, durationMs: elapsed(started) };
    for (const [ip, record] of stored) known.set(ip, record);
    return { known, fromL2: [...stored.keys()] };
  }

  private isFresh(source: Exclude<SourceName, 'maxmind'>, state: StoredSourceState<unknown> | null, now: number) {
    return state !== null && now - Date.parse(state.fetchedAt) < this.deps.freshness[source];
  }

  /**
   * Runs the sources and persists as answers arrive: each Team Cymru batch is written as soon as it is
   * final, while other batches and the rate-limited sources are still in flight.
   */
  private async fetch(
    work: Map<string, Work>,
    requested: Set<SourceName>,
    request: EnrichRequest,
    stats: EnrichStats,
    at: Date,
  ) {
    const { sources } = this.deps;
    const now = at.getTime();
    const fetchedAt = at.toISOString();
    const refresh = request.refresh === true;
    const record = (item: Work, source: SourceName, outcome: SourceOutcome<unknown>) => {
      item.outcomes[source] = outcome;
      count(stats.sources[source], outcome);
      if (outcome.status === 'ok' || outcome.status === 'not_found') {
        const state: StoredSourceState<unknown> = { status: outcome.status, fetchedAt, data: outcome.data };
        if (outcome.database !== undefined) state.database = outcome.database;
        (item.update as Record<SourceName, StoredSourceState<unknown>>)[source] = state;
      }
    };
    const recordAll = (source: SourceName, results: Map<string, SourceOutcome<unknown>>) => {
      const items: Work[] = [];
      for (const [ip, outcome] of results) {
        const item = work.get(ip);
        if (!item) continue;
        record(item, source, outcome);
        items.push(item);
      }
      return items;
    };

    if (requested.has('maxmind')) {
      const availability = sources.maxmind.availability();
      const version = sources.maxmind.version();
      for (const [ip, item] of work) {
        const state = item.known?.sources.maxmind;
        if (!refresh && state && state.database === version) continue;
        if (availability.status !== 'ready') {
          item.outcomes.maxmind = { status: availability.status, reason: availability.reason ?? 'not configured' };
        } else {
          record(item, 'maxmind', sources.maxmind.lookup(ip));
        }
      }
    }

    const cymruIps: string[] = [];
    if (requested.has('cymru')) {
      for (const [ip, item] of work) {
        const maxmindState = item.update.maxmind ?? item.known?.sources.maxmind;
        if (maxmindState?.data?.asn) {
          if (!item.known?.sources.cymru) item.outcomes.cymru = { status: 'skipped', reason: 'MaxMind knows the ASN' };
          continue;
        }
        if (!refresh && this.isFresh('cymru', item.known?.sources.cymru ?? null, now)) continue;
        cymruIps.push(ip);
      }
    }

    const pending: Array<Promise<unknown>> = [];
    if (cymruIps.length > 0) {
      pending.push(
        sources.cymru.lookupStreaming(cymruIps, (results) => this.persist(recordAll('cymru', results), at)),
      );
    }
    for (const source of ['greynoise', 'dshield'] as const) {
      if (!requested.has(source)) continue;
      const upstream: PerAddressSource<unknown> = sources[source];
      const availability = upstream.availability();
      const due = [...work].filter(([, item]) => refresh || !this.isFresh(source, item.known?.sources[source] ?? null, now));
      if (availability.status !== 'ready') {
        for (const [, item] of due) item.outcomes[source] = { status: availability.status, reason: availability.reason ?? '' };
        continue;
      }
      if (due.length === 0) continue;
      pending.push(
        upstream.lookup(due.map(([ip]) => ip), { deadline: request.deadline }).then((results) => recordAll(source, results)),
      );
    }
    await Promise.all(pending);
    await this.persist(work.values(), at);
  }

  /** Writes what these addresses learned and has not been written yet, counting each address once. */
  private async persist(items: Iterable<Work>, at: Date) {
    const updates: RecordUpdate[] = [];
    for (const item of items) {
      const sources: Partial<StoredSources> = {};
      for (const [source, state] of Object.entries(item.update) as Array<[SourceName, StoredSourceState<unknown>]>) {
        if (item.saved.has(source)) continue;
        item.saved.add(source);
        (sources as Record<SourceName, StoredSourceState<unknown>>)[source] = state;
      }
      if (Object.keys(sources).length === 0) continue;
      updates.push({ ip: item.ip, sources, lookups: item.counted ? 0 : 1 });
      item.counted = true;
    }
    await this.deps.store.save(updates, at);
  }
}
