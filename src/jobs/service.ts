import { randomUUID } from 'node:crypto';
import type { FastifyBaseLogger } from 'fastify';
import type { Clock } from '../clock.js';
import type { DatabaseHandle } from '../db/client.js';
import { RATE_LIMITED_SOURCES, type RateLimitedSource } from '../enrich/plan.js';
import type { Limiters } from '../plugins/app/limiters.js';
import { SOURCE_NAMES, type SourceName } from '../record/model.js';
import type { JobView } from '../schemas/jobs.js';
import { storeInputs } from './inputs.js';
import { initialProgress, maskOf, type JobKind, type JobStatus } from './model.js';
import type { JobQueue } from './queue.js';
import { staleAddresses, type StaleSearch } from './refresh.js';
import type { JobResults } from './results.js';
import type { JobStore } from './store.js';
import { jobView, type UpstreamPace } from './view.js';

export interface Submission {
  inputs: readonly string[];
  sources?: readonly SourceName[];
  refresh?: boolean;
  label?: string | null;
  kind?: JobKind;
  /** The API key that submits the job, whose jobs alone it may see (null: none, AUTH=off). */
  owner?: string | null;
}

export interface JobsDeps {
  store: JobStore;
  results: JobResults;
  queue: JobQueue;
  database: Pick<DatabaseHandle, 'pool'>;
  limiters: Limiters;
  rates: Record<RateLimitedSource, number>;
  clock: Clock;
  log: FastifyBaseLogger;
  /** Where the scheduled refresh looks for stale records, and how many it takes at most. */
  stale: Omit<StaleSearch, 'now'>;
  refreshMaxIps: number;
  retentionMs: number;
}

/** The jobs as the API and the scheduler use them: submitted, shown, cancelled, refreshed, expired. */
export class Jobs {
  readonly results: JobResults;

  constructor(private readonly deps: JobsDeps) {
    this.results = deps.results;
  }

  /**
   * Stores the list and queues the job. The job stays invisible until every input is stored, so that no
   * worker ever starts on part of a list.
   */
  async submit(submission: Submission): Promise<JobView> {
    const { store, queue, clock } = this.deps;
    const id = randomUUID();
    const sources = submission.sources ? SOURCE_NAMES.filter((source) => submission.sources?.includes(source)) : [...SOURCE_NAMES];
    await store.create({
      id,
      kind: submission.kind ?? 'list',
      label: submission.label ?? null,
      sources,
      refresh: submission.refresh === true,
      createdAt: new Date(clock.now()),
      ownerKeyId: submission.owner ?? null,
    });
    const counts = await storeInputs(this.deps.database, id, submission.inputs, maskOf(sources));
    const row = await store.open(id, counts, initialProgress(counts.unique, sources));
    // Should this fail, the job is queued all the same: a worker's sweep finds it.
    await queue.enqueue(id).catch((error: unknown) => this.deps.log.warn({ err: error, job: id }, 'could not queue a new job'));
    return jobView(row, clock.now(), await this.#pace());
  }

  async get(id: string): Promise<JobView | null> {
    const row = await this.deps.store.find(id);
    return row ? jobView(row, this.deps.clock.now(), await this.#pace()) : null;
  }

  /** Whether the job exists (and is visible): its results can be read. */
  async exists(id: string): Promise<boolean> {
    return (await this.deps.store.find(id)) !== null;
  }

  /** The latest jobs; with `owner`, only that key's. */
  async list(statuses: readonly JobStatus[] | undefined, limit: number, owner?: string): Promise<JobView[]> {
    const [rows, pace] = await Promise.all([this.deps.store.list(statuses, limit, owner), this.#pace()]);
    const now = this.deps.clock.now();
    return rows.map((row) => jobView(row, now, pace));
  }

  /** Cancels a queued or running job; its worker stops after the chunks in flight, which it keeps. */
  async cancel(id: string): Promise<JobView | 'finished' | null> {
    const { store, clock } = this.deps;
    const outcome = await store.cancel(id, new Date(clock.now()));
    if (outcome === null || outcome === 'finished') return outcome;
    return jobView(outcome, clock.now(), await this.#pace());
  }

  /**
   * Queues a refresh job of the stale stored records, unless one is still under way or nothing is stale;
   * the schedule calls it on one worker at a time.
   */
  async startRefresh(): Promise<JobView | undefined> {
    const { store, log, clock } = this.deps;
    if (await store.anyActive('refresh')) {
      log.info('scheduled refresh skipped: the previous one is still under way');
      return undefined;
    }
    const ips = await staleAddresses({ ...this.deps.stale, now: clock.now() }, this.deps.refreshMaxIps);
    if (ips.length === 0) {
      log.info('scheduled refresh: no stored record is stale');
      return undefined;
    }
    const job = await this.submit({ inputs: ips, kind: 'refresh', label: 'scheduled refresh' });
    log.info({ job: job.id }, `scheduled refresh: job ${job.id} for ${ips.length} stale records`);
    return job;
  }

  /** Deletes the jobs that finished longer than JOB_RETENTION ago, with their inputs; the records stay. */
  async purge(): Promise<number> {
    const purged = await this.deps.store.purge(new Date(this.deps.clock.now() - this.deps.retentionMs));
    if (purged > 0) this.deps.log.info(`deleted ${purged} jobs finished more than JOB_RETENTION ago`);
    return purged;
  }

  async #pace(): Promise<UpstreamPace> {
    const { limiters, rates } = this.deps;
    const states = await Promise.all(RATE_LIMITED_SOURCES.map((source) => limiters[source].state()));
    const blockedUntil = Object.fromEntries(RATE_LIMITED_SOURCES.map((source, index) => [source, states[index]?.blockedUntil ?? null]));
    return { blockedUntil: blockedUntil as UpstreamPace['blockedUntil'], rate: rates };
  }
}
