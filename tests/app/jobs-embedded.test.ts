import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { IpRecord } from '../../src/record/model.js';
import { startHarness, type Harness } from '../support/app.js';
import { readResults, submitJob, waitForJob } from '../support/jobs.js';

describe('jobs in the embedded default (PGlite, one connection shared by pg-boss and everything else)', () => {
  let dataDir: string;
  let harness: Harness;
  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'ipenrich-jobs-embedded-'));
    harness = await startHarness({ config: { DATABASE_URL: undefined, REDIS_URL: undefined, DATA_DIR: dataDir } });
  }, 60_000);
  afterAll(async () => {
    await harness.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  const ips = Array.from({ length: 1000 }, (_, i) => `45.90.${i >> 7}.${(i & 127) + 1}`);
  let jobId: string;

  it('runs a job to completion while the API keeps answering', async () => {
    const job = await submitJob(harness.app, { ips });
    jobId = job.id;
    const interactive = await harness.app.inject({ method: 'GET', url: '/ip/81.2.69.160?sources=maxmind' });
    expect(interactive.json<IpRecord>()).toMatchObject({ status: 'ok', asn: { number: 20712 } });
    expect((await waitForJob(harness.app, job.id, undefined, 30_000)).status).toBe('completed');
    const results = await readResults(harness.app, job.id);
    expect(results.map((record) => [record.input, record.status])).toEqual(ips.map((ip) => [ip, 'ok']));
  });

  it('keeps its jobs and their results across a restart', async () => {
    await harness.restart();
    const results = await readResults(harness.app, jobId, 400);
    expect(results).toHaveLength(ips.length);
    expect(results.every((record) => record.status === 'ok')).toBe(true);
  });
});
