import { parse } from 'csv-parse/sync';
import type { LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { IpRecord } from '../../src/record/model.js';
import type { JobView } from '../../src/schemas/jobs.js';
import { startHarness, type Harness } from '../support/app.js';
import { expectToMatchSchema } from '../support/contract.js';
import { getJob, readResults, submitJob, waitForJob } from '../support/jobs.js';

const LIST = ['8.8.8.8', ' 81.2.69.160', 'not-an-ip', '10.0.0.1', '8.8.8.8', '2a02:d8::1', '45.93.1.1', '1.1.1.1'];

let harness: Harness;
beforeAll(async () => {
  harness = await startHarness({ config: { JOB_MAX_IPS: 20 } });
});
afterAll(async () => harness.close());

describe('POST /jobs', () => {
  it('answers 202 with the job and its Location, and completes it with a record per input in input order', async () => {
    const job = await submitJob(harness.app, { ips: LIST, label: 'honeypot 2026-12-01' });
    expect(job).toMatchObject({
      kind: 'list',
      status: 'queued',
      label: 'honeypot 2026-12-01',
      sources: ['maxmind', 'cymru', 'greynoise', 'dshield'],
      counts: { total: 8, unique: 5, invalid: 1, bogon: 1 },
      results: `/jobs/${job.id}/results`,
    });
    const done = await waitForJob(harness.app, job.id);
    expect(done).toMatchObject({ status: 'completed', etaSeconds: 0 });
    expect(done.startedAt).not.toBeNull();
    expect(done.finishedAt).not.toBeNull();
    for (const phase of Object.values(done.phases)) expect(phase).toMatchObject({ state: 'done', done: 5, total: 5 });
    expect(done.phases.cymru.batches).toBe(1);

    const results = await readResults(harness.app, job.id);
    expect(results.map((r) => [r.input, r.ip, r.status])).toEqual([
      ['8.8.8.8', '8.8.8.8', 'ok'],
      [' 81.2.69.160', '81.2.69.160', 'ok'],
      ['not-an-ip', 'not-an-ip', 'invalid'],
      ['10.0.0.1', '10.0.0.1', 'bogon'],
      ['8.8.8.8', '8.8.8.8', 'ok'],
      ['2a02:d8::1', '2a02:d8::1', 'ok'],
      ['45.93.1.1', '45.93.1.1', 'ok'],
      ['1.1.1.1', '1.1.1.1', 'ok'],
    ]);
    // What the job's own lookups said stays with the results: MaxMind knew the ASN, GreyNoise has no IPv6.
    expect(results[1]!.sources.cymru).toMatchObject({ status: 'skipped', error: 'MaxMind knows the ASN' });
    expect(results[5]!.sources.greynoise.status).toBe('unsupported');
    expect(results[6]!).toMatchObject({ asn: { number: 1045 }, sources: { dshield: { status: 'not_found' } } });
  });

  it('takes a text/plain list, one address per line, with # comments and blank lines, and its settings in the query', async () => {
    const body = '# from the honeypot\n8.8.4.4\n\n  9.9.9.9   # quad9\r\n#1.2.3.4\n';
    const response = await harness.app.inject({
      method: 'POST',
      url: '/jobs?sources=maxmind&sources=cymru&label=text',
      headers: { 'content-type': 'text/plain; charset=utf-8' },
      payload: body,
    });
    expect(response.statusCode, response.body).toBe(202);
    const job = response.json<JobView>();
    expect(job).toMatchObject({ label: 'text', sources: ['maxmind', 'cymru'], counts: { total: 2, unique: 2 } });
    await waitForJob(harness.app, job.id);
    const results = await readResults(harness.app, job.id);
    expect(results.map((r) => r.input)).toEqual(['8.8.4.4', '9.9.9.9']);
    expect(results.map((r) => r.sources.greynoise.status)).toEqual(['skipped', 'skipped']);
  });

  it.each([
    ['a JSON list', { payload: { ips: Array.from({ length: 21 }, (_, i) => `8.8.8.${i}`) } }],
    ['a text list', { payload: Array.from({ length: 21 }, (_, i) => `8.8.8.${i}`).join('\n'), headers: { 'content-type': 'text/plain' } }],
  ])('refuses %s longer than JOB_MAX_IPS with 413 problem+json', async (_name, request) => {
    const response = await harness.app.inject({ method: 'POST', url: '/jobs', ...request });
    expect(response.statusCode).toBe(413);
    expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(response.json()).toMatchObject({ code: 'too-many-addresses', detail: expect.stringMatching(/JOB_MAX_IPS allows 20/) });
  });

  it.each([
    ['no ips', { payload: { label: 'empty' } }, 'invalid-request'],
    ['an empty list', { payload: { ips: [] } }, 'no-addresses'],
    ['a text list of comments only', { payload: '# nothing\n\n', headers: { 'content-type': 'text/plain' } }, 'no-addresses'],
    ['an unknown source', { payload: { ips: ['8.8.8.8'], sources: ['shodan'] } }, 'invalid-request'],
    ['no source', { payload: { ips: ['8.8.8.8'], sources: [] } }, 'invalid-request'],
  ])('refuses %s with 400 problem+json', async (_name, request, code) => {
    const response = await harness.app.inject({ method: 'POST', url: '/jobs', ...request });
    expect(response.statusCode).toBe(400);
    expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(response.json()).toMatchObject({ code });
  });

  it('refuses a form body with 415, and keeps refusing text/plain on POST /enrich', async () => {
    const form = await harness.app.inject({
      method: 'POST',
      url: '/jobs',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: 'ips=8.8.8.8',
    });
    expect(form.statusCode).toBe(415);
    expect(form.json<{ detail: string }>().detail).toBe(
      'the body must be application/json or text/plain, not application/x-www-form-urlencoded',
    );
    const enrich = await harness.app.inject({ method: 'POST', url: '/enrich', headers: { 'content-type': 'text/plain' }, payload: '8.8.8.8' });
    expect(enrich.statusCode).toBe(415);
    expect(enrich.json<{ detail: string }>().detail).toBe('the body must be application/json, not text/plain');
  });
});

describe('GET /jobs/{id}/results', () => {
  let job: JobView;
  beforeAll(async () => {
    job = await submitJob(harness.app, { ips: LIST });
    await waitForJob(harness.app, job.id);
  });

  it('pages JSON with a next cursor, and NDJSON and CSV say the same in the same order', async () => {
    const pages: IpRecord[][] = [];
    let cursor: string | null = '0';
    while (cursor !== null) {
      const response: LightMyRequestResponse = await harness.app.inject({ method: 'GET', url: `/jobs/${job.id}/results?limit=3&cursor=${cursor}` });
      expect(response.statusCode).toBe(200);
      const page: { results: IpRecord[]; next: string | null } = response.json<{ results: IpRecord[]; next: string | null }>();
      pages.push(page.results);
      cursor = page.next;
    }
    expect(pages.map((page) => page.length)).toEqual([3, 3, 2]);
    const json = pages.flat();
    for (const record of json) expectToMatchSchema('IpRecord', record);

    const ndjson = await harness.app.inject({ method: 'GET', url: `/jobs/${job.id}/results`, headers: { accept: 'application/x-ndjson' } });
    expect(ndjson.headers['content-type']).toMatch(/^application\/x-ndjson/);
    const lines = ndjson.body.trimEnd().split('\n').map((line) => JSON.parse(line) as IpRecord);
    expect(lines).toEqual(json);

    const csv = await harness.app.inject({ method: 'GET', url: `/jobs/${job.id}/results`, headers: { accept: 'text/csv, application/json;q=0.5' } });
    expect(csv.headers['content-type']).toMatch(/^text\/csv/);
    const rows = parse<Record<string, string>>(csv.body, { columns: true });
    expect(rows.map((row) => [row.ip, row.input, row.status, row.asn, row.country, row.cymru_status, row.greynoise_noise])).toEqual(
      json.map((record) => [
        record.ip,
        record.input,
        record.status,
        record.asn ? String(record.asn.number) : '',
        record.geo?.country ?? record.asn?.country ?? '',
        record.sources.cymru.status,
        record.greynoise ? String(record.greynoise.noise) : '',
      ]),
    );
  });

  // Spellings that need escaping, with a repeated address (its line is kept once, at its first position, and
  // PostgreSQL looks it up for the other inputs) and without (every input has its own line).
  it.each([
    ['with a repeated address', ['\t\v8.8.8.8\u2028', '8.8.8.8', '81.2.69.160\u00a0', 'not-an-ip"\\\u0001\u007f', '１.２.３.４', '10.0.0.1', '2a02:d8::1', '45.93.1.1', '8.8.8.8'], 4],
    ['with each address once', ['\t\v8.8.8.9\u2028', '81.2.69.161\u00a0', 'not-an-ip"\\\u0001\u007f', '１.２.３.４', '10.0.0.1', '2a02:d8::2', '45.93.1.2'], 4],
  ])('gives, byte for byte, the records POST /enrich answers from the store, in NDJSON and in the JSON pages, %s', async (_, ips, stored) => {
    const own = await submitJob(harness.app, { ips });
    await waitForJob(harness.app, own.id);
    const ndjson = await harness.app.inject({ method: 'GET', url: `/jobs/${own.id}/results`, headers: { accept: 'application/x-ndjson' } });
    const lines = ndjson.body.split('\n');
    expect(lines.pop()).toBe('');
    expect(lines).toHaveLength(ips.length);
    const page = await harness.app.inject({ method: 'GET', url: `/jobs/${own.id}/results?limit=100` });
    expect(page.body).toBe(`{"results":[${lines.join(',')}],"next":null}`);
    const enrich = await harness.app.inject({ method: 'POST', url: '/enrich', payload: { ips } });
    expect(enrich.json<{ stats: { tiers: { l2: { hits: number } } } }>().stats.tiers.l2.hits).toBe(stored);
    expect(enrich.body.startsWith(`{"results":[${lines.join(',')}],"stats":`)).toBe(true);
  });

  it("keeps a finished job's results as the job found them when a record is refreshed later", async () => {
    const ips = ['45.93.2.1', '45.93.2.2'];
    const own = await submitJob(harness.app, { ips, sources: ['maxmind', 'cymru'] });
    await waitForJob(harness.app, own.id);
    const read = async () =>
      (await harness.app.inject({ method: 'GET', url: `/jobs/${own.id}/results`, headers: { accept: 'application/x-ndjson' } })).body;
    const before = await read();
    const refreshed = await harness.app.inject({ method: 'POST', url: '/enrich', payload: { ips, sources: ['cymru'], refresh: true } });
    const records = refreshed.json<{ results: IpRecord[] }>().results;
    expect(records.map((record) => record.updatedAt)).not.toEqual(before.trimEnd().split('\n').map((line) => (JSON.parse(line) as IpRecord).updatedAt));
    expect(await read()).toBe(before);
  });

  it('reads a job finished before result lines were kept from its stored records, to the same bytes', async () => {
    const own = await submitJob(harness.app, { ips: LIST });
    await waitForJob(harness.app, own.id);
    const read = async () =>
      (await harness.app.inject({ method: 'GET', url: `/jobs/${own.id}/results`, headers: { accept: 'application/x-ndjson' } })).body;
    const withLines = await read();
    const { count } = await harness.app.database.prisma.enrichmentJobInput.updateMany({
      where: { jobId: own.id, result: { not: null } },
      data: { result: null },
    });
    // The five addresses, and the two inputs that are not looked up.
    expect(count).toBe(7);
    expect(await read()).toBe(withLines);
  });

  it('answers 404 for an unknown job and 400 for a malformed id', async () => {
    const unknown = await harness.app.inject({ method: 'GET', url: '/jobs/00000000-0000-4000-8000-000000000000/results' });
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json()).toMatchObject({ code: 'job-not-found' });
    const malformed = await harness.app.inject({ method: 'GET', url: '/jobs/42/results' });
    expect(malformed.statusCode).toBe(400);
    expect(malformed.json()).toMatchObject({ code: 'invalid-request' });
  });
});

describe('the other job routes', () => {
  it('GET /jobs/{id} answers 404 for an unknown job and 400 for a malformed id, as problem+json', async () => {
    const unknown = await harness.app.inject({ method: 'GET', url: '/jobs/00000000-0000-4000-8000-000000000000' });
    expect(unknown.statusCode).toBe(404);
    expect(unknown.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(unknown.json()).toMatchObject({ code: 'job-not-found' });
    const malformed = await harness.app.inject({ method: 'GET', url: '/jobs/not-a-uuid' });
    expect(malformed.statusCode).toBe(400);
  });

  it('DELETE answers 409 for a finished job and 404 for an unknown one', async () => {
    const job = await submitJob(harness.app, { ips: ['8.8.8.8'], sources: ['maxmind'] });
    await waitForJob(harness.app, job.id);
    const finished = await harness.app.inject({ method: 'DELETE', url: `/jobs/${job.id}` });
    expect(finished.statusCode).toBe(409);
    expect(finished.json()).toMatchObject({ code: 'job-finished', detail: expect.stringMatching(/is completed/) });
    expect((await getJob(harness.app, job.id)).status).toBe('completed');
    const unknown = await harness.app.inject({ method: 'DELETE', url: '/jobs/00000000-0000-4000-8000-000000000000' });
    expect(unknown.statusCode).toBe(404);
  });

  it('GET /jobs lists the latest jobs first, filtered by status', async () => {
    const older = await submitJob(harness.app, { ips: ['8.8.8.8'], sources: ['maxmind'], label: 'older' });
    await waitForJob(harness.app, older.id);
    const newer = await submitJob(harness.app, { ips: ['8.8.8.8'], sources: ['maxmind'], label: 'newer' });
    await waitForJob(harness.app, newer.id);
    const response = await harness.app.inject({ method: 'GET', url: '/jobs?status=completed&limit=2' });
    expect(response.statusCode).toBe(200);
    const { jobs } = response.json<{ jobs: JobView[] }>();
    expect(jobs.map((job) => job.id)).toEqual([newer.id, older.id]);
    for (const job of jobs) expectToMatchSchema('Job', job);
    const none = await harness.app.inject({ method: 'GET', url: '/jobs?status=cancelled' });
    expect(none.json<{ jobs: JobView[] }>().jobs.every((job) => job.status === 'cancelled')).toBe(true);
    expect((await harness.app.inject({ method: 'GET', url: '/jobs?status=lost' })).statusCode).toBe(400);
  });

  it('counts jobs by status in /metrics', async () => {
    const text = (await harness.app.inject({ method: 'GET', url: '/metrics' })).body;
    expect(text).toMatch(/^ipenrich_jobs\{status="completed"\} [1-9]\d*$/m);
    expect(text).toMatch(/^ipenrich_jobs\{status="queued"\} 0$/m);
    expect(text).toMatch(/^ipenrich_job_queue_depth 0$/m);
    expect(text).toMatch(/^ipenrich_job_oldest_queued_seconds 0$/m);
    expect(text).toMatch(/^ipenrich_job_phase_seconds_count\{phase="cymru"\} [1-9]\d*$/m);
  });

  it('deletes finished jobs and their inputs after JOB_RETENTION, and keeps the records', async () => {
    const job = await submitJob(harness.app, { ips: ['8.8.8.8', '9.9.9.9'], sources: ['maxmind'] });
    await waitForJob(harness.app, job.id);
    const { prisma } = harness.app.database;
    await prisma.enrichmentJob.update({ where: { id: job.id }, data: { finishedAt: new Date(Date.now() - 8 * 86_400_000) } });
    expect(await harness.app.jobs.purge()).toBe(1);
    expect((await harness.app.inject({ method: 'GET', url: `/jobs/${job.id}` })).statusCode).toBe(404);
    expect(await prisma.enrichmentJobInput.count({ where: { jobId: job.id } })).toBe(0);
    expect(await prisma.enrichmentJobAddress.count({ where: { jobId: job.id } })).toBe(0);
    expect(await prisma.ipRecord.count({ where: { ip: { in: ['8.8.8.8', '9.9.9.9'] } } })).toBe(2);
  });
});

describe('/metrics while the database is away', () => {
  it('still answers, the job gauges keeping their last values', async () => {
    const own = await startHarness();
    try {
      const before = (await own.app.inject({ method: 'GET', url: '/metrics' })).body;
      expect(before).toMatch(/^ipenrich_job_queue_depth 0$/m);
      await own.database.drop();
      await new Promise((resolve) => setTimeout(resolve, 1100));
      const response = await own.app.inject({ method: 'GET', url: '/metrics' });
      expect(response.statusCode).toBe(200);
      expect(response.body).toMatch(/^ipenrich_job_queue_depth 0$/m);
      expect(response.body).toMatch(/^ipenrich_process_cpu_seconds_total /m);
    } finally {
      await own.close();
    }
  });
});
