import Fastify from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryTier } from '../../src/cache/memory-tier.js';
import { systemClock } from '../../src/clock.js';
import { loadConfig } from '../../src/config.js';
import type { LookupOptions, PerAddressSource, SourceAvailability } from '../../src/enrich/sources.js';
import cache from '../../src/plugins/app/cache.js';
import readiness from '../../src/plugins/app/readiness.js';
import database from '../../src/plugins/external/database.js';
import redis from '../../src/plugins/external/redis.js';
import type { GreyNoise, IpRecord, SourceOutcome } from '../../src/record/model.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { startHarness, type Harness } from '../support/app.js';

/** A GreyNoise that answers from memory and remembers what it was asked. */
class ScriptedGreyNoise implements PerAddressSource<GreyNoise> {
  readonly asked: string[] = [];

  lookup(ips: readonly string[], _options: LookupOptions): Promise<Map<string, SourceOutcome<GreyNoise>>> {
    this.asked.push(...ips);
    const data: GreyNoise = { noise: true, riot: false, classification: 'malicious', name: 'scripted', link: null, lastSeen: null };
    return Promise.resolve(new Map(ips.map((ip) => [ip, { status: 'ok', data }])));
  }

  availability(): SourceAvailability {
    return { status: 'ready' };
  }

  unsupported(): undefined {
    return undefined;
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

describe('buildApp overrides', () => {
  const greynoise = new ScriptedGreyNoise();
  const l1 = new MemoryTier({ maxEntries: 100, ttlMs: 60_000 });
  let harness: Harness;
  beforeAll(async () => {
    harness = await startHarness({ overrides: { sources: { greynoise }, cache: l1 } });
  });
  afterAll(async () => harness.close());

  it('uses a replaced source and cache while every other part stays the configured one', async () => {
    const response = await harness.app.inject({ method: 'POST', url: '/enrich', payload: { ips: ['8.8.8.8'] } });
    const [record] = response.json<{ results: IpRecord[] }>().results;
    expect(record!.greynoise).toMatchObject({ name: 'scripted', classification: 'malicious' });
    expect(greynoise.asked).toEqual(['8.8.8.8']);
    expect(harness.greynoise.requests).toHaveLength(0);
    expect(harness.cymru.connections.length).toBeGreaterThan(0);
    expect(l1.peek('8.8.8.8')?.sources.greynoise?.status).toBe('ok');
    const ready = (await harness.app.inject({ method: 'GET', url: '/readyz' })).json<{ cache: unknown }>();
    expect(ready.cache).toEqual({ kind: 'memory', status: 'ok' });
  });
});

describe('plugins on their own', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => db.drop());

  it('start the cache tiers on a migrated database without any source, and report their own state', async () => {
    const config = loadConfig({}, { DATABASE_URL: db.url, LOG_LEVEL: 'silent' });
    const app = Fastify({ logger: false });
    app.decorate('config', config);
    app.decorate('clock', systemClock);
    for (const plugin of [readiness, database, redis, cache]) await app.register(plugin);
    await app.ready();
    try {
      await app.records.save([{ ip: '192.0.2.1', sources: {}, lookups: 1 }], new Date());
      const read = await app.tiers.load(['192.0.2.1', '198.51.100.1']);
      expect([...read.l2.keys()]).toEqual(['192.0.2.1']);
      expect(read.stats.l1).toMatchObject({ hits: 0, misses: 2 });
      expect(read.stats.l2).toMatchObject({ hits: 1, misses: 1 });
      expect(app.hasDecorator('sources')).toBe(false);
      await expect(app.readiness.report()).rejects.toThrow('no plugin reports maxmind');
    } finally {
      await app.close();
    }
  });

  it('refuse to start a part whose dependencies are missing', async () => {
    const app = Fastify({ logger: false });
    app.decorate('config', loadConfig({}, { DATABASE_URL: db.url }));
    await app.register(readiness);
    await expect(app.register(cache)).rejects.toThrow(/database/);
    await app.close();
  });
});
