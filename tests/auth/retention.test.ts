import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from '../support/app.js';

const DAY_MS = 86_400_000;

/** Stored records of `count` addresses last seen `daysAgo` days ago (as a lookup would have left them). */
async function storeSeen(harness: Harness, prefix: string, count: number, daysAgo: number): Promise<void> {
  const ips = Array.from({ length: count }, (_, i) => `${prefix}.${Math.floor(i / 250)}.${i % 250}`);
  await harness.app.records.save(ips.map((ip) => ({ ip, sources: {}, lookups: 1 })), new Date(Date.now() - daysAgo * DAY_MS));
}

async function query<T extends pg.QueryResultRow>(harness: Harness, sql: string): Promise<T[]> {
  const client = new pg.Client({ connectionString: harness.database.url });
  await client.connect();
  try {
    return (await client.query<T>(sql)).rows;
  } finally {
    await client.end();
  }
}

describe('RECORD_RETENTION', () => {
  let harness: Harness;
  beforeAll(async () => {
    harness = await startHarness({ config: { RECORD_RETENTION: '30d' } });
  });
  afterAll(async () => harness.close());

  it('deletes, in batches, the records neither seen nor looked up for that long, and counts them in the metrics', async () => {
    await storeSeen(harness, '45.1', 2300, 40);
    await storeSeen(harness, '45.2', 700, 2);
    expect(await harness.app.recordRemoval.purgeUnseen()).toBe(2300);
    expect(await query(harness, 'SELECT count(*)::int AS count FROM ip_record')).toEqual([{ count: 700 }]);
    const metrics = await harness.app.inject({ method: 'GET', url: '/metrics' });
    expect(metrics.body).toMatch(/ipenrich_records_deleted_total\{reason="retention"\} 2300/);
    expect(await harness.app.recordRemoval.purgeUnseen()).toBe(0);
  });

  it('runs on a daily schedule that pg-boss fires once across the replicas', async () => {
    expect(await query(harness, 'SELECT name, cron FROM pgboss.schedule')).toEqual(
      expect.arrayContaining([{ name: 'ipenrich-record-retention', cron: '43 3 * * *' }]),
    );
  });

  it('is off by default: nothing is deleted and nothing is scheduled', async () => {
    await harness.restart({ RECORD_RETENTION: 'off' });
    await storeSeen(harness, '45.3', 10, 400);
    expect(await harness.app.recordRemoval.purgeUnseen()).toBe(0);
    expect(await query(harness, "SELECT name FROM pgboss.schedule WHERE name = 'ipenrich-record-retention'")).toEqual([]);
  });
});
