import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import PgBoss from 'pg-boss';
import { Counter } from 'prom-client';
import { durationToMs } from '../../config.js';
import { errorMessage } from '../../errors/message.js';
// Named with the job queues, so that `ip-enrich migrate` creates it with them (prepareQueues).
import { RECORD_RETENTION_QUEUE as RETENTION_QUEUE } from '../../jobs/queue.js';
import type { RecordDeletion } from '../../schemas/records.js';

export interface RecordRemoval {
  /** Deletes one address's record from PostgreSQL and from L1 on every replica; says what it found. */
  remove(ip: string): Promise<RecordDeletion>;
  /** Deletes the records neither seen nor looked up for RECORD_RETENTION; how many went. */
  purgeUnseen(): Promise<number>;
}

declare module 'fastify' {
  interface FastifyInstance {
    recordRemoval: RecordRemoval;
  }
}

/** Once a day: retention is counted in days, and each run walks the whole table once. */
const RETENTION_CRON = '43 3 * * *';
/** Records examined per statement: each statement is short, and holds the locks of its own rows only. */
const BATCH = 1000;

/**
 * Deleting data the service must not keep: one address on request (DELETE /ip/{addr}), and the records
 * nobody has asked for in RECORD_RETENTION, by a daily schedule that one worker runs (pg-boss, as the
 * refresh). Every replica drops its L1 copies of a deleted address when the invalidation reaches it.
 */
async function recordRemoval(app: FastifyInstance) {
  const { config, records, tiers, invalidations, metrics, clock, database } = app;
  const deleted = new Counter({
    name: 'ipenrich_records_deleted_total',
    help: 'stored records deleted, by reason (request: DELETE /ip; retention: RECORD_RETENTION)',
    labelNames: ['reason'],
    registers: [metrics.registry],
  });
  const forgetCopies = async (ips: readonly string[]) => {
    try {
      return (await tiers.l1.delete(ips)) > 0;
    } catch (error) {
      app.log.warn(`could not delete ${ips.length} addresses from L1: ${errorMessage(error)}`);
      return false;
    }
  };
  invalidations.on((message) => {
    if (message.kind === 'records-deleted') void forgetCopies(message.ips);
  });
  const retentionMs = config.RECORD_RETENTION === 'off' ? undefined : durationToMs(config.RECORD_RETENTION);

  const removal: RecordRemoval = {
    async remove(ip) {
      const [gone] = await records.delete([ip]);
      const cached = await forgetCopies([ip]);
      await invalidations.publish({ kind: 'records-deleted', ips: [ip] });
      if (gone) deleted.inc({ reason: 'request' });
      app.log.info(`deleted the record of ${ip} on request (database: ${gone ? 'deleted' : 'none'}, L1: ${cached ? 'deleted' : 'none'})`);
      return { ip, database: gone !== undefined, cache: cached };
    },
    async purgeUnseen() {
      if (retentionMs === undefined) return 0;
      const before = new Date(clock.now() - retentionMs);
      const started = performance.now();
      let total = 0;
      let statements = 0;
      for (let after: string | undefined = ''; after !== undefined; statements += 1) {
        const page: { deleted: number; last: string | undefined } = await records.deleteUnseen(before, after, BATCH);
        total += page.deleted;
        after = page.last;
      }
      deleted.inc({ reason: 'retention' }, total);
      app.log.info(
        { deleted: total, before: before.toISOString(), statements, ms: Math.round(performance.now() - started) },
        `retention: deleted ${total} records neither seen nor looked up since ${before.toISOString()} (RECORD_RETENTION ${config.RECORD_RETENTION})`,
      );
      return total;
    },
  };
  app.decorate('recordRemoval', removal);

  // The jobs plugin's pg-boss fires the schedules (on workers); this one only keeps the retention's queue.
  if (config.ROLE === 'api') return;
  const boss = new PgBoss({ db: { executeSql: (text, values) => database.pool.query(text, values) }, migrate: false, supervise: false, schedule: false });
  boss.on('error', (error) => app.log.warn({ err: error }, 'record retention queue (pg-boss) error'));
  await boss.start();
  app.addHook('onClose', () => boss.stop({ graceful: true, close: false, timeout: 1000 }));
  await boss.createQueue(RETENTION_QUEUE, { name: RETENTION_QUEUE, policy: 'short', retryLimit: 1 });
  if (retentionMs === undefined) {
    await boss.unschedule(RETENTION_QUEUE);
    return;
  }
  // Polled seldom: the job comes once a day, and a minute's delay costs nothing.
  await boss.work(RETENTION_QUEUE, { pollingIntervalSeconds: 60 }, async () => void (await removal.purgeUnseen()));
  await boss.schedule(RETENTION_QUEUE, RETENTION_CRON, {}, { tz: 'UTC' });
}

export default fp(recordRemoval, { name: 'record-removal', dependencies: ['cache', 'invalidations', 'metrics', 'jobs'] });
