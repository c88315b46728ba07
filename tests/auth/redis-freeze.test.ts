import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Readiness } from '../../src/schemas/readiness.js';
import { startHarness, type Harness } from '../support/app.js';
import { startRedisServer, type RedisServer } from '../support/redis-server.js';

async function readiness(harness: Harness): Promise<Readiness> {
  return (await harness.app.inject({ method: 'GET', url: '/readyz' })).json<Readiness>();
}

async function until(check: () => Promise<boolean>, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`not within ${ms} ms`);
}

describe('a Redis that stops answering (SIGSTOP) without closing its connections', () => {
  let redis: RedisServer;
  let harness: Harness;
  beforeAll(async () => {
    redis = await startRedisServer();
    harness = await startHarness({ config: { REDIS_URL: redis.url } });
  });
  afterAll(async () => {
    redis.resume();
    await harness.close();
    await redis.stop();
  });

  it('makes /readyz degraded, and ready again once Redis answers (SIGCONT)', async () => {
    expect(await readiness(harness)).toMatchObject({ status: 'ready', redis: { status: 'ok' } });
    redis.pause();
    await until(async () => (await readiness(harness)).status === 'degraded', 5000);
    expect(await readiness(harness)).toMatchObject({ redis: { status: 'unreachable' } });
    // Requests are still answered, without waiting on the frozen server.
    const started = performance.now();
    expect((await harness.app.inject({ method: 'GET', url: '/ip/10.0.0.1' })).statusCode).toBe(200);
    expect(performance.now() - started).toBeLessThan(1000);
    redis.resume();
    await until(async () => (await readiness(harness)).status === 'ready', 10_000);
  });
});
