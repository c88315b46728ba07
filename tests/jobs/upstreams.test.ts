import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import type { IpRecord } from '../../src/record/model.js';
import type { JobView } from '../../src/schemas/jobs.js';
import { respond } from '../doubles/http-upstream.js';
import { startHarness, type Harness } from '../support/app.js';
import { readResults, submitJob, waitForJob } from '../support/jobs.js';

const addresses = (count: number, third = 7) => Array.from({ length: count }, (_, i) => `45.93.${third}.${i + 1}`);

let harness: Harness;
afterEach(async () => harness.close());

describe('a job against rate-limited upstreams', () => {
  it('completes with every record filled while GreyNoise and DShield allow a few requests per second and answer 429', async () => {
    // The service believes in a budget ten times what the doubles allow, so it runs into their 429s.
    harness = await startHarness({
      // Every 429 is logged as a warning; there are many here by design.
      config: { GREYNOISE_RATE: 50, GREYNOISE_BURST: 5, DSHIELD_RATE: 50, DSHIELD_BURST: 5, LOG_LEVEL: 'error' },
      upstream: { ceiling: { rate: 8, burst: 3 } },
    });
    const ips = addresses(12);
    const job = await submitJob(harness.app, { ips });

    // While the rate-limited sources are still being asked, the addresses not finished answer pending.
    let seenPending: IpRecord[] = [];
    await waitForJob(harness.app, job.id, (current) => {
      if (current.status === 'completed') return true;
      return current.phases.cymru.state === 'done' && current.phases.persist.done < current.counts.unique;
    });
    seenPending = await readResults(harness.app, job.id);
    const pending = seenPending.filter((record) => record.status === ('pending' as string));
    expect(pending.length).toBeGreaterThan(0);
    // A pending record already shows what the job stored so far.
    expect(pending[0]!.asn).toMatchObject({ source: 'cymru' });

    // An interactive request still gets its answer within its deadline while the job takes the budget.
    const interactive = await harness.app.inject({
      method: 'POST',
      url: '/enrich',
      payload: { ips: ['45.93.200.1'], sources: ['greynoise', 'dshield'] },
    });
    const [answer] = interactive.json<{ results: IpRecord[] }>().results;
    expect([answer!.sources.greynoise.status, answer!.sources.dshield.status]).toEqual(['not_found', 'not_found']);

    const done = await waitForJob(harness.app, job.id, undefined, 60_000);
    expect(done.status).toBe('completed');
    const results = await readResults(harness.app, job.id);
    expect(results.map((record) => record.status)).toEqual(ips.map(() => 'ok'));
    for (const record of results) {
      expect([record.sources.greynoise.status, record.sources.dshield.status]).toEqual(['not_found', 'not_found']);
    }
    // The doubles did refuse requests: more were sent than there are addresses (and the interactive one).
    expect(harness.greynoise.requests.length + harness.dshield.requests.length).toBeGreaterThan(2 * (ips.length + 1));
    for (const double of [harness.greynoise, harness.dshield]) {
      for (const ip of ips) expect(double.requestsFor(ip).length).toBeGreaterThanOrEqual(1);
    }
  });

  it('shows a short Retry-After block in the first chunk as waiting, with waitingUntil, and then completes', async () => {
    // A block of a few seconds is waited out inside the chunk: nothing is recorded until it ends.
    harness = await startHarness({ config: { LOG_LEVEL: 'error', DSHIELD_MAX_IN_FLIGHT: 1 } });
    harness.dshield.enqueue(respond.limited(3));
    const ips = addresses(4, 10);
    const job = await submitJob(harness.app, { ips, sources: ['dshield'] });
    const waiting = await waitForJob(harness.app, job.id, (current) => current.phases.dshield.state !== 'pending');
    expect(waiting.phases.dshield).toMatchObject({ state: 'waiting', done: 0, startedAt: null });
    const until = Date.parse(waiting.phases.dshield.waitingUntil!);
    expect(until).toBeGreaterThan(Date.now());
    expect(until).toBeLessThanOrEqual(Date.now() + 3000);
    expect(waiting.etaSeconds).toBeGreaterThanOrEqual(1);
    const done = await waitForJob(harness.app, job.id);
    expect(done).toMatchObject({ status: 'completed', phases: { dshield: { state: 'done', done: 4 } } });
    expect(done.phases.dshield.waitingUntil).toBeUndefined();
    expect((await readResults(harness.app, job.id)).map((record) => record.sources.dshield.status)).toEqual(ips.map(() => 'not_found'));
  });

  it('waits for a Retry-After block longer than a chunk may wait without holding a worker, and shows it', async () => {
    // One request at a time, so the first is the only one sent before the block.
    harness = await startHarness({ config: { LOG_LEVEL: 'error', DSHIELD_MAX_IN_FLIGHT: 1 } });
    harness.dshield.enqueue(respond.limited(3600));
    const ips = addresses(5, 9);
    const job = await submitJob(harness.app, { ips, sources: ['dshield'] });
    const waiting = await waitForJob(harness.app, job.id, (current) => current.phases.dshield.state === 'waiting');
    const { prisma, pool } = harness.app.database;
    for (let row = await prisma.enrichmentJob.findUnique({ where: { id: job.id } }); row?.leaseOwner; ) {
      await sleep(50);
      row = await prisma.enrichmentJob.findUnique({ where: { id: job.id } });
    }
    expect(waiting.status).toBe('running');
    const until = Date.parse(waiting.phases.dshield.waitingUntil!);
    expect(until).toBeGreaterThan(Date.now() + 3500_000);
    expect(waiting.etaSeconds).toBeGreaterThanOrEqual(3500);
    // The job is handed back to the queue with a ticket that starts when the block ends.
    const tickets = await pool.query<{ start_after: Date }>(
      "SELECT start_after FROM pgboss.job WHERE name = 'ipenrich-job' AND state = 'created' AND singleton_key = $1",
      [job.id],
    );
    expect(tickets.rows).toHaveLength(1);
    expect(Math.abs(tickets.rows[0]!.start_after.getTime() - until)).toBeLessThan(1000);
    expect(harness.dshield.requests).toHaveLength(1);
    expect((await readResults(harness.app, job.id)).map((record) => record.status)).toEqual(ips.map(() => 'pending'));
  });

  it('cancels a running job: it stops asking, keeps the chunks it finished and answers the rest pending', async () => {
    // A budget of 30 requests at once, then one a second: two chunks of 15 finish at once, the third waits.
    harness = await startHarness({ config: { GREYNOISE_RATE: 1, GREYNOISE_BURST: 30, JOB_LEASE_SECONDS: 3 } });
    const ips = addresses(60, 8);
    const job = await submitJob(harness.app, { ips, sources: ['greynoise'] });
    await waitForJob(harness.app, job.id, (current) => current.phases.persist.done >= 30);

    const response = await harness.app.inject({ method: 'DELETE', url: `/jobs/${job.id}` });
    expect(response.statusCode).toBe(200);
    const cancelled = response.json<JobView>();
    expect(cancelled).toMatchObject({ status: 'cancelled', etaSeconds: null });
    expect(cancelled.finishedAt).not.toBeNull();
    expect(cancelled.phases.greynoise.state).toBe('stopped');

    // The worker gives the job up within a heartbeat, and asks nothing more.
    const { prisma } = harness.app.database;
    for (let row = await prisma.enrichmentJob.findUnique({ where: { id: job.id } }); row?.leaseOwner; ) {
      await sleep(50);
      row = await prisma.enrichmentJob.findUnique({ where: { id: job.id } });
    }
    const asked = harness.greynoise.requests.length;
    await sleep(1500);
    expect(harness.greynoise.requests.length).toBe(asked);

    const results = await readResults(harness.app, job.id);
    const finished = results.filter((record) => record.status === 'ok');
    expect(finished.length).toBeGreaterThanOrEqual(30);
    expect(finished.length).toBeLessThan(ips.length);
    // Chunks are taken in input order, so what finished is the head of the list.
    expect(results.map((record) => record.status)).toEqual(ips.map((_, i) => (i < finished.length ? 'ok' : 'pending')));
    // The NDJSON of pages with pending inputs, made row by row, is the same text as the JSON pages.
    const ndjson = await harness.app.inject({ method: 'GET', url: `/jobs/${job.id}/results`, headers: { accept: 'application/x-ndjson' } });
    const page = await harness.app.inject({ method: 'GET', url: `/jobs/${job.id}/results?limit=100` });
    expect(page.body).toBe(`{"results":[${ndjson.body.trimEnd().split('\n').join(',')}],"next":null}`);
    expect((await harness.app.inject({ method: 'DELETE', url: `/jobs/${job.id}` })).statusCode).toBe(409);
  });
});
