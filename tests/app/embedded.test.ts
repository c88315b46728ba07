import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import type { IpRecord } from '../../src/record/model.js';
import { startHarness, type Harness } from '../support/app.js';

describe('with no DATABASE_URL and no REDIS_URL', () => {
  let dataDir: string;
  let harness: Harness;
  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'ipenrich-embedded-'));
    harness = await startHarness({ config: { DATABASE_URL: undefined, REDIS_URL: undefined, DATA_DIR: dataDir } });
  }, 60_000);
  afterAll(async () => {
    await harness.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('boots on the embedded database and answers POST /enrich', async () => {
    const response = await harness.app.inject({
      method: 'POST',
      url: '/enrich',
      payload: { ips: ['81.2.69.160', '45.93.1.1'], sources: ['maxmind', 'cymru'] },
    });
    expect(response.statusCode).toBe(200);
    const { results } = response.json<{ results: IpRecord[] }>();
    expect(results.map((r) => [r.status, r.asn?.number])).toEqual([
      ['ok', 20712],
      ['ok', 1045],
    ]);
    const ready = (await harness.app.inject({ method: 'GET', url: '/readyz' })).json<{ status: string; cache: { kind: string }; defaults: string[] }>();
    expect(ready).toMatchObject({ status: 'ready', cache: { kind: 'memory' } });
    expect(ready.defaults).toEqual(
      expect.arrayContaining([expect.stringMatching(/embedded PostgreSQL/), expect.stringMatching(/in-process LRU/)]),
    );
  });

  it('keeps its records across a restart', async () => {
    await harness.restart();
    const before = harness.cymru.connections.length;
    const response = await harness.app.inject({ method: 'GET', url: '/ip/45.93.1.1?sources=maxmind&sources=cymru' });
    expect(response.json<IpRecord>()).toMatchObject({ status: 'ok', asn: { number: 1045 } });
    expect(harness.cymru.connections.length).toBe(before);
  });
});

describe('booting without a reachable database', () => {
  it('fails with a message naming DATABASE_URL', async () => {
    const config = loadConfig({}, { DATABASE_URL: 'postgresql://postgres@127.0.0.1:1/nothing', LOG_LEVEL: 'silent' });
    await expect(buildApp(config)).rejects.toThrow(/cannot reach the database at DATABASE_URL: .*ECONNREFUSED/);
  });
});
