import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LightMyRequestResponse } from 'fastify';
import { startHarness, startHarnessBehindProxy, type Harness } from '../support/app.js';
import { expectToMatchSchema } from '../support/contract.js';
import type { TestDatabase } from '../support/database.js';
import type { TcpProxy } from '../support/tcp-proxy.js';

function expectDatabaseUnavailable(response: LightMyRequestResponse): void {
  expect(response.statusCode).toBe(503);
  expect(response.headers['content-type']).toMatch(/problem\+json/);
  const problem = response.json<{ code: string; detail: string }>();
  expectToMatchSchema('Problem', problem);
  expect(problem).toMatchObject({ code: 'database-unavailable', detail: expect.stringMatching(/database/) });
  expect(problem.detail).not.toMatch(/ipenrich_test|does not exist|timeout/);
}

describe('when the database goes away', () => {
  let harness: Harness;
  beforeAll(async () => {
    harness = await startHarness();
  });
  afterAll(async () => harness.close());

  it('answers 503 problem+json naming the database, and /readyz says unready', async () => {
    await harness.database.drop();
    expectDatabaseUnavailable(await harness.app.inject({ method: 'POST', url: '/enrich', payload: { ips: ['45.95.1.1'] } }));
    const ready = await harness.app.inject({ method: 'GET', url: '/readyz' });
    expect(ready.statusCode).toBe(503);
    expect(ready.json<{ status: string }>().status).toBe('unready');
  });
});

describe('when the database stops answering', () => {
  // Well above what a query takes on a loaded CI machine: at 500 ms the first request, before the freeze,
  // once timed out while the other test files ran beside it.
  const TIMEOUT_MS = 1500;
  let database: TestDatabase;
  let proxy: TcpProxy;
  let harness: Harness;

  beforeAll(async () => {
    ({ harness, proxy, database } = await startHarnessBehindProxy({ DATABASE_TIMEOUT_MS: TIMEOUT_MS }));
  });
  afterAll(async () => {
    // Connections stuck behind the frozen proxy go first, or closing the app would wait for them.
    await proxy.close();
    await harness.close();
    await database.drop();
  });

  /** A hung request fails here, far above TIMEOUT_MS, rather than at the test's own timeout. */
  async function ask(method: 'GET' | 'POST', url: string, payload?: object): Promise<LightMyRequestResponse> {
    const ms = 4 * TIMEOUT_MS;
    let timer: NodeJS.Timeout | undefined;
    const hung = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${method} ${url} got no answer within ${ms} ms`)), ms);
    });
    try {
      return await Promise.race([harness.app.inject({ method, url, payload }), hung]);
    } finally {
      clearTimeout(timer);
    }
  }

  it('answers 503 database-unavailable and /readyz 503 within the timeout, and recovers once it answers again', async () => {
    expect((await ask('POST', '/enrich', { ips: ['45.95.2.1'] })).statusCode).toBe(200);

    proxy.freeze();
    expectDatabaseUnavailable(await ask('POST', '/enrich', { ips: ['45.95.2.2'] }));
    const ready = await ask('GET', '/readyz');
    expect(ready.statusCode).toBe(503);
    expect(ready.json<{ status: string }>().status).toBe('unready');

    proxy.unfreeze();
    const recovered = await ask('POST', '/enrich', { ips: ['45.95.2.2'] });
    expect(recovered.statusCode).toBe(200);
    expect(recovered.json<{ results: Array<{ ip: string }> }>().results[0]?.ip).toBe('45.95.2.2');
    expect((await ask('GET', '/readyz')).statusCode).toBe(200);
  });
});
