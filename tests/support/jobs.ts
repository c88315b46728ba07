import { setTimeout as sleep } from 'node:timers/promises';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { expect } from 'vitest';
import type { IpRecord } from '../../src/record/model.js';
import type { JobView } from '../../src/schemas/jobs.js';
import { expectToMatchSchema } from './contract.js';

/** Submits a job through POST /jobs and returns it as the 202 answered it. */
export async function submitJob(app: FastifyInstance, body: object): Promise<JobView> {
  const response = await app.inject({ method: 'POST', url: '/jobs', payload: body });
  expect(response.statusCode, response.body).toBe(202);
  const job = response.json<JobView>();
  expect(response.headers.location).toBe(`/jobs/${job.id}`);
  expectToMatchSchema('Job', job);
  return job;
}

export async function getJob(app: FastifyInstance, id: string): Promise<JobView> {
  const response = await app.inject({ method: 'GET', url: `/jobs/${id}` });
  expect(response.statusCode, response.body).toBe(200);
  const job = response.json<JobView>();
  expectToMatchSchema('Job', job);
  return job;
}

/** Polls GET /jobs/{id} until `done` says so; fails with the job's last state after `timeoutMs`. */
export async function waitForJob(
  app: FastifyInstance,
  id: string,
  done: (job: JobView) => boolean = (job) => job.status !== 'queued' && job.status !== 'running',
  timeoutMs = 20_000,
): Promise<JobView> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const job = await getJob(app, id);
    if (done(job)) return job;
    if (Date.now() > until) throw new Error(`job ${id} did not get there in ${timeoutMs} ms: ${JSON.stringify(job)}`);
    await sleep(50);
  }
}

/** Every result of a job through the JSON pages, each checked against the schema its status promises. */
export async function readResults(app: FastifyInstance, id: string, limit = 1000): Promise<IpRecord[]> {
  const results: IpRecord[] = [];
  let cursor: string | null = '0';
  while (cursor !== null) {
    const response: LightMyRequestResponse = await app.inject({ method: 'GET', url: `/jobs/${id}/results?limit=${limit}&cursor=${cursor}` });
    expect(response.statusCode, response.body).toBe(200);
    const page: { results: IpRecord[]; next: string | null } = response.json<{ results: IpRecord[]; next: string | null }>();
    for (const result of page.results) expectToMatchSchema(result.status === ('pending' as string) ? 'PendingRecord' : 'IpRecord', result);
    results.push(...page.results);
    cursor = page.next;
  }
  return results;
}
