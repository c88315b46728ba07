import { elapsedMs, type TieredLoader, type TierStats } from '../cache/tiered-loader.js';
import type { Clock } from '../clock.js';
import type { RecordUpdate } from '../db/record-store.js';
import { parseAddress, type ParsedAddress } from '../ip/address.js';
import {
  SOURCE_NAMES,
  type SourceName,
  type SourceOutcome,
  type StoredRecord,
  type StoredSourceState,
  type StoredSources,
} from '../record/model.js';
import { traceChunk, traceEnrich } from '../tracing/enrich.js';
import {
  cymruStillDue,
  nothingDue,
  planAddress,
  RATE_LIMITED_SOURCES,
  unavailableOutcome,
  type AddressPlan,
  type PlanContext,
  type RateLimitedSource,
} from './plan.js';
import { InputOrder, type ResultsSink } from './input-order.js';
import { routableJson, type Outcomes } from './record-view.js';
import type { EnrichStats, SourceCounters } from './stats.js';
import type { Freshness, SourceSet } from './sources.js';

export interface EnrichRequest {
  inputs: readonly string[];
  sources?: readonly SourceName[];
  refresh?: boolean;
  /** Epoch ms; rate-limited sources answer `rate_limited` rather than wait past it. */
  deadline: number;
  /** Gives up the rate-limited lookups still waiting or in flight, rejecting the request (a job stopped). */
  signal?: AbortSignal;
}

export interface EnrichResult {
  /** One IpRecord per input, in input order, already serialized as JSON. */
  results: string[];
  stats: EnrichStats;
}

export type { ResultsSink };

export interface EnrichOutcomes {
  /**
   * What each source answered now, or settled without asking, for every distinct routable address; a source
   * missing from an address's outcomes had nothing due (its stored answer stands) or was not requested.
   */
  outcomes: Map<string, Outcomes>;
  stats: EnrichStats;
}

/** An interactive request (POST /enrich, GET /ip) or a chunk of a background job. */
export type EnrichKind = 'request' | 'job';

/** Where the records are written (PostgreSQL's RecordStore in the service). */
export interface RecordWriter {
  save(updates: readonly RecordUpdate[], at: Date): Promise<void>;
}

/** Counts lookups of addresses a request answered from the tiers without writing them. */
export interface LookupCounter {
  record(ips: readonly string[]): void;
}

export interface EnricherDeps {
  sources: SourceSet;
  tiers: TieredLoader;
  store: RecordWriter;
  freshness: Freshness;
  clock: Clock;
  /** Addresses per unit of work: one Team Cymru bulk query's worth. */
  chunkSize: number;
  lookups: LookupCounter;
  /** Told of every finished request or job chunk, e.g. to feed Prometheus counters. */
  onStats?: (stats: EnrichStats, kind: EnrichKind) => void;
}

/** What one request does for one address: what it knew, what it needs, and what each source answered now. */
interface Work {
  ip: string;
  known: StoredRecord | undefined;
  /** Decided once, when `known` is final. */
  plan: AddressPlan | undefined;
  outcomes: Outcomes;
  update: Partial<StoredSources>;
  /**
   * Sources of `update` already written (a bit per source, by SOURCE_NAMES order), so a later write in this
   * request carries only new answers; undefined until the first write. A number, not a Set: this lives as
   * long as the request for every address of the list, and each object it keeps costs every scavenge.
   */
  saved: number | undefined;
  /** Whether this request's lookup was already counted in the stored lookup count. */
  counted: boolean;
  /** Read from L2 (not L1), so L1 is to be filled with it. */
  fromL2: boolean;
  /** The record as merged once the address's work is done. */
  merged?: StoredRecord;
  /** The answer for the address spelled canonically, serialized when its chunk settled (answers only). */
  json?: string;
}

/** One request's view of the sources, and its tallies. */
interface Request {
  kind: EnrichKind;
  context: PlanContext;
  deadline: number;
  signal: AbortSignal | undefined;
  at: Date;
  /** `at` as the records and answers spell it, made once: it was 10,000 toISOString calls per long list. */
  atText: string;
  stats: EnrichStats;
}

const ALL_SOURCES: ReadonlySet<SourceName> = new Set(SOURCE_NAMES);
const EMPTY_SOURCES: StoredSources = { maxmind: null, cymru: null, greynoise: null, dshield: null };

const newWork = (ip: string): Work => ({
  ip,
  known: undefined,
  plan: undefined,
  fromL2: false,
  outcomes: {},
  update: {},
  saved: undefined,
  counted: false,
});

const noLookups = (): SourceCounters => ({ lookups: 0, ok: 0, notFound: 0, errors: 0, rateLimited: 0 });
const noReads = (): TierStats => ({ hits: 0, misses: 0, durationMs: 0 });

function count(counters: SourceCounters, outcome: SourceOutcome<unknown>): void {
  counters.lookups += 1;
  if (outcome.status === 'ok') counters.ok += 1;
  else if (outcome.status === 'not_found') counters.notFound += 1;
  else if (outcome.status === 'error') counters.errors += 1;
  else if (outcome.status === 'rate_limited') counters.rateLimited += 1;
}

function addReads(into: TierStats, read: TierStats): void {
  into.hits += read.hits;
  into.misses += read.misses;
  into.durationMs += read.durationMs;
}

/**
 * Parses inputs from `from` on until `chunkSize` distinct routable addresses not seen before are read (or the
 * list ends), and returns where it stopped. Kept apart from the request's async body, which runs once per
 * request: the first cached list after a cold one meets types and branches the cold one never did, and V8
 * throws optimized code away there (--trace-deopt); this function, called once per chunk, is optimized again
 * within that same list, and the first repeat got faster with it (npm run bench, README Performance).
 */
function readChunk(
  inputs: readonly string[],
  from: number,
  chunkSize: number,
  into: { parsed: ParsedAddress[]; work: Map<string, Work>; fresh: Work[]; stats: EnrichStats },
): number {
  const { parsed, work, fresh, stats } = into;
  let index = from;
  for (; index < inputs.length && fresh.length < chunkSize; index++) {
    const address = parseAddress(inputs[index] as string);
    parsed[index] = address;
    if (address.kind === 'invalid') stats.invalid += 1;
    else if (address.kind === 'bogon') stats.bogon += 1;
    else if (!work.has(address.ip)) {
      const item = newWork(address.ip);
      work.set(address.ip, item);
      fresh.push(item);
    }
  }
  return index;
}

/**
 * The cascade: find what the tiers hold for each address, plan what each source still has to answer,
 * ask every source in bulk, merge, persist, and answer in input order. Work for an address is done once
 * however often it appears in the list.
 *
 * A list is cut into chunks of one Team Cymru query each, and every chunk runs its own pipeline (tiers,
 * MaxMind, the upstreams, persistence): the first bulk query leaves as soon as its chunk is collected,
 * and a chunk is merged and written while other chunks' queries are still in flight. The
 * sources bound their own concurrency, so many chunks never mean more connections.
 */
export class Enricher {
  /** Redis writes of streamed answers still under way; see chunkPipeline. */
  readonly #filling = new Set<Promise<void>>();

  constructor(private readonly deps: EnricherDeps) {}

  /** Waits for the L1 writes still under way, so that a process that stops leaves in Redis what it answered. */
  async close(): Promise<void> {
    while (this.#filling.size > 0) await Promise.allSettled([...this.#filling]);
  }

  async enrich(request: EnrichRequest): Promise<EnrichResult> {
    const results: string[] = [];
    const stats = await this.enrichInOrder(request, (records) => results.push(...records));
    return { results, stats };
  }

  /**
   * The answer of a request handed over as it becomes final: the records of every input whose address's
   * chunk has finished, up to the first one still under way, so that a long list is serialized and sent
   * while its last bulk queries are in flight. Rejects if the request fails, whatever it handed over already.
   */
  async enrichInOrder(request: EnrichRequest, sink: ResultsSink): Promise<EnrichStats> {
    const { stats } = await traceEnrich('request', request.inputs.length, () => this.run(request, 'request', sink));
    return stats;
  }

  /**
   * The same cascade for a chunk of a background job, which keeps its own account of each address: no
   * answer is serialized, and what each source said is handed back instead.
   */
  async enrichOutcomes(request: EnrichRequest): Promise<EnrichOutcomes> {
    const { work, stats } = await traceEnrich('job', request.inputs.length, () => this.run(request, 'job'));
    const outcomes = new Map<string, Outcomes>();
    for (const item of work.values()) outcomes.set(item.ip, item.outcomes);
    return { outcomes, stats };
  }

  /**
   * The stored records that a request for these sources would fetch anything for now (missing or stale
   * answers of sources that can answer), judged by the same plan as every request.
   */
  recordsDue(records: Iterable<StoredRecord>, sources?: readonly SourceName[]): StoredRecord[] {
    const context = this.planning({ sources });
    const due: StoredRecord[] = [];
    for (const record of records) {
      if (!nothingDue(planAddress(record.ip, record, context))) due.push(record);
    }
    return due;
  }

  private async run(
    request: EnrichRequest,
    kind: EnrichKind,
    sink?: ResultsSink,
  ): Promise<{ work: Map<string, Work>; stats: EnrichStats }> {
    const started = performance.now();
    const { inputs } = request;
    const { chunkSize } = this.deps;
    const state = this.begin(request, kind, {
      total: inputs.length,
      unique: 0,
      invalid: 0,
      bogon: 0,
      durationMs: 0,
      tiers: { l1: noReads(), l2: noReads() },
      sources: { maxmind: noLookups(), cymru: noLookups(), greynoise: noLookups(), dshield: noLookups() },
    });
    const { stats } = state;
    const parsed = new Array<ParsedAddress>(inputs.length);
    const work = new Map<string, Work>();
    const items: Work[] = [];
    const answers = sink && new InputOrder(inputs, parsed, work, sink, chunkSize);
    // Whether every address so far is in the process-local copy of L1 with nothing due; see answerableInProcess.
    let answerable = !state.context.refresh;
    let launched = 0;
    const running: Array<Promise<void>> = [];
    let collected: Promise<unknown> = Promise.resolve();
    // The collection of the chunk started before the latest one.
    let behind: Promise<unknown> = collected;
    const launch = (part: Work[]) => {
      const chunk = this.runChunk(part, state, collected, answers);
      behind = collected;
      collected = chunk.collected;
      // Awaited below with the others; a chunk that fails while the list is still being read must not go unheard.
      chunk.done.catch(() => undefined);
      running.push(chunk.done);
    };

    // The list is read a chunk's worth of distinct addresses at a time, and once it is clear that it is not
    // answered in process, each chunk is started as soon as it is read: the first bulk query leaves while the
    // rest of a long list is still being parsed. Chunks are collected one after another (tiers, then their
    // queries leave) so that the first bulk query is not held back by the collection of the others; their
    // answers overlap freely. Reading stays one chunk ahead of the collections: parsing further while the
    // first chunk's tiers are read would take the turns of the event loop their replies wait for (the first
    // queries of a cold 10,000-address list left 10-25 ms later that way).
    let index = 0;
    while (index < inputs.length) {
      const fresh: Work[] = [];
      index = readChunk(inputs, index, chunkSize, { parsed, work, fresh, stats });
      items.push(...fresh);
      if (answerable) answerable = this.answerableInProcess(fresh, state);
      if (answerable) continue;
      for (; items.length - launched >= chunkSize; launched += chunkSize) launch(items.slice(launched, launched + chunkSize));
      // Lets the chunks just started reach their tiers and their upstreams before the rest is read.
      if (index < inputs.length) await Promise.all([behind, new Promise((resolve) => setImmediate(resolve))]);
    }
    stats.unique = work.size;
    if (answerable) {
      this.settle(items, state, answers !== undefined);
      answers?.flush();
    } else {
      if (launched < items.length) launch(items.slice(launched));
      await Promise.all(running);
    }

    stats.durationMs = elapsedMs(started);
    this.deps.onStats?.(stats, kind);
    return { work, stats };
  }

  private begin(request: EnrichRequest, kind: EnrichKind, stats: EnrichStats): Request {
    const context = this.planning(request);
    const at = new Date(context.now);
    return { kind, context, deadline: request.deadline, signal: request.signal, at, atText: at.toISOString(), stats };
  }

  /** What a request for these sources knows before it looks at any address. */
  private planning(request: Pick<EnrichRequest, 'sources' | 'refresh'>): PlanContext {
    const { sources, freshness, clock } = this.deps;
    const unavailable = new Map<'maxmind' | RateLimitedSource, SourceOutcome<never> | undefined>();
    const context: PlanContext = {
      requested: request.sources ? new Set(request.sources) : ALL_SOURCES,
      refresh: request.refresh === true,
      now: clock.now(),
      freshness,
      maxmindVersion: sources.maxmind.version(),
      unavailable: (source) => {
        if (!unavailable.has(source)) unavailable.set(source, unavailableOutcome(source, sources[source].availability()));
        return unavailable.get(source);
      },
      unsupported: {
        greynoise: (ip) => sources.greynoise.unsupported(ip),
        dshield: (ip) => sources.dshield.unsupported(ip),
      },
    };
    return context;
  }

  /** Fixes an address's plan from what the tiers held; the outcomes it settles are this request's answer. */
  private plan(item: Work, request: Request): AddressPlan {
    const plan = planAddress(item.ip, item.known, request.context);
    item.plan = plan;
    if (plan.answered) Object.assign(item.outcomes, plan.answered);
    return plan;
  }

  /**
   * Whether every address is in the process-local copy of L1 with nothing due from any source. Such a
   * request (a hot GET /ip/:addr, a list asked again) is then answered without a single await; the
   * addresses found keep their record and plan either way, so a request that does need more reads and
   * plans only the rest.
   */
  private answerableInProcess(items: Work[], request: Request): boolean {
    const { found, stats } = this.deps.tiers.peek(items.map((item) => item.ip));
    addReads(request.stats.tiers.l1, stats);
    let answerable = found.size === items.length;
    for (const item of items) {
      item.known = found.get(item.ip);
      if (item.known && !nothingDue(this.plan(item, request))) answerable = false;
    }
    return answerable;
  }

  private runChunk(items: Work[], request: Request, previous: Promise<unknown>, answers: InputOrder | undefined) {
    return traceChunk(items.length, () => this.chunkPipeline(items, request, previous, answers));
  }

  private chunkPipeline(items: Work[], request: Request, previous: Promise<unknown>, answers: InputOrder | undefined) {
    const collection = previous.then(async () => {
      await this.collect(items, request);
      // Wrapped, so that the collection settles once the queries have left, not when they have answered.
      return { answers: this.askAndWrite(items, request) };
    });
    return {
      collected: collection.then(
        () => undefined,
        () => undefined,
      ),
      done: collection.then(async (asked) => {
        const writes = await asked.answers;
        // Merged and serialized while the writes are under way; handed over once they are done, since an
        // answer says what is stored.
        const cacheable = this.settle(items, request, answers !== undefined);
        await Promise.all(writes);
        answers?.flush();
        // The process-local copy is filled at once, within this call, and with one Redis gets the records behind
        // the answers (src/cache/write-behind.ts). Where Redis is the only L1 (L1_LOCAL_TTL_SECONDS=0) the end
        // of a streamed answer still does not wait for its write: 5-10 ms of the tail of a 10,000-address list.
        const filled = this.deps.tiers.fill(cacheable);
        if (!answers) return filled;
        this.#filling.add(filled);
        void filled.finally(() => this.#filling.delete(filled));
      }),
    };
  }

  /** Reads from the tiers what the process-local copy did not hold, and plans those addresses. */
  private async collect(items: Work[], request: Request): Promise<void> {
    const missing = items.filter((item) => !item.known);
    if (missing.length > 0) {
      const read = await this.deps.tiers.load(
        missing.map((item) => item.ip),
        { skipL1: request.context.refresh },
      );
      addReads(request.stats.tiers.l1, read.stats.l1);
      addReads(request.stats.tiers.l2, read.stats.l2);
      for (const item of missing) {
        item.known = read.l1.get(item.ip);
        if (item.known) continue;
        item.known = read.l2.get(item.ip);
        item.fromL2 = item.known !== undefined;
      }
    }
    for (const item of items) if (!item.plan) this.plan(item, request);
  }

  /**
   * Merges what each address learned into its record; returns the records L1 lacks or holds stale. A job's
   * chunk only refreshes what L1 holds: its addresses are asked for once, and adding them would evict the
   * addresses requests keep hot (and the churn of a 1,000,000-address job through the in-process LRU was
   * most of the garbage its worker's heap grew with).
   */
  private settle(items: Work[], request: Request, serialize: boolean): StoredRecord[] {
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
              updatedAt: request.atText,
            };
      // Serialized now, while later chunks are still asking, rather than when the inputs before it are done.
      if (serialize) item.json = routableJson(item.ip, item.merged, item.outcomes);
      if (request.kind === 'request' ? changed || item.fromL2 : changed && item.known !== undefined && !item.fromL2) {
        cacheable.push(item.merged);
      }
      // A changed record's lookup is counted by the write that carries the change.
      if (!changed && item.known) unchanged.push(item.ip);
    }
    this.deps.lookups.record(unchanged);
    return cacheable;
  }

  /**
   * Asks every source what its plan says for these addresses, and starts writing each answer as it arrives:
   * the Team Cymru part as soon as the bulk query is done, the rate-limited sources after. Resolves once every
   * source has answered, with the writes, which may still be under way.
   */
  private async askAndWrite(items: Work[], request: Request): Promise<Array<Promise<void>>> {
    const { sources } = this.deps;
    const writes: Array<Promise<void>> = [];
    const write = (part: Iterable<Work>) => {
      const written = this.persist(part, request.at);
      // Awaited by the chunk once the other sources have answered too; a failure before then must not go unheard.
      written.catch(() => undefined);
      writes.push(written);
    };
    const fetchedAt = request.atText;
    const record = (item: Work, source: SourceName, outcome: SourceOutcome<unknown>) => {
      item.outcomes[source] = outcome;
      count(request.stats.sources[source], outcome);
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
    for (const item of items) if (item.plan?.maxmind) record(item, 'maxmind', sources.maxmind.lookup(item.ip));
    const cymruDue = new Map<string, Work>();
    for (const item of items) {
      if (!item.plan?.cymru) continue;
      const still = cymruStillDue(item.update.maxmind ?? item.known?.sources.maxmind, item.known?.sources.cymru);
      if (still.due) cymruDue.set(item.ip, item);
      else if (still.outcome) item.outcomes.cymru = still.outcome;
    }
    const pending: Array<Promise<unknown>> = [];
    if (cymruDue.size > 0) {
      pending.push(
        sources.cymru.lookupStreaming([...cymruDue.keys()], (results) => write(recordAll(cymruDue, 'cymru', results))),
      );
    }
    for (const source of RATE_LIMITED_SOURCES) {
      const due = new Map<string, Work>();
      for (const item of items) if (item.plan?.[source]) due.set(item.ip, item);
      if (due.size === 0) continue;
      const options = { deadline: request.deadline, signal: request.signal };
      pending.push(sources[source].lookup([...due.keys()], options).then((results) => recordAll(due, source, results)));
    }
    if (pending.length > 0) await Promise.all(pending);
    write(items);
    return writes;
  }

  /** Writes what these addresses learned and has not been written yet, counting each address once. */
  private async persist(items: Iterable<Work>, at: Date) {
    const updates: RecordUpdate[] = [];
    for (const item of items) {
      let sources: Partial<StoredSources> | undefined;
      for (let bit = 0; bit < SOURCE_NAMES.length; bit++) {
        const source = SOURCE_NAMES[bit] as SourceName;
        const state = item.update[source];
        if (!state || ((item.saved ?? 0) & (1 << bit)) !== 0) continue;
        item.saved = (item.saved ?? 0) | (1 << bit);
        (sources ??= {})[source] = state as StoredSourceState<never>;
      }
      if (!sources) continue;
      updates.push({ ip: item.ip, sources, lookups: item.counted ? 0 : 1 });
      item.counted = true;
    }
    if (updates.length > 0) await this.deps.store.save(updates, at);
  }
}

