import type { FastifyBaseLogger } from 'fastify';
import type { Clock } from '../clock.js';
import type { DatabaseHandle } from '../db/client.js';
import type { Enricher } from '../enrich/cascade.js';
import { errorMessage } from '../errors/message.js';
import type { Metrics } from '../metrics.js';
import { traceJobProgress, traceJobSlice } from '../tracing/jobs.js';
import { nextAddresses, type AddressRow } from './inputs.js';
import { maskOf, PASS_BITS, sourcesOf, type JobProgress, type Pass, type Phase } from './model.js';
import { describePhase, settleChunk } from './progress.js';
import type { JobResults } from './results.js';
import type { JobRow, JobStore } from './store.js';

export interface RunnerSettings {
  /** Addresses per chunk of the bulk pass: one Team Cymru query. */
  bulkChunk: number;
  /** Bulk chunks in flight at once: one per Team Cymru connection, and one being collected. */
  bulkWindow: number;
  /** How long a slice starts new chunks (JOB_SLICE_SECONDS). */
  sliceSeconds: number;
  leaseSeconds: number;
}

export interface RunnerDeps {
  store: JobStore;
  /** Makes the result lines of the addresses a chunk finishes, stored with the chunk. */
  results: Pick<JobResults, 'linesOf'>;
  database: Pick<DatabaseHandle, 'prisma'>;
  enricher: Enricher;
  clock: Clock;
  log: FastifyBaseLogger;
  metrics: Metrics;
  settings: RunnerSettings;
  /** The lowest request rate (per second) among the rate-limited sources that can answer now, if any. */
  limitedRate(): number | undefined;
  /** This process, as the owner of the leases it takes. */
  owner: string;
}

/** How a slice of a job ended. */
export type SliceEnd =
  | { kind: 'skipped' }
  | { kind: 'finished' }
  | { kind: 'continue'; after?: Date }
  | { kind: 'failed'; error: unknown };

/**
 * How far ahead a chunk's deadline lies. Interactive requests wait ENRICH_DEADLINE_MS at most, so a job's
 * lookups come after theirs in the limiters' earliest-deadline-first queues; the limiter waits for its budget
 * and for a Retry-After block that ends within it. A block that ends later is not waited for inside the chunk:
 * the job is continued when it ends, and no worker is held meanwhile. Timers stay far below setTimeout's limit.
 */
export const JOB_WAIT_MS = 10 * 60_000;
/** A rate-limited chunk holds this many seconds of the slowest source's budget, so its progress shows often. */
const LIMITED_CHUNK_SECONDS = 15;
const LIMITED_WINDOW = 2;
/** Failed slices in a row after which a job fails. */
export const MAX_FAILURES = 5;
/** How long a closing worker waits for its chunks in flight before leaving their job to its lease's expiry. */
const STOP_WAIT_MS = 5_000;
/** Log lines of one job's progress are at least this far apart, except when a phase finishes. */
const LOG_INTERVAL_MS = 10_000;

interface Retry extends AddressRow {
  retryAt: number;
}

const shortId = (id: string) => `${id.slice(0, 8)}…`;

/**
 * One worker's turn at one job: from claiming its lease to handing it back. Chunks are read from the job's
 * addresses in input order, run through the cascade, and written (addresses, progress, cursors, renewed lease)
 * as each finishes; several are in flight so that the upstreams stay busy.
 */
class Slice {
  readonly #deps: RunnerDeps;
  readonly #job: JobRow;
  readonly #progress: JobProgress;
  readonly #jobMask: number;
  readonly #ends: number;
  readonly #cursor: Record<Pass, number>;
  /** Per pass: the furthest address read, and the addresses read but not settled yet. */
  readonly #read: Record<Pass, number>;
  readonly #unsettled: Record<Pass, Set<number>> = { bulk: new Set(), limited: new Set() };
  #retries: Retry[] = [];
  #writes: Promise<unknown> = Promise.resolve();
  #halted: 'cancelled' | 'lost' | 'stopping' | undefined;
  /** Gives up the chunks in flight: their rate-limited lookups stop at once, and what they did not finish stays due. */
  readonly #abort = new AbortController();
  #failure: unknown;
  /** When the upstreams' blocks let the job go on, once every address left is waiting for one. */
  #deferUntil: number | undefined;
  #loggedAt = 0;

  constructor(deps: RunnerDeps, job: JobRow) {
    this.#deps = deps;
    this.#job = job;
    this.#progress = job.progress as unknown as JobProgress;
    this.#jobMask = maskOf(job.sources as never);
    this.#ends = Date.now() + deps.settings.sliceSeconds * 1000;
    this.#cursor = { bulk: job.bulkCursor, limited: job.finalCursor };
    this.#read = { ...this.#cursor };
  }

  get halted(): boolean {
    return this.#halted !== undefined || this.#failure !== undefined;
  }

  /** Ends the slice: no chunk starts any more, and those in flight are given up. */
  halt(reason: 'cancelled' | 'lost' | 'stopping'): void {
    this.#halted ??= reason;
    this.#abort.abort(new Error(`the slice was halted (${reason})`));
  }

  /** Runs chunks until the job is done, the slice's time is up, or it is halted. */
  async run(): Promise<SliceEnd> {
    const inFlight = new Set<Promise<void>>();
    try {
      const completed = await this.#work(inFlight);
      if (completed) return await this.#complete();
    } catch (error) {
      // A read that failed (the database away) ends the slice as a failed chunk does, once the rest is in.
      this.#failure ??= error;
      await Promise.allSettled(inFlight);
    }
    await this.#writes;
    if (this.#failure !== undefined) return { kind: 'failed', error: this.#failure };
    if (this.#halted === 'lost') return { kind: 'skipped' };
    if (this.#halted === 'cancelled') return { kind: 'finished' };
    return { kind: 'continue', after: this.#deferUntil === undefined ? undefined : new Date(this.#deferUntil) };
  }

  /** True when the job has nothing left; false when the slice ended first. */
  async #work(inFlight: Set<Promise<void>>): Promise<boolean> {
    let pass: Pass = (this.#jobMask & PASS_BITS.bulk) !== 0 ? 'bulk' : 'limited';
    const launch = (rows: AddressRow[], chunkPass: Pass) => {
      const chunk = this.#chunk(rows, chunkPass).catch((error: unknown) => {
        // A chunk given up by a halt is no failure: its addresses stay due for the job's next turn.
        if (!this.#abort.signal.aborted) this.#failure ??= error;
      });
      const tracked = chunk.finally(() => inFlight.delete(tracked));
      inFlight.add(tracked);
    };
    for (;;) {
      const open = !this.halted && Date.now() < this.#ends && this.#deferUntil === undefined;
      if (open && inFlight.size < (pass === 'bulk' ? this.#deps.settings.bulkWindow : LIMITED_WINDOW)) {
        const retries = pass === 'limited' ? this.#dueRetries() : undefined;
        if (retries && 'deferUntil' in retries) {
          this.#deferUntil = retries.deferUntil;
          continue;
        }
        const rows = retries?.rows ?? (await this.#readNext(pass));
        if (rows.length > 0) {
          for (const group of groupByDue(rows, PASS_BITS[pass])) launch(group, pass);
          continue;
        }
        if (inFlight.size === 0 && this.#retries.length === 0) {
          if (pass === 'limited') {
            await this.#writes;
            return true;
          }
          pass = 'limited';
          continue;
        }
      }
      if (inFlight.size === 0) return false;
      await Promise.race(inFlight);
    }
  }

  async #readNext(pass: Pass): Promise<AddressRow[]> {
    const size = pass === 'bulk' ? this.#deps.settings.bulkChunk : this.#limitedChunk();
    const rows = await nextAddresses(this.#deps.database, this.#job.id, pass, this.#read[pass], size, this.#job.total);
    for (const row of rows) this.#unsettled[pass].add(row.seq);
    if (rows.length > 0) this.#read[pass] = (rows.at(-1) as AddressRow).seq;
    return rows;
  }

  #limitedChunk(): number {
    const rate = this.#deps.limitedRate();
    if (rate === undefined) return this.#deps.settings.bulkChunk;
    return Math.min(this.#deps.settings.bulkChunk, Math.max(1, Math.round(rate * LIMITED_CHUNK_SECONDS)));
  }

  /**
   * Addresses a source refused for now, to ask again: at once when its block ends within a chunk's wait
   * (the limiter then waits for it), or else the moment to continue the job at.
   */
  #dueRetries(): { rows: AddressRow[] } | { deferUntil: number } | undefined {
    if (this.#retries.length === 0) return undefined;
    const horizon = this.#deps.clock.now() + JOB_WAIT_MS;
    const earliest = Math.min(...this.#retries.map((retry) => retry.retryAt));
    if (earliest > horizon) return { deferUntil: earliest };
    const size = this.#limitedChunk();
    const rows = this.#retries.slice(0, size);
    this.#retries = this.#retries.slice(size);
    return { rows };
  }

  async #chunk(rows: AddressRow[], pass: Pass): Promise<void> {
    const { enricher, clock } = this.#deps;
    const asked = (rows[0] as AddressRow).due & PASS_BITS[pass];
    const started = new Date(clock.now());
    const { outcomes } = await enricher.enrichOutcomes({
      inputs: rows.map((row) => row.ip),
      sources: sourcesOf(asked),
      refresh: this.#job.refresh,
      deadline: clock.now() + JOB_WAIT_MS,
      signal: this.#abort.signal,
    });
    this.#abort.signal.throwIfAborted();
    const results = rows.map((row) => ({ ip: row.ip, due: row.due, outcomes: outcomes.get(row.ip) ?? {} }));
    const { addresses, finished } = settleChunk(this.#progress, results, asked, this.#jobMask, started, new Date(clock.now()));
    traceJobProgress(this.#progress);
    addresses.forEach((address, index) => {
      const row = rows[index] as AddressRow;
      if ((address.due & PASS_BITS[pass]) !== 0 && address.retryAt !== undefined) {
        this.#retries.push({ seq: row.seq, ip: row.ip, due: address.due, retryAt: address.retryAt });
      } else {
        this.#unsettled[pass].delete(row.seq);
      }
    });
    for (const phase of finished) {
      const entry = this.#progress[phase];
      this.#deps.metrics.observeJobPhase(phase, (Date.parse(entry.finishedAt!) - Date.parse(entry.startedAt!)) / 1000);
    }
    for (const candidate of ['bulk', 'limited'] as const) {
      const unsettled = this.#unsettled[candidate];
      this.#cursor[candidate] = unsettled.size > 0 ? Math.min(...unsettled) - 1 : this.#read[candidate];
    }
    const done = addresses.flatMap((address, index) => (address.due === 0 ? [{ ...address, seq: (rows[index] as AddressRow).seq }] : []));
    const progress = structuredClone(this.#progress);
    const cursors = { bulkCursor: this.#cursor.bulk, finalCursor: this.#cursor.limited };
    // Written in the order the chunks settled, so that the progress stored never goes back; the result lines
    // are made after the chunks before have written the outcomes they kept.
    const write = this.#writes.then(async () => {
      const lines = await this.#deps.results.linesOf(this.#job.id, done);
      const record = {
        progress,
        ...cursors,
        addresses: addresses.map(({ ip, due, outcomes: kept }) => ({ ip, due, outcomes: kept })),
        lines: done.map(({ seq }, index) => ({ seq, line: lines[index] as string })),
      };
      const status = await this.#deps.store.recordChunk(this.#job.id, this.#deps.owner, this.#deps.settings.leaseSeconds, record);
      if (status === null) this.halt('lost');
      else if (status === 'cancelled') this.halt('cancelled');
      this.#log(finished, progress);
    });
    this.#writes = write.catch(() => undefined);
    await write;
  }

  async #complete(): Promise<SliceEnd> {
    const { store, owner, clock, log } = this.#deps;
    const done = await store.finish(this.#job.id, owner, this.#progress, new Date(clock.now()));
    if (done) {
      const seconds = Math.round((clock.now() - (this.#job.startedAt ?? this.#job.createdAt).getTime()) / 1000);
      log.info({ job: this.#job.id }, `job ${shortId(this.#job.id)} completed: ${this.#job.unique} addresses in ${seconds} s`);
    }
    return { kind: 'finished' };
  }

  /** A line per phase under way, now and then, and one for each phase as it finishes. */
  #log(finished: readonly Phase[], progress: JobProgress): void {
    const now = Date.now();
    const periodic = now - this.#loggedAt >= LOG_INTERVAL_MS;
    if (periodic) this.#loggedAt = now;
    for (const [phase, entry] of Object.entries(progress) as Array<[Phase, JobProgress[Phase]]>) {
      const underway = entry.startedAt !== null && entry.finishedAt === null;
      if (finished.includes(phase) || (periodic && underway)) {
        this.#deps.log.info({ job: this.#job.id, phase }, `job ${shortId(this.#job.id)} ${describePhase(phase, entry)}`);
      }
    }
  }
}

/** Waits for `work` at most STOP_WAIT_MS; false when it still runs. */
async function drained(work: Promise<unknown>): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => (timer = setTimeout(resolve, STOP_WAIT_MS, false)));
  try {
    return await Promise.race([work.then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Addresses of one pass split by the sources still due for them, so each chunk asks one set of sources. */
function groupByDue(rows: readonly AddressRow[], bits: number): AddressRow[][] {
  const groups = new Map<number, AddressRow[]>();
  for (const row of rows) {
    const key = row.due & bits;
    const group = groups.get(key);
    if (group) group.push(row);
    else groups.set(key, [row]);
  }
  return [...groups.values()];
}

/**
 * Runs slices of jobs for one worker process. A slice holds the job's lease, renewed every third of its
 * length, so that a worker that stops (kill -9, a lost machine) gives the job up within JOB_LEASE_SECONDS
 * while one that lives keeps it however long a chunk takes; every write is conditional on the lease, so
 * two workers never run one job at once.
 */
export class JobRunner {
  readonly #deps: RunnerDeps;
  readonly #running = new Map<Slice, Promise<unknown>>();
  #stopping = false;

  constructor(deps: RunnerDeps) {
    this.#deps = deps;
  }

  async runSlice(jobId: string): Promise<SliceEnd> {
    // A closing worker hands the ticket back for the next worker rather than starting.
    if (this.#stopping) return { kind: 'continue' };
    const { store, owner, clock, settings } = this.#deps;
    const job = await store.claim(jobId, owner, settings.leaseSeconds, new Date(clock.now()));
    if (!job) return { kind: 'skipped' };
    const slice = new Slice(this.#deps, job);
    const heartbeat = setInterval(() => {
      store.renew(jobId, owner, settings.leaseSeconds).then(
        (status) => {
          if (status === null) slice.halt('lost');
          else if (status === 'cancelled') slice.halt('cancelled');
        },
        (error: unknown) => this.#deps.log.warn({ err: error, job: jobId }, 'could not renew the lease of a job'),
      );
    }, (settings.leaseSeconds * 1000) / 3);
    const run = traceJobSlice(job, () => slice.run());
    this.#running.set(slice, run);
    try {
      const end = await run;
      if (end.kind === 'failed') {
        const status = await store.noteFailure(jobId, owner, errorMessage(end.error), MAX_FAILURES, new Date(clock.now()));
        this.#deps.log.error({ err: end.error, job: jobId, status }, `job ${shortId(jobId)}: a slice failed`);
      } else if (end.kind !== 'skipped') {
        await store.release(jobId, owner, true);
      }
      return end;
    } finally {
      clearInterval(heartbeat);
      this.#running.delete(slice);
    }
  }

  /**
   * Halts every slice and waits a little for their chunks: the rate-limited lookups stop at once, a Team Cymru
   * query in flight is let finish. A slice still running then keeps its lease until the process is gone, so
   * that no other worker asks the same addresses meanwhile.
   */
  async stop(): Promise<void> {
    this.#stopping = true;
    for (const slice of this.#running.keys()) slice.halt('stopping');
    if (!(await drained(Promise.allSettled([...this.#running.values()])))) {
      this.#deps.log.warn('closing with job chunks still in flight; their jobs resume elsewhere once their leases expire');
    }
  }
}
