import type pg from 'pg';
import PgBoss from 'pg-boss';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { connectDatabase, type DatabaseHandle } from '../../src/db/client.js';
import { JobQueue, REFRESH_QUEUE, type WorkerOptions } from '../../src/jobs/queue.js';
import { capturingLogger } from '../doubles/logger.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

let database: TestDatabase;
let handle: DatabaseHandle;
// A database each: a job the first test leaves to be retried must not reach the second.
beforeEach(async () => {
  database = await createTestDatabase();
  handle = connectDatabase(database.url);
});
afterEach(async () => {
  await handle.close();
  await database.drop();
});

const idle: Omit<WorkerOptions, 'refresh'> = {
  concurrency: 1,
  sweepSeconds: 60,
  refreshSchedule: 'off',
  runSlice: () => Promise.resolve({ kind: 'skipped' }),
  unclaimed: () => Promise.resolve([]),
  purge: () => Promise.resolve(),
};

async function sendRefresh(): Promise<PgBoss> {
  const sender = new PgBoss({ db: { executeSql: (text, values) => handle.pool.query(text, values) }, supervise: false, schedule: false });
  await sender.start();
  await sender.send(REFRESH_QUEUE, {});
  return sender;
}

describe('JobQueue.stop', () => {
  it('resolves only once a handler that outlasts pg-boss’s own wait has ended, so the pool outlives what pg-boss sends after it', async () => {
    const events: string[] = [];
    let started = () => {};
    const running = new Promise<void>((resolve) => (started = resolve));
    const queue = new JobQueue({ pool: handle.pool, log: capturingLogger().logger, ticketSeconds: 60 }, true);
    await queue.start({
      ...idle,
      // pg-boss waits for the handlers of a graceful stop for its timeout (1 s here), then gives up on them.
      refresh: async () => {
        started();
        await new Promise((resolve) => setTimeout(resolve, 1800));
        events.push('handler ended');
      },
    });
    const sender = await sendRefresh();
    await running;
    await queue.stop();
    events.push('stopped');
    await sender.stop({ graceful: false, close: false });
    expect(events).toEqual(['handler ended', 'stopped']);
  });

  it('resolves only once the jobs of a fetch still in flight when it was called have run', async () => {
    const events: string[] = [];
    let fetching = () => {};
    const fetched = new Promise<void>((resolve) => (fetching = resolve));
    // The pool pg-boss gets: its fetches of refresh jobs take 300 ms to come back, once the job is waiting.
    let slowFetches = false;
    const pool = {
      query: (text: string, values?: unknown[]) => {
        const query = handle.pool.query(text, values);
        if (!slowFetches || !text.includes('SKIP LOCKED') || values?.[0] !== REFRESH_QUEUE) return query;
        fetching();
        return query.then(async (result) => {
          await new Promise((resolve) => setTimeout(resolve, 300));
          return result;
        });
      },
    } as unknown as pg.Pool;
    const queue = new JobQueue({ pool, log: capturingLogger().logger, ticketSeconds: 60 }, true);
    await queue.start({
      ...idle,
      refresh: () => {
        events.push('refresh ran');
        return Promise.resolve();
      },
    });
    const sender = await sendRefresh();
    slowFetches = true;
    await fetched;
    await queue.stop();
    events.push('stopped');
    await sender.stop({ graceful: false, close: false });
    expect(events).toEqual(['refresh ran', 'stopped']);
  });
});
