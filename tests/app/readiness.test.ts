import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Readiness } from '../../src/schemas/readiness.js';
import { startHarness, type Harness } from '../support/app.js';
import { expectToMatchSchema } from '../support/contract.js';

describe('/readyz', () => {
  let refusing = true;
  let harness: Harness;
  beforeAll(async () => {
    harness = await startHarness({
      config: { CYMRU_RETRIES: 0 },
      cymru: { behaviour: () => (refusing ? 'refuse' : 'answer') },
    });
  });
  afterAll(async () => harness.close());

  const readiness = async () => {
    const response = await harness.app.inject({ method: 'GET', url: '/readyz' });
    expectToMatchSchema('Readiness', response.json());
    return response.json<Readiness>();
  };
  const enrich = (ips: string[]) => harness.app.inject({ method: 'POST', url: '/enrich', payload: { ips } });

  it('reports Team Cymru failing with the last error and since when, until a bulk query succeeds again', async () => {
    expect((await readiness()).sources.cymru).toEqual({ status: 'ready' });

    await enrich(['8.8.8.8']);
    const failing = (await readiness()).sources.cymru;
    expect(failing).toMatchObject({ status: 'failing', reason: expect.stringMatching(/./) as unknown });
    const since = failing.since!;
    await enrich(['8.8.4.4']);
    expect((await readiness()).sources.cymru.since).toBe(since);

    refusing = false;
    await enrich(['1.1.1.1']);
    expect((await readiness()).sources.cymru).toEqual({ status: 'ready' });
  });

  it('reports every part from the plugin that owns it', async () => {
    const report = await readiness();
    expect(report).toMatchObject({
      status: 'ready',
      database: { status: 'ok' },
      redis: { status: 'off' },
      cache: { kind: 'memory', status: 'ok' },
    });
    expect(report.defaults).toEqual([expect.stringContaining('REDIS_URL unset')]);
  });
});
