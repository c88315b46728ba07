import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { durationToMs } from '../../config.js';
import { RATE_LIMITED_SOURCES } from '../../enrich/plan.js';
import { JOB_STATUSES } from '../../jobs/model.js';
import { JobQueue } from '../../jobs/queue.js';
import { JobResults } from '../../jobs/results.js';
import { JOB_WAIT_MS, JobRunner } from '../../jobs/runner.js';
import { Jobs } from '../../jobs/service.js';
import { JobStore } from '../../jobs/store.js';

declare module 'fastify' {
  interface FastifyInstance {
    jobs: Jobs;
  }
}

/**
 * A runner of job slices on this process's parts: the plugin's own where the role works, and the command
 * line's (src/cli/local.ts), which runs its one job in an API-role app without joining the queue's workers.
 */
export function createJobRunner(app: FastifyInstance, store: JobStore = new JobStore(app.database)): JobRunner {
  const { config, database, clock, enricher, metrics, sources } = app;
  const rates = { greynoise: config.GREYNOISE_RATE, dshield: config.DSHIELD_RATE };
  return new JobRunner({
    store,
    results: new JobResults(database),
    database,
    enricher,
    clock,
    log: app.log,
    metrics,
    settings: {
      bulkChunk: config.CYMRU_BATCH_SIZE,
      bulkWindow: config.CYMRU_MAX_CONNECTIONS + 1,
      sliceSeconds: config.JOB_SLICE_SECONDS,
      leaseSeconds: config.JOB_LEASE_SECONDS,
    },
    limitedRate: () => {
      const ready = RATE_LIMITED_SOURCES.filter((source) => sources[source].availability().status === 'ready');
      return ready.length > 0 ? Math.min(...ready.map((source) => rates[source])) : undefined;
    },
    owner: `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`,
  });
}

/**
 * Background jobs: the store and the queue in every role (the API submits, shows and cancels jobs), the
 * runner, the sweep and the schedules only where the role works (ROLE all or worker).
 */
async function jobs(app: FastifyInstance) {
  const { config, database, clock, enricher, metrics, limiters, sources, records } = app;
  const works = config.ROLE !== 'api';
  const store = new JobStore(database);
  const freshness = {
    cymru: durationToMs(config.TTL_CYMRU),
    greynoise: durationToMs(config.TTL_GREYNOISE),
    dshield: durationToMs(config.TTL_DSHIELD),
  };
  const rates = { greynoise: config.GREYNOISE_RATE, dshield: config.DSHIELD_RATE };
  // A slice starts chunks for JOB_SLICE_SECONDS, and its last ones may wait up to JOB_WAIT_MS for a limiter
  // and take Team Cymru's timeout on each attempt; pg-boss must not expire a ticket that is still running.
  const ticketSeconds =
    config.JOB_SLICE_SECONDS + JOB_WAIT_MS / 1000 + Math.ceil((config.CYMRU_TIMEOUT_MS * (config.CYMRU_RETRIES + 2)) / 1000);
  const queue = new JobQueue({ pool: database.pool, log: app.log, ticketSeconds }, works);
  const service = new Jobs({
    store,
    results: new JobResults(database),
    queue,
    database,
    limiters,
    rates,
    clock,
    log: app.log,
    stale: { database, records, enricher, sources, freshness },
    refreshMaxIps: config.REFRESH_MAX_IPS,
    retentionMs: durationToMs(config.JOB_RETENTION),
  });
  metrics.trackJobs(JOB_STATUSES, () => store.gauges(clock.now()));

  const runner = works ? createJobRunner(app, store) : undefined;
  app.addHook('onClose', async () => {
    await runner?.stop();
    await queue.stop();
  });
  await queue.start(
    runner && {
      concurrency: config.JOB_CONCURRENCY,
      sweepSeconds: config.JOB_LEASE_SECONDS / 2,
      refreshSchedule: config.REFRESH_SCHEDULE,
      runSlice: (jobId) => runner.runSlice(jobId),
      unclaimed: () => store.unclaimed(),
      refresh: async () => void (await service.startRefresh()),
      purge: async () => void (await service.purge()),
    },
  );
  app.decorate('jobs', service);
}

export default fp(jobs, { name: 'jobs', dependencies: ['database', 'cache', 'limiters', 'sources', 'metrics', 'enricher'] });
