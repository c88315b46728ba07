import PgBoss from 'pg-boss';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectDatabase, type DatabaseHandle } from '../../src/db/client.js';
import { JobQueue, REFRESH_QUEUE } from '../../src/jobs/queue.js';
import { capturingLogger } from '../doubles/logger.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

let database: TestDatabase;
let handle: DatabaseHandle;
beforeAll(async () => {
  database = await createTestDatabase();
  handle = connectDatabase(database.url);
});
afterAll(async () => {
  await database.drop();
});

describe('JobQueue.stop', () => {
  it('resolves only once a handler that outlasts pg-boss’s own wait has ended, so the pool outlives what pg-boss sends after it', async () => {
    const events: string[] = [];
    let started = () => {};
    const running = new Promise<void>((resolve) => (started = resolve));
    const queue = new JobQueue({ pool: handle.pool, log: capturingLogger().logger, ticketSeconds: 60 }, true);
    await queue.start({
      concurrency: 1,
      sweepSeconds: 60,
      refreshSchedule: 'off',
      runSlice: () => Promise.resolve({ kind: 'skipped' }),
      unclaimed: () => Promise.resolve([]),
      // pg-boss waits for the handlers of a graceful stop for its timeout (1 s here), then gives up on them.
      refresh: async () => {
        started();
        await new Promise((resolve) => setTimeout(resolve, 1800));
        events.push('handler ended');
      },
      purge: () => Promise.resolve(),
    });
    const sender = new PgBoss({ db: { executeSql: (text, values) => handle.pool.query(text, values) }, supervise: false, schedule: false });
    await sender.start();
    await sender.send(REFRESH_QUEUE, {});
    await running;
    await queue.stop();
    events.push('stopped');
    await sender.stop({ graceful: false, close: false });
    await handle.close();
    expect(events).toEqual(['handler ended', 'stopped']);
  });
});
