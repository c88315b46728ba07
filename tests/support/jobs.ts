import { setTimeout as sleep } from 'node:timers/promises';
import type { FastifyInstance } from 'fastify';
import { expect } from 'vitest';
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
