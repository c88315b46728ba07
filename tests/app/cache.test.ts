import { rename } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { ManualClock } from '../support/manual-clock.js';
import type { EnrichStats } from '../../src/enrich/stats.js';
import type { IpRecord } from '../../src/record/model.js';
import { startHarness, type Harness } from '../support/app.js';
import { writeMmdb } from '../support/mmdb-writer.js';
import { startRedisServer, type RedisServer } from '../support/redis-server.js';

interface EnrichAnswer {
  results: IpRecord[];
  stats: EnrichStats;
}

async function enrich(harness: Harness, body: object): Promise<EnrichAnswer> {
  const response = await harness.app.inject({ method: 'POST', url: '/enrich', payload: body });
  expect(response.statusCode).toBe(200);
  return response.json<EnrichAnswer>();
}

function upstreamCalls(harness: Harness) {
  return {
    cymru: harness.cymru.connections.length,
    greynoise: harness.greynoise.requests.length,
    dshield: harness.dshield.requests.length,
  };
}

/** The stored lookup count of each address, in address order. */
async function lookupCounts(harness: Harness, ips: readonly string[]) {
  const db = new pg.Client({ connectionString: harness.database.url });
  await db.connect();
  try {
    const { rows } = await db.query<{ ip: string; lookup_count: number }>(
      'SELECT ip, lookup_count FROM ip_record WHERE ip = ANY($1) ORDER BY ip',
      [ips],
    );
    return rows;
  } finally {
    await db.end();
  }
}

const list = (prefix: string, count: number) => Array.from({ length: count }, (_, i) => `${prefix}.${i + 1}`);

describe('L1 on Redis', () => {
  let redis: RedisServer;
  let harness: Harness;
  beforeAll(async () => {
    redis = await startRedisServer();
    harness = await startHarness({ config: { REDIS_URL: redis.url } });
  });
  afterAll(async () => {
    await harness.close();
    await redis.stop();
  });

  it('answers a repeated list from L1 with zero upstream calls', async () => {
    const ips = list('45.90.1', 50);
    const first = await enrich(harness, { ips });
    expect(first.stats.tiers.l1).toMatchObject({ hits: 0, misses: 50 });
    const before = upstreamCalls(harness);
    const second = await enrich(harness, { ips });
    expect(upstreamCalls(harness)).toEqual(before);
    expect(second.stats.tiers.l1).toMatchObject({ hits: 50, misses: 0 });
    expect(second.stats.tiers.l2).toMatchObject({ hits: 0, misses: 0 });
    expect(second.results.map((r) => r.asn?.number)).toEqual(first.results.map((r) => r.asn?.number));
  });

  it('answers addresses this process holds without asking Redis, and asks it only for the rest', async () => {
    const observer = new Redis(redis.url);
    const mgets = async () => Number(/cmdstat_mget:calls=(\d+)/.exec(await observer.info('commandstats'))?.[1] ?? 0);
    onTestFinished(() => void observer.quit());
    const ips = list('45.90.6', 4);
    await enrich(harness, { ips });
    const before = { mget: await mgets(), upstream: upstreamCalls(harness) };
    const again = await enrich(harness, { ips });
    expect(again.stats.tiers.l1).toMatchObject({ hits: 4, misses: 0 });
    expect(await mgets()).toBe(before.mget);

    const mixed = await enrich(harness, { ips: [...ips, ...list('45.90.7', 2)] });
    expect(mixed.stats.tiers.l1).toMatchObject({ hits: 4, misses: 2 });
    expect(mixed.stats.tiers.l2).toMatchObject({ hits: 0, misses: 2 });
    expect(mixed.stats.sources.cymru.lookups).toBe(2);
    expect(await mgets()).toBe(before.mget + 1);
    expect(upstreamCalls(harness).cymru).toBe(before.upstream.cymru + 1);
    expect(mixed.results.slice(0, 4)).toEqual(again.results);
  });

  it("writes an answer's records to Redis behind it, and never writes back an address deleted meanwhile", async () => {
    const observer = new Redis(redis.url);
    onTestFinished(() => void observer.quit());
    const key = (ip: string) => `${harness.config.REDIS_KEY_PREFIX}rec:${ip}`;
    const [kept, deleted] = list('45.90.9', 2) as [string, string];
    await enrich(harness, { ips: [kept, deleted] });
    // Asked at once, before the write that waits for the answer to be sent has had its turn.
    const removal = await harness.app.inject({ method: 'DELETE', url: `/ip/${deleted}` });
    expect(removal.statusCode).toBe(200);
    await expect.poll(() => observer.exists(key(kept)), { timeout: 2000 }).toBe(1);
    // The write of the first answer has been made (kept is there); it did not bring the deleted address back.
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(await observer.exists(key(deleted))).toBe(0);
  });

  it('holds the Redis writes of an answer while another request is being answered, and makes them once it ends', async () => {
    const observer = new Redis(redis.url);
    onTestFinished(() => void observer.quit());
    const key = (ip: string) => `${harness.config.REDIS_KEY_PREFIX}rec:${ip}`;
    // A request whose body has not finished arriving is being answered all along.
    const body = new PassThrough();
    const held = harness.app.inject({ method: 'POST', url: '/enrich', headers: { 'content-type': 'application/json' }, payload: body });
    body.write('{"ips":[');
    const [ip] = list('45.90.11', 1) as [string];
    await enrich(harness, { ips: [ip] });
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(await observer.exists(key(ip))).toBe(0);
    body.end('"10.0.0.1"]}');
    expect((await held).statusCode).toBe(200);
    // Well before the 2 s a record waits at most: the write follows the end of the other request.
    await expect.poll(() => observer.exists(key(ip)), { timeout: 1000, interval: 20 }).toBe(1);
  });

  it('keeps answering while Redis is down, and uses L1 again once it is back', async () => {
    const ips = list('45.90.2', 20);
    await enrich(harness, { ips });
    await redis.stop();
    const during = await enrich(harness, { ips: [...ips, ...list('45.90.3', 5)] });
    expect(during.results.every((r) => r.status === 'ok')).toBe(true);
    const degraded = await harness.app.inject({ method: 'GET', url: '/readyz' });
    expect(degraded.statusCode).toBe(200);
    expect(degraded.json<{ status: string; cache: { status: string } }>()).toMatchObject({ status: 'degraded', cache: { status: 'degraded' } });

    await redis.start();
    await expect.poll(async () => (await harness.app.inject({ method: 'GET', url: '/readyz' })).json<{ status: string }>().status, { timeout: 5000 }).toBe('ready');
    const later = list('45.90.5', 10);
    await enrich(harness, { ips: later });
    // A new instance has no local copies: its hits can only come from Redis.
    await harness.restart();
    const before = upstreamCalls(harness);
    const fromRedis = await enrich(harness, { ips: later });
    expect(fromRedis.stats.tiers.l1).toMatchObject({ hits: 10, misses: 0 });
    expect(upstreamCalls(harness)).toEqual(before);
  });

  it('bypasses both tiers with refresh: true', async () => {
    const ips = list('45.90.4', 3);
    await enrich(harness, { ips, sources: ['maxmind', 'cymru'] });
    const before = upstreamCalls(harness).cymru;
    const refreshed = await enrich(harness, { ips, sources: ['maxmind', 'cymru'], refresh: true });
    expect(refreshed.stats.tiers.l1).toMatchObject({ hits: 0, misses: 0 });
    expect(upstreamCalls(harness).cymru).toBe(before + 1);
  });

  it('exports tier and upstream counters at /metrics', async () => {
    const response = await harness.app.inject({ method: 'GET', url: '/metrics' });
    expect(response.headers['content-type']).toMatch(/^text\/plain/);
    expect(response.body).toMatch(/ipenrich_cache_lookups_total\{tier="l1",result="hit"\} \d+/);
    expect(response.body).toMatch(/ipenrich_upstream_lookups_total\{source="cymru",outcome="ok"\} \d+/);
    expect(response.body).toMatch(/ipenrich_cymru_bulk_queries_total \d+/);
    expect(response.body).toMatch(/ipenrich_cache_read_seconds_bucket/);
  });
});

describe('booting while Redis is down', () => {
  it('starts degraded, answers, and takes Redis into use once it appears', async () => {
    const redis = await startRedisServer();
    await redis.stop();
    const harness = await startHarness({ config: { REDIS_URL: redis.url } });
    try {
      const answer = await enrich(harness, { ips: ['45.94.1.1'], sources: ['maxmind', 'cymru'] });
      expect(answer.results[0]!.status).toBe('ok');
      const ready = () => harness.app.inject({ method: 'GET', url: '/readyz' }).then((r) => r.json<{ status: string }>().status);
      expect(await ready()).toBe('degraded');
      await redis.start();
      await expect.poll(ready, { timeout: 5000 }).toBe('ready');
    } finally {
      await harness.close();
      await redis.stop();
    }
  });
});

describe('per-source freshness', () => {
  let harness: Harness;
  const clock = new ManualClock(Date.parse('2026-11-22T00:00:00Z'));
  afterEach(async () => harness.close());

  it('fetches again only the source whose TTL ran out', async () => {
    harness = await startHarness({ overrides: { clock }, config: { TTL_GREYNOISE: '1d', TTL_DSHIELD: '2d', TTL_CYMRU: '7d' } });
    const ip = '45.91.1.1';
    const first = await enrich(harness, { ips: [ip] });
    expect(first.results[0]!.sources).toMatchObject({ cymru: { status: 'ok' }, greynoise: { status: 'not_found' } });
    let before = upstreamCalls(harness);

    await clock.advance(60_000);
    await enrich(harness, { ips: [ip] });
    expect(upstreamCalls(harness)).toEqual(before);

    await clock.advance(86_400_000);
    const afterDay = await enrich(harness, { ips: [ip] });
    expect(upstreamCalls(harness)).toEqual({ ...before, greynoise: before.greynoise + 1 });
    expect(Date.parse(afterDay.results[0]!.sources.greynoise.fetchedAt!)).toBe(clock.now());
    expect(Date.parse(afterDay.results[0]!.sources.cymru.fetchedAt!)).toBe(Date.parse('2026-11-22T00:00:00Z'));
    before = upstreamCalls(harness);

    await clock.advance(86_400_000);
    await enrich(harness, { ips: [ip] });
    expect(upstreamCalls(harness)).toEqual({ ...before, greynoise: before.greynoise + 1, dshield: before.dshield + 1 });
    before = upstreamCalls(harness);

    await clock.advance(6 * 86_400_000);
    await enrich(harness, { ips: [ip], sources: ['maxmind', 'cymru'] });
    expect(upstreamCalls(harness)).toEqual({ ...before, cymru: before.cymru + 1 });
  });

  it('counts lookups of cached addresses in the stored record without a write per request', async () => {
    harness = await startHarness();
    const ips = ['45.92.1.1', '45.92.1.2'];
    for (let i = 0; i < 3; i += 1) await enrich(harness, { ips: [...ips, ips[0]!] });
    await harness.restart();
    expect(await lookupCounts(harness, ips)).toEqual([
      { ip: '45.92.1.1', lookup_count: 3 },
      { ip: '45.92.1.2', lookup_count: 3 },
    ]);
  });

  it('counts lookups of addresses answered from the database, with nothing to fetch', async () => {
    harness = await startHarness();
    const ips = ['45.92.2.1', '45.92.2.2'];
    await enrich(harness, { ips });
    // A new instance has an empty in-process L1, so the next answers come from PostgreSQL.
    await harness.restart();
    const before = upstreamCalls(harness);
    const fromDatabase = await enrich(harness, { ips });
    expect(fromDatabase.stats.tiers.l2).toMatchObject({ hits: 2, misses: 0 });
    expect(upstreamCalls(harness)).toEqual(before);
    await harness.restart();
    expect(await lookupCounts(harness, ips)).toEqual([
      { ip: '45.92.2.1', lookup_count: 2 },
      { ip: '45.92.2.2', lookup_count: 2 },
    ]);
  });

  it('answers a cached IPv6 address without asking or counting GreyNoise, which covers IPv4 only', async () => {
    harness = await startHarness();
    const ip = '2a03:2880::7';
    const first = await enrich(harness, { ips: [ip] });
    expect(first.results[0]!.sources.greynoise).toMatchObject({ status: 'unsupported', error: expect.stringMatching(/IPv4 only/) });
    expect(first.stats.sources.greynoise.lookups).toBe(0);
    const before = upstreamCalls(harness);
    const again = await enrich(harness, { ips: [ip] });
    expect(again.stats.tiers.l1).toMatchObject({ hits: 1, misses: 0 });
    expect(again.stats.sources.greynoise.lookups).toBe(0);
    expect(again.results).toEqual(first.results);
    expect(upstreamCalls(harness)).toEqual(before);
  });

  it('re-reads MaxMind answers when a newer database replaces the file, without a restart', async () => {
    harness = await startHarness();
    const [before] = (await enrich(harness, { ips: ['81.2.69.160'], sources: ['maxmind'] })).results;
    expect(before!.asn).toMatchObject({ number: 20712 });
    const staging = join(harness.mmdbDir, 'GeoLite2-ASN.mmdb.tmp');
    await writeMmdb(staging, {
      databaseType: 'GeoLite2-ASN',
      buildEpoch: Date.parse('2026-11-20T00:00:00Z') / 1000,
      networks: [{ cidr: '81.2.0.0/16', data: { autonomous_system_number: 64512, autonomous_system_organization: 'Renumbered Ltd' } }],
    });
    await rename(staging, join(harness.mmdbDir, 'GeoLite2-ASN.mmdb'));
    await expect
      .poll(async () => (await enrich(harness, { ips: ['81.2.69.160'], sources: ['maxmind'] })).results[0]!.asn?.number, { timeout: 5000 })
      .toBe(64512);
    const [after] = (await enrich(harness, { ips: ['81.2.69.160'], sources: ['maxmind'] })).results;
    expect(after!.sources.maxmind.database).toMatch(/GeoLite2-ASN 2026-11-20/);
  });
});
