import type { FastifyBaseLogger } from 'fastify';
import type pg from 'pg';
import PgBoss from 'pg-boss';
import { errorMessage } from '../errors/message.js';
import type { SliceEnd } from './runner.js';

/** A turn at one job; the job's lease, not this ticket, says who runs it. */
export const JOB_QUEUE = 'ipenrich-job';
export const REFRESH_QUEUE = 'ipenrich-refresh';
export const RETENTION_QUEUE = 'ipenrich-retention';
/** The stored records' retention (src/plugins/app/record-deletion.ts), a queue of the same pg-boss. */
export const RECORD_RETENTION_QUEUE = 'ipenrich-record-retention';
/** Finished jobs are looked for every hour; JOB_RETENTION is counted in days. */
const RETENTION_CRON = '17 * * * *';

interface Ticket {
  jobId: string;
}

/**
 * The queues, as `ip-enrich migrate` creates them and every process makes sure of at start (a queue that
 * exists is left as it is). A ticket's expiry comes with the ticket, from the settings of the process that
 * queues it, so that it follows JOB_SLICE_SECONDS whoever created the queue.
 */
const QUEUES = [
  { name: JOB_QUEUE, policy: 'short', retryLimit: 0 },
  { name: REFRESH_QUEUE, policy: 'short', retryLimit: 1 },
  { name: RETENTION_QUEUE, policy: 'short', retryLimit: 1 },
  { name: RECORD_RETENTION_QUEUE, policy: 'short', retryLimit: 1 },
] as const satisfies readonly PgBoss.Queue[];

/**
 * pg-boss on the service's pool; it creates and migrates its own schema at start, under its own advisory lock.
 * `track` sees every statement it sends.
 */
function bossOn(pool: pg.Pool, worker: boolean, track: <T>(statement: Promise<T>) => Promise<T> = (statement) => statement): PgBoss {
  return new PgBoss({
    db: { executeSql: (text, values) => track(pool.query(text, values)) },
    migrate: true,
    supervise: worker,
    schedule: worker,
  });
}

/**
 * Creates or upgrades pg-boss's schema and creates the service's queues, for `ip-enrich migrate`: a database
 * prepared so serves processes whose role may only read and write rows, since a queue's creation is DDL (a
 * table of its own) and so is the schema's.
 */
export async function prepareQueues(pool: pg.Pool): Promise<void> {
  const boss = bossOn(pool, false);
  await boss.start();
  try {
    for (const queue of QUEUES) await boss.createQueue(queue.name, queue);
  } finally {
    await boss.stop({ graceful: false, close: false });
  }
}

export interface QueueOptions {
  pool: pg.Pool;
  log: FastifyBaseLogger;
  /** Expiry of a ticket in pg-boss: longer than any slice can take, so that pg-boss never fails a live one. */
  ticketSeconds: number;
}

export interface WorkerOptions {
  concurrency: number;
  /** How often the worker looks for jobs that no worker holds. */
  sweepSeconds: number;
  refreshSchedule: string;
  runSlice(jobId: string): Promise<SliceEnd>;
  unclaimed(): Promise<string[]>;
  refresh(): Promise<void>;
  purge(): Promise<void>;
}

/**
 * pg-boss on the service's own PostgreSQL, through the service's pool: the embedded database has one
 * connection, which pg-boss shares like every other part. The queue holds tickets (a turn at a job), and
 * the schedules of the refresh and the retention, which pg-boss fires once across all replicas.
 *
 * Tickets are deduplicated per job (the queue's "short" policy keeps one waiting ticket per job), never
 * retried by pg-boss, and each one runs a bounded slice of its job, then queues the next. A worker that
 * dies leaves its ticket active in pg-boss until it expires, but its job's lease runs out within
 * JOB_LEASE_SECONDS, and the sweep of any worker then queues a new ticket for it.
 */
export class JobQueue {
  readonly #boss: PgBoss;
  readonly #log: FastifyBaseLogger;
  readonly #ticketSeconds: number;
  #sweeper: NodeJS.Timeout | undefined;
  #workers: string[] = [];
  /** What pg-boss is doing for this process: its statements and the handlers it runs; see stop. */
  readonly #inFlight = new Set<Promise<unknown>>();

  constructor(options: QueueOptions, worker: boolean) {
    this.#log = options.log;
    this.#ticketSeconds = options.ticketSeconds;
    this.#boss = bossOn(options.pool, worker, (statement) => this.#track(statement));
    this.#boss.on('error', (error) => this.#log.warn({ err: error }, 'job queue (pg-boss) error'));
  }

  async start(worker: WorkerOptions | undefined): Promise<void> {
    await this.#boss.start();
    for (const queue of QUEUES) await this.#boss.createQueue(queue.name, queue);
    if (!worker) return;
    for (let index = 0; index < worker.concurrency; index += 1) {
      this.#workers.push(
        await this.#boss.work<Ticket>(JOB_QUEUE, { batchSize: 1, pollingIntervalSeconds: 1 }, ([ticket]) =>
          this.#handle(async () => {
            if (!ticket) return;
            const end = await worker.runSlice(ticket.data.jobId);
            if (end.kind === 'continue') await this.enqueue(ticket.data.jobId, end.after);
          }),
        ),
      );
    }
    await this.#boss.work(REFRESH_QUEUE, () => this.#handle(() => worker.refresh()));
    await this.#boss.work(RETENTION_QUEUE, () => this.#handle(() => worker.purge()));
    if (worker.refreshSchedule === 'off') await this.#boss.unschedule(REFRESH_QUEUE);
    else {
      await this.#boss.schedule(REFRESH_QUEUE, worker.refreshSchedule, {}, { tz: 'UTC' }).catch((error: unknown) => {
        throw new Error(`REFRESH_SCHEDULE=${JSON.stringify(worker.refreshSchedule)} is not a cron expression: ${errorMessage(error)}`, {
          cause: error,
        });
      });
    }
    await this.#boss.schedule(RETENTION_QUEUE, RETENTION_CRON, {}, { tz: 'UTC' });
    const sweep = () =>
      void this.#sweep(worker).catch((error: unknown) => this.#log.warn({ err: error }, 'could not look for jobs without a worker'));
    sweep();
    this.#sweeper = setInterval(sweep, worker.sweepSeconds * 1000);
  }

  /** Queues a turn at the job (now, or once `after` has come) unless one is already waiting. */
  async enqueue(jobId: string, after?: Date): Promise<void> {
    await this.#boss.send(JOB_QUEUE, { jobId } satisfies Ticket, {
      singletonKey: jobId,
      expireInSeconds: this.#ticketSeconds,
      ...(after ? { startAfter: after } : {}),
    });
    // A worker of this process, idle between its polls, takes the ticket at once.
    for (const id of this.#workers) this.#boss.notifyWorker(id);
  }

  /**
   * Stops taking work and resolves once nothing pg-boss started is left. Its own stop waits for the handlers
   * running for at most its timeout, and not at all for a fetch of jobs still in flight, whose jobs then run
   * after it; and it completes a job whose handler has ended with a statement it neither awaits nor catches.
   * Had the pool been closed by then, that statement's rejection would end the process.
   */
  async stop(): Promise<void> {
    clearInterval(this.#sweeper);
    // The slices were stopped first (JobRunner.stop); what is still active is failed, which a ticket may be.
    await this.#boss.stop({ graceful: true, close: false, timeout: 1000 });
    while (this.#inFlight.size > 0) {
      await Promise.allSettled([...this.#inFlight]);
      // What follows a statement or a handler (the jobs of a fetch, a completion) starts in its promise reactions.
      await new Promise((resolve) => setImmediate(resolve));
    }
  }

  #handle<T>(handler: () => Promise<T>): Promise<T> {
    return this.#track(handler());
  }

  #track<T>(work: Promise<T>): Promise<T> {
    this.#inFlight.add(work);
    const forget = () => void this.#inFlight.delete(work);
    work.then(forget, forget);
    return work;
  }

  async #sweep(worker: WorkerOptions): Promise<void> {
    for (const jobId of await worker.unclaimed()) await this.enqueue(jobId);
  }
}
