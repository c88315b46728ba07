import type { RecordCache } from '../cache/tier.js';
import { chunks } from '../chunks.js';
import type { Clock } from '../clock.js';
import type { RecordStore, RecordUpdate } from '../db/record-store.js';
import { parseAddress, type ParsedAddress } from '../ip/address.js';
import {
  SOURCE_NAMES,
  type SourceName,
  type SourceOutcome,
  type StoredRecord,
  type StoredSourceState,
  type StoredSources,
} from '../record/model.js';
import { routableJson, unroutedView, type Outcomes } from './record-view.js';
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
  /** One IpRecord per input, in input order, already serialized as JSON. */
  results: string[];
  stats: EnrichStats;
}

export interface EnricherDeps {
  sources: SourceSet;
  store: RecordStore;
  cache: RecordCache;
  freshness: Freshness;
  clock: Clock;
  /** Addresses per unit of work: one Team Cymru bulk query's worth. */
  chunkSize: number;
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
  saved: Set<SourceName> | undefined;
  /** Whether this request's lookup was already counted in the stored lookup count. */
  counted: boolean;
  /** Read from L2 (not L1), so L1 is to be filled with it. */
  fromL2: boolean;
  /** The record as merged once the address's work is done. */
  merged?: StoredRecord;
}

/** One request's view of the sources: which were asked for, when "now" is, what to bypass. */
interface Plan {
  requested: ReadonlySet<SourceName>;
  refresh: boolean;
  deadline: number;
  at: Date;
  /** `at` in epoch ms, for freshness. */
  now: number;
  stats: EnrichStats;
}

const ALL_SOURCES: ReadonlySet<SourceName> = new Set(SOURCE_NAMES);
const RATE_LIMITED_SOURCES = ['greynoise', 'dshield'] as const;
const NO_WORK: ReadonlyMap<string, Work> = new Map();
const EMPTY_SOURCES: StoredSources = { maxmind: null, cymru: null, greynoise: null, dshield: null };

/** Durations are measured in real time whatever clock decides freshness: they describe this process. */
const elapsed = (since: number) => Math.round((performance.now() - since) * 100) / 100;

const noLookups = (): SourceCounters => ({ lookups: 0, ok: 0, notFound: 0, errors: 0, rateLimited: 0 });

function emptyCounters(): Record<SourceName, SourceCounters> {
  return { maxmind: noLookups(), cymru: noLookups(), greynoise: noLookups(), dshield: noLookups() };
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
 *
 * A list is cut into chunks of one Team Cymru query each, and every chunk runs its own pipeline (tiers,
 * MaxMind, the upstreams, persistence): the first bulk query leaves as soon as its chunk is collected,
 * and a chunk is merged and written while other chunks' queries are still in flight. The
 * sources bound their own concurrency, so many chunks never mean more connections.
 */
export class Enricher {
  constructor(private readonly deps: EnricherDeps) {}

  async enrich(request: EnrichRequest): Promise<EnrichResult> {
    const started = performance.now();
    const parsed = request.inputs.map((input) => parseAddress(input));
    const work = new Map<string, Work>();
    let invalid = 0;
    let bogon = 0;
    for (const address of parsed) {
      if (address.kind === 'invalid') invalid += 1;
      else if (address.kind === 'bogon') bogon += 1;
      else if (!work.has(address.ip)) {
        work.set(address.ip, { ip: address.ip, known: undefined, fromL2: false, outcomes: {}, update: {}, saved: undefined, counted: false });
      }
    }
    const now = this.deps.clock.now();
    const plan: Plan = {
      requested: request.sources ? new Set(request.sources) : ALL_SOURCES,
      refresh: request.refresh === true,
      deadline: request.deadline,
      at: new Date(now),
      now,
      stats: {
        total: request.inputs.length,
        unique: work.size,
        invalid,
        bogon,
        durationMs: 0,
        tiers: { l1: { hits: 0, misses: 0, durationMs: 0 }, l2: { hits: 0, misses: 0, durationMs: 0 } },
        sources: emptyCounters(),
      },
    };
    const items = [...work.values()];
    if (!plan.refresh && this.answerableInProcess(items, plan)) {
      this.settle(items, plan);
    } else {
      // Chunks are collected one after another (tiers, MaxMind, then their queries leave) so that the first
      // bulk query is not held back by the collection of the whole list; their answers overlap freely.
      let collected: Promise<unknown> = Promise.resolve();
      await Promise.all(
        chunks(items, this.deps.chunkSize).map((part) => {
          const chunk = this.enrichChunk(part, plan, collected);
          collected = chunk.collected;
          return chunk.done;
        }),
      );
    }

    const results = request.inputs.map((input, index) => {
      const address = parsed[index] as ParsedAddress;
      if (address.kind !== 'routable') return JSON.stringify(unroutedView(input, address));
      const item = work.get(address.ip)!;
      return routableJson(input, item.merged!, item.outcomes);
    });
    const { stats } = plan;
    stats.durationMs = elapsed(started);
    this.deps.onStats?.(stats);
    return { results, stats };
  }

  private enrichChunk(items: Work[], plan: Plan, previous: Promise<unknown>) {
    const collection = previous.then(async () => {
      await this.readTiers(items, plan.stats, !plan.refresh);
      // Wrapped, so that the collection settles once the queries have left, not when they have answered.
      return { answers: this.fetch(items, plan) };
    });
    return {
      collected: collection.then(() => undefined, () => undefined),
      done: collection.then(async ({ answers }) => {
        await answers;
        await this.finishChunk(items, plan);
      }),
    };
  }

  /**
   * Whether every address is in the process-local copy of L1 with nothing due from any source. Such a
   * request (a hot GET /ip/:addr, a list asked again) is then answered without a single await; the
   * addresses found are kept as known either way, so a request that does need more reads only the rest.
   */
  private answerableInProcess(items: Work[], plan: Plan): boolean {
    const started = performance.now();
    let hits = 0;
    for (const item of items) {
      item.known = this.deps.cache.peek(item.ip);
      if (item.known) hits += 1;
    }
    plan.stats.tiers.l1.hits += hits;
    plan.stats.tiers.l1.durationMs += elapsed(started);
    return (
      hits === items.length &&
      this.maxmindDue(items, plan).length === 0 &&
      this.cymruDue(items, plan).size === 0 &&
      RATE_LIMITED_SOURCES.every((source) => this.rateLimitedDue(source, items, plan).size === 0)
    );
  }

  private async finishChunk(items: Work[], plan: Plan): Promise<void> {
    const cacheable = this.settle(items, plan);
    if (cacheable.length > 0) await this.deps.cache.setMany(cacheable);
  }

  /** Merges what each address learned into its record; returns the records L1 lacks or holds stale. */
  private settle(items: Work[], plan: Plan): StoredRecord[] {
    const cacheable: StoredRecord[] = [];
    const unchanged: string[] = [];
    for (const item of items) {
      const changed = item.saved !== undefined;
      // An unchanged record stays the very object the tiers gave, so its serialized answer can be reused.
      item.merged =
        !changed && item.known
          ? item.known
          : {
              ip: item.ip,
              sources: { ...(item.known?.sources ?? EMPTY_SOURCES), ...item.update },
              updatedAt: plan.at.toISOString(),
            };
      if (changed || item.fromL2) cacheable.push(item.merged);
      // A changed record's lookup is counted by the write that carries the change.
      if (!changed && item.known) unchanged.push(item.ip);
    }
    this.deps.lookups.record(unchanged);
    return cacheable;
  }

  /**
   * Fills `known` for the addresses the process-local copy did not hold: from L1, then L2 for what L1
   * lacks. A refresh skips L1 but still reads the stored records: they are not used as fresh, but a
   * source that fails now must not erase what the record already holds from it.
   */
  private async readTiers(items: Work[], stats: EnrichStats, useL1: boolean): Promise<void> {
    let missing = items.filter((item) => !item.known);
    if (useL1 && missing.length > 0) {
      const started = performance.now();
      const cached = await this.deps.cache.getMany(missing.map((item) => item.ip));
      stats.tiers.l1.hits += cached.size;
      stats.tiers.l1.misses += missing.length - cached.size;
      stats.tiers.l1.durationMs += elapsed(started);
      for (const item of missing) item.known = cached.get(item.ip);
      missing = missing.filter((item) => !item.known);
    }
    if (missing.length === 0) return;
    const started = performance.now();
    const stored = await this.deps.store.load(missing.map((item) => item.ip));
    stats.tiers.l2.hits += stored.size;
    stats.tiers.l2.misses += missing.length - stored.size;
    stats.tiers.l2.durationMs += elapsed(started);
    for (const item of missing) {
      item.known = stored.get(item.ip);
      item.fromL2 = item.known !== undefined;
    }
  }

  private isFresh(source: Exclude<SourceName, 'maxmind'>, state: StoredSourceState<unknown> | null | undefined, now: number) {
    return state != null && now - Date.parse(state.fetchedAt) < this.deps.freshness[source];
  }

  /** The addresses MaxMind must be asked about: it has no answer from the loaded database build. */
  private maxmindDue(items: Work[], plan: Plan): Work[] {
    const due: Work[] = [];
    if (!plan.requested.has('maxmind')) return due;
    const { maxmind } = this.deps.sources;
    const version = maxmind.version();
    for (const item of items) {
      const state = item.known?.sources.maxmind;
      if (plan.refresh || !state || state.database !== version) due.push(item);
    }
    if (due.length === 0) return due;
    const availability = maxmind.availability();
    if (availability.status === 'ready') return due;
    for (const item of due) item.outcomes.maxmind = { status: availability.status, reason: availability.reason ?? 'not configured' };
    return [];
  }

  /** The addresses Team Cymru must be asked about: no fresh answer, and no ASN from MaxMind. */
  private cymruDue(items: Work[], plan: Plan): ReadonlyMap<string, Work> {
    if (!plan.requested.has('cymru')) return NO_WORK;
    let due: Map<string, Work> | undefined;
    for (const item of items) {
      const maxmindState = item.update.maxmind ?? item.known?.sources.maxmind;
      if (maxmindState?.data?.asn) {
        if (!item.known?.sources.cymru) item.outcomes.cymru = { status: 'skipped', reason: 'MaxMind knows the ASN' };
      } else if (plan.refresh || !this.isFresh('cymru', item.known?.sources.cymru, plan.now)) {
        (due ??= new Map()).set(item.ip, item);
      }
    }
    return due ?? NO_WORK;
  }

  /**
   * The addresses a rate-limited source must be asked about; none while it is unavailable. An address
   * the source cannot answer for at all (IPv6 for GreyNoise) is answered here, never queued.
   */
  private rateLimitedDue(source: (typeof RATE_LIMITED_SOURCES)[number], items: Work[], plan: Plan): ReadonlyMap<string, Work> {
    if (!plan.requested.has(source)) return NO_WORK;
    const upstream: PerAddressSource<unknown> = this.deps.sources[source];
    let due: Map<string, Work> | undefined;
    for (const item of items) {
      if (!plan.refresh && this.isFresh(source, item.known?.sources[source], plan.now)) continue;
      const unsupported = upstream.unsupported(item.ip);
      if (unsupported === undefined) (due ??= new Map()).set(item.ip, item);
      else item.outcomes[source] = { status: 'unsupported', reason: unsupported };
    }
    if (!due) return NO_WORK;
    const availability = upstream.availability();
    if (availability.status === 'ready') return due;
    for (const item of due.values()) item.outcomes[source] = { status: availability.status, reason: availability.reason ?? '' };
    return NO_WORK;
  }

  /**
   * Asks every source what it still has to answer for these addresses, and writes each answer as it
   * arrives: the Team Cymru part as soon as the bulk query is done, the rate-limited sources after.
   */
  private async fetch(items: Work[], plan: Plan) {
    const { sources } = this.deps;
    const { at } = plan;
    const fetchedAt = at.toISOString();
    const record = (item: Work, source: SourceName, outcome: SourceOutcome<unknown>) => {
      item.outcomes[source] = outcome;
      count(plan.stats.sources[source], outcome);
      if (outcome.status === 'ok' || outcome.status === 'not_found') {
        const state: StoredSourceState<unknown> = { status: outcome.status, fetchedAt, data: outcome.data };
        if (outcome.database !== undefined) state.database = outcome.database;
        (item.update as Record<SourceName, StoredSourceState<unknown>>)[source] = state;
      }
    };
    const recordAll = (byIp: ReadonlyMap<string, Work>, source: SourceName, results: Map<string, SourceOutcome<unknown>>) => {
      const answered: Work[] = [];
      for (const [ip, outcome] of results) {
        const item = byIp.get(ip);
        if (!item) continue;
        record(item, source, outcome);
        answered.push(item);
      }
      return answered;
    };

    // MaxMind first and in process: an ASN it knows spares the Team Cymru query.
    for (const item of this.maxmindDue(items, plan)) record(item, 'maxmind', sources.maxmind.lookup(item.ip));
    const pending: Array<Promise<unknown>> = [];
    const cymruDue = this.cymruDue(items, plan);
    if (cymruDue.size > 0) {
      pending.push(
        sources.cymru.lookupStreaming([...cymruDue.keys()], (results) => this.persist(recordAll(cymruDue, 'cymru', results), at)),
      );
    }
    for (const source of RATE_LIMITED_SOURCES) {
      const due = this.rateLimitedDue(source, items, plan);
      if (due.size === 0) continue;
      pending.push(sources[source].lookup([...due.keys()], { deadline: plan.deadline }).then((results) => recordAll(due, source, results)));
    }
    if (pending.length > 0) await Promise.all(pending);
    await this.persist(items, at);
  }

  /** Writes what these addresses learned and has not been written yet, counting each address once. */
  private async persist(items: Iterable<Work>, at: Date) {
    const updates: RecordUpdate[] = [];
    for (const item of items) {
      let sources: Partial<StoredSources> | undefined;
      for (const [source, state] of Object.entries(item.update) as Array<[SourceName, StoredSourceState<unknown>]>) {
        if (item.saved?.has(source)) continue;
        (item.saved ??= new Set()).add(source);
        sources ??= {};
        (sources as Record<SourceName, StoredSourceState<unknown>>)[source] = state;
      }
      if (!sources) continue;
      updates.push({ ip: item.ip, sources, lookups: item.counted ? 0 : 1 });
      item.counted = true;
    }
    if (updates.length > 0) await this.deps.store.save(updates, at);
  }
}
