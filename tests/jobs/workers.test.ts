import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CymruWhoisDouble } from '../doubles/cymru-whois.js';
import { startHarness, type Harness } from '../support/app.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { submitJob, waitForJob } from '../support/jobs.js';

let database: TestDatabase;
let api: Harness;
let workers: Harness[];
beforeAll(async () => {
  database = await createTestDatabase();
  api = await startHarness({ database, config: { ROLE: 'api' } });
  // Each worker has its own Team Cymru double, so the doubles tell which worker asked what. Slices of a
  // second and slow bulk queries (a job takes about two seconds) make jobs change hands as they run.
  const worker = () =>
    startHarness({
      database,
      config: { ROLE: 'worker', JOB_SLICE_SECONDS: 1, CYMRU_BATCH_SIZE: 10 },
      cymru: { queryLatencyMs: 200 },
    });
  workers = [await worker(), await worker()];
});
afterAll(async () => {
  for (const harness of [...workers, api]) await harness.close();
  await database.drop();
});

const askedOf = (cymru: CymruWhoisDouble) => cymru.connections.filter((c) => c.rowsWritten > 0).flatMap((c) => c.addresses);

describe('API and worker roles on one database', () => {
  it('share the queue: jobs submitted to the API run on the workers, none of them twice at once', async () => {
    const lists = Array.from({ length: 3 }, (_, job) => Array.from({ length: 200 }, (_, i) => `45.${60 + job}.${i >> 8}.${(i & 255) + 1}`));
    const jobs = await Promise.all(lists.map((ips) => submitJob(api.app, { ips, sources: ['maxmind', 'cymru'] })));
    for (const job of jobs) expect((await waitForJob(api.app, job.id, undefined, 30_000)).status).toBe('completed');

    const asked = workers.map((worker) => askedOf(worker.cymru));
    // Both workers took part, and every address was answered by Team Cymru exactly once, by one of them.
    for (const byWorker of asked) expect(byWorker.length).toBeGreaterThan(0);
    expect(asked.flat().sort()).toEqual(lists.flat().sort());
    expect(api.cymru.connections).toHaveLength(0);
    // Three jobs on two workers: a job's next slice goes to whichever worker comes free first, so jobs
    // change hands, and still no address was asked twice.
    const ranOnBoth = lists.filter((ips) => asked.every((byWorker) => byWorker.some((ip) => ips.includes(ip))));
    expect(ranOnBoth.length).toBeGreaterThan(0);
  });

  it('serve only /healthz, /readyz and /metrics on a worker', async () => {
    const { app } = workers[0]!;
    expect((await app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
    expect((await app.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(200);
    const metrics = await app.inject({ method: 'GET', url: '/metrics' });
    expect(metrics.body).toMatch(/^ipenrich_jobs\{status="completed"\} \d+$/m);
    for (const url of ['/jobs', '/enrich', '/ip/8.8.8.8', '/openapi.json']) {
      const response = await app.inject({ method: url === '/enrich' ? 'POST' : 'GET', url, payload: url === '/enrich' ? { ips: [] } : undefined });
      expect(response.statusCode, url).toBe(404);
    }
  });
});
