import PgBoss from 'pg-boss';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RecordUpdate } from '../../src/db/record-store.js';
import type { Asn, StoredSourceState } from '../../src/record/model.js';
import type { JobView } from '../../src/schemas/jobs.js';
import { startHarness, type Harness } from '../support/app.js';
import { readResults, waitForJob } from '../support/jobs.js';

const NOW = Date.now();
const DAY = 86_400_000;
const ASN: Asn = { number: 64_500, numbers: [64_500], name: 'EXAMPLE', prefix: null, country: null, registry: null, allocated: null, source: 'maxmind' };

interface Ages {
  /** 'asn': fresh and naming the ASN; 'old': from another MaxMind build; default fresh without ASN. */
  maxmind?: 'asn' | 'old';
  /** Age in days of each source's answer; null: nothing stored. */
  cymru?: number | null;
  greynoise?: number | null;
  dshield?: number | null;
}

let harness: Harness;
beforeAll(async () => {
  harness = await startHarness({ config: { REFRESH_MAX_IPS: 3 } });
});
afterAll(async () => harness.close());

async function store(ip: string, ages: Ages, seenDaysAgo: number): Promise<void> {
  const version = harness.app.sources.maxmind.version()!;
  const state = <T>(days: number | null | undefined, data: T): StoredSourceState<T> | undefined =>
    days === null ? undefined : { status: 'ok', fetchedAt: new Date(NOW - (days ?? 0) * DAY).toISOString(), data };
  const update: RecordUpdate = {
    ip,
    lookups: 1,
    sources: {
      maxmind: {
        status: 'ok',
        fetchedAt: new Date(NOW).toISOString(),
        database: ages.maxmind === 'old' ? 'GeoLite2-City 2025-01-01' : version,
        data: { geo: null, asn: ages.maxmind === 'asn' ? ASN : null },
      },
      cymru: state(ages.cymru, { ...ASN, source: 'cymru' as const }),
      greynoise: state(ages.greynoise, { noise: false, riot: false, classification: null, name: null, link: null, lastSeen: null }),
      dshield: state(ages.dshield, { attacks: null, reports: null, firstSeen: null, lastSeen: null, threatFeeds: [], abuseContact: null }),
    },
  };
  await harness.app.records.save([update], new Date(NOW - seenDaysAgo * DAY));
}

async function refreshJobs(): Promise<JobView[]> {
  const response = await harness.app.inject({ method: 'GET', url: '/jobs' });
  return response.json<{ jobs: JobView[] }>().jobs.filter((job) => job.kind === 'refresh');
}

describe('the scheduled refresh', () => {
  it('takes exactly the stored records with a stale source, most recently seen first, at most REFRESH_MAX_IPS', async () => {
    await store('45.1.0.1', {}, 1); // everything fresh
    await store('45.1.0.2', { greynoise: 2 }, 2); // GreyNoise older than TTL_GREYNOISE
    await store('45.1.0.3', { dshield: null }, 9); // DShield never answered
    await store('45.1.0.4', { cymru: 8 }, 4); // Team Cymru older than TTL_CYMRU, and MaxMind has no ASN
    await store('45.1.0.5', { maxmind: 'asn', cymru: null }, 5); // no Cymru needed: MaxMind names the ASN
    await store('2a03:2880::5', { greynoise: null }, 6); // GreyNoise cannot answer for IPv6
    await store('45.1.0.7', { maxmind: 'old' }, 3); // from another MaxMind build

    const job = await harness.app.jobs.startRefresh();
    expect(job).toMatchObject({ kind: 'refresh', label: 'scheduled refresh', counts: { total: 3 } });
    await waitForJob(harness.app, job!.id);
    const results = await readResults(harness.app, job!.id);
    expect(results.map((record) => record.ip)).toEqual(['45.1.0.2', '45.1.0.7', '45.1.0.4']);
    expect((await refreshJobs()).map((listed) => listed.id)).toEqual([job!.id]);

    // Those three are fresh now: the next refresh takes the one left, and then there is nothing to do.
    const next = await harness.app.jobs.startRefresh();
    await waitForJob(harness.app, next!.id);
    expect((await readResults(harness.app, next!.id)).map((record) => record.ip)).toEqual(['45.1.0.3']);
    expect(await harness.app.jobs.startRefresh()).toBeUndefined();
  });

  it('starts no second refresh while one is under way', async () => {
    await store('45.1.0.8', { dshield: 3 }, 0);
    const { prisma } = harness.app.database;
    const [latest] = await refreshJobs();
    await prisma.enrichmentJob.update({ where: { id: latest!.id }, data: { status: 'running' } });
    try {
      expect(await harness.app.jobs.startRefresh()).toBeUndefined();
    } finally {
      await prisma.enrichmentJob.update({ where: { id: latest!.id }, data: { status: 'completed' } });
    }
  });

  it('is a pg-boss schedule (fired once across replicas), and runs when pg-boss fires it', async () => {
    const schedules = await harness.app.database.pool.query<{ name: string; cron: string }>('SELECT name, cron FROM pgboss.schedule ORDER BY name');
    expect(schedules.rows).toEqual([
      { name: 'ipenrich-refresh', cron: '0 */6 * * *' },
      { name: 'ipenrich-retention', cron: '17 * * * *' },
    ]);
    const before = (await refreshJobs()).length;
    const boss = new PgBoss({ connectionString: harness.database.url, supervise: false, schedule: false, migrate: false });
    await boss.start();
    await boss.send('ipenrich-refresh', {});
    await boss.stop({ graceful: false });
    const deadline = Date.now() + 10_000;
    while ((await refreshJobs()).length === before && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
    const [fired] = await refreshJobs();
    expect((await readResults(harness.app, (await waitForJob(harness.app, fired!.id)).id)).map((record) => record.ip)).toEqual(['45.1.0.8']);
  });

  it('is unscheduled with REFRESH_SCHEDULE=off', async () => {
    await harness.restart({ REFRESH_SCHEDULE: 'off' });
    const schedules = await harness.app.database.pool.query<{ name: string }>('SELECT name FROM pgboss.schedule');
    expect(schedules.rows.map((row) => row.name)).toEqual(['ipenrich-retention']);
  });
});
