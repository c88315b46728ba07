import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from '../support/app.js';
import { expectToMatchSchema } from '../support/contract.js';

describe('when the database goes away', () => {
  let harness: Harness;
  beforeAll(async () => {
    harness = await startHarness();
  });
  afterAll(async () => harness.close());

  it('answers 503 problem+json naming the database, and /readyz says unready', async () => {
    await harness.database.drop();
    const response = await harness.app.inject({ method: 'POST', url: '/enrich', payload: { ips: ['45.95.1.1'] } });
    expect(response.statusCode).toBe(503);
    expect(response.headers['content-type']).toMatch(/problem\+json/);
    const problem = response.json<{ code: string; detail: string }>();
    expectToMatchSchema('Problem', problem);
    expect(problem).toMatchObject({ code: 'database-unavailable', detail: expect.stringMatching(/database/) });
    expect(problem.detail).not.toMatch(/ipenrich_test|does not exist/);
    const ready = await harness.app.inject({ method: 'GET', url: '/readyz' });
    expect(ready.statusCode).toBe(503);
    expect(ready.json<{ status: string }>().status).toBe('unready');
  });
});
