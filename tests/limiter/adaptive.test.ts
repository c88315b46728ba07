import { randomUUID } from 'node:crypto';
import type { FastifyBaseLogger } from 'fastify';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock.js';
import { AdaptiveLimiter, type LimiterOptions } from '../../src/limiter/adaptive.js';
import { startRedisServer, type RedisServer } from '../support/redis-server.js';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

const clients: Redis[] = [];
const prefixes: string[] = [];

function redisClient(url = REDIS_URL): Redis {
  const client = new Redis(url);
  clients.push(client);
  return client;
}

function uniquePrefix(): string {
  const prefix = `test:limiter:${randomUUID()}:`;
  prefixes.push(prefix);
  return prefix;
}

afterAll(async () => {
  const cleaner = new Redis(REDIS_URL);
  for (const prefix of prefixes) {
    const keys = await cleaner.keys(`${prefix}*`);
    if (keys.length > 0) await cleaner.del(...keys);
  }
  await cleaner.quit();
  for (const client of clients) if (client.status === 'ready') await client.quit();
});

function capturingLogger(): { logger: FastifyBaseLogger; lines: Array<{ level: number; msg: string }> } {
  const lines: Array<{ level: number; msg: string }> = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => lines.push(JSON.parse(line) as never) });
  return { logger, lines };
}

/**
 * The largest amount by which any window [t_i, t_j] of the sorted admission times holds more than
 * burst + rate × (t_j − t_i) admissions (≤ 0 when the budget held everywhere). With f(k) = k − rate·t_k, the
 * window i..j holds j − i + 1 admissions, so the worst window ending at j starts at the i ≤ j minimising f(i).
 */
function worstExcess(times: number[], rate: number, burst: number): number {
  let minF = Infinity;
  let worst = -Infinity;
  times.forEach((t, k) => {
    const f = k - (rate * t) / 1000;
    minF = Math.min(minF, f);
    worst = Math.max(worst, f - minF + 1 - burst);
  });
  return worst;
}

/** Deterministic pseudo-random numbers in [0, 1), so a failing run can be repeated. */
function seededRandom(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state * 1_103_515_245 + 12_345) % 2 ** 31;
    return state / 2 ** 31;
  };
}

const turn = () => new Promise((resolve) => setImmediate(resolve));

type Backend = 'in-process' | 'redis';
const backends: Backend[] = ['in-process', 'redis'];

function limiterFor(backend: Backend, options: Omit<LimiterOptions, 'name'>): AdaptiveLimiter {
  return new AdaptiveLimiter({
    name: 'upstream',
    ...options,
    ...(backend === 'redis' ? { redis: redisClient(), keyPrefix: uniquePrefix() } : {}),
  });
}

describe.each(backends)('AdaptiveLimiter (%s)', (backend) => {
  it('lets nothing through inside a delta-seconds Retry-After window', async () => {
    const clock = new ManualClock();
    const limiter = limiterFor(backend, { rate: 100, burst: 10, clock });
    const start = clock.now();
    expect(await limiter.report('limited', '120')).toBe(start + 120_000);
    const refused = await limiter.acquire(start + 60_000);
    expect(refused).toEqual({ ok: false, retryAt: start + 120_000 });
    await clock.advance(119_999);
    expect((await limiter.acquire(clock.now())).ok).toBe(false);
    await clock.advance(1);
    expect((await limiter.acquire(clock.now())).ok).toBe(true);
  });

  it('lets nothing through inside an HTTP-date Retry-After window, and waits for its end within the deadline', async () => {
    const clock = new ManualClock(Date.UTC(2026, 0, 1, 12, 0, 0));
    const limiter = limiterFor(backend, { rate: 100, burst: 10, clock });
    const blockedUntil = await limiter.report('unauthorized', 'Thu, 01 Jan 2026 12:05:00 GMT');
    expect(blockedUntil).toBe(Date.UTC(2026, 0, 1, 12, 5, 0));
    expect(await limiter.acquire(Date.UTC(2026, 0, 1, 12, 4, 59))).toEqual({ ok: false, retryAt: blockedUntil });
    let admittedAt: number | undefined;
    const waiting = limiter.acquire(Date.UTC(2026, 0, 1, 12, 10, 0)).then((admission) => {
      admittedAt = clock.now();
      return admission;
    });
    while (clock.sleeping === 0) await turn();
    await clock.advance(299_999);
    expect(admittedAt).toBeUndefined();
    await clock.advance(1);
    expect((await waiting).ok).toBe(true);
    expect(admittedAt).toBe(blockedUntil);
  });

  it('backs off 60 s, 120 s, 240 s … up to an hour without Retry-After, and starts over after a success', async () => {
    const clock = new ManualClock();
    const limiter = limiterFor(backend, { rate: 1, burst: 1, clock });
    const delays: number[] = [];
    for (let failure = 0; failure < 9; failure += 1) {
      const now = clock.now();
      const blockedUntil = await limiter.report(failure % 2 === 0 ? 'limited' : 'unauthorized');
      delays.push((blockedUntil ?? now) - now);
      await clock.advance(delays.at(-1) ?? 0);
    }
    expect(delays).toEqual([60, 120, 240, 480, 960, 1920, 3600, 3600, 3600].map((s) => s * 1000));
    expect((await limiter.state()).consecutiveFailures).toBe(9);
    expect(await limiter.report('ok')).toBeUndefined();
    expect((await limiter.state()).consecutiveFailures).toBe(0);
    const now = clock.now();
    expect(await limiter.report('limited', 'not a date')).toBe(now + 60_000);
  });

  it('counts the 429s of requests that were in flight together as one failure', async () => {
    const clock = new ManualClock();
    const limiter = limiterFor(backend, { rate: 1, burst: 4, clock });
    const now = clock.now();
    await limiter.report('limited');
    await limiter.report('limited');
    await limiter.report('limited', '300');
    expect(await limiter.state()).toEqual({ blockedUntil: now + 300_000, consecutiveFailures: 1, inFlight: 0 });
    expect(await limiter.report('error')).toBeUndefined();
    expect((await limiter.state()).consecutiveFailures).toBe(1);
  });

  it('answers at once, long before the deadline, while the upstream is blocked for an hour', async () => {
    const limiter = limiterFor(backend, { rate: 10, burst: 5 });
    const blockedUntil = await limiter.report('limited', '3600');
    const started = Date.now();
    const admissions = await Promise.all(
      Array.from({ length: 200 }, () => limiter.acquire(Date.now() + 10_000)),
    );
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(admissions.every((a) => !a.ok && a.retryAt === blockedUntil)).toBe(true);
    expect(limiter.stats()).toEqual({ admitted: 0, limited: 200 });
  });

  it('refuses at once when the bucket cannot refill before the deadline, and says when it will', async () => {
    const clock = new ManualClock();
    const limiter = limiterFor(backend, { rate: 2, burst: 3, clock });
    const now = clock.now();
    const first = await Promise.all([1, 2, 3].map(() => limiter.acquire(now)));
    expect(first.every((a) => a.ok)).toBe(true);
    expect(await limiter.acquire(now + 499)).toEqual({ ok: false, retryAt: now + 500 });
  });
});

describe('AdaptiveLimiter over a long simulated run', () => {
  it('never admits more than burst + rate × T in any window of 10,000 attempts over 1,000 s', async () => {
    const rate = 5;
    const burst = 10;
    const maxInFlight = 4;
    const clock = new ManualClock();
    const limiter = new AdaptiveLimiter({ name: 'long-run', rate, burst, maxInFlight, clock });
    const random = seededRandom(42);
    const admittedAt: number[] = [];
    let inFlight = 0;
    let mostInFlight = 0;
    const attempts: Array<Promise<void>> = [];
    for (let attempt = 0; attempt < 10_000; attempt += 1) {
      const deadline = clock.now() + Math.floor(random() * 3_000);
      const holdFor = Math.floor(random() * 400);
      attempts.push(
        limiter.acquire(deadline).then((admission) => {
          if (!admission.ok) {
            expect(admission.retryAt).toBeGreaterThan(deadline);
            return;
          }
          expect(clock.now()).toBeLessThanOrEqual(deadline);
          admittedAt.push(clock.now());
          inFlight += 1;
          mostInFlight = Math.max(mostInFlight, inFlight);
          void clock.sleep(holdFor).then(() => {
            inFlight -= 1;
            admission.release();
          });
        }),
      );
      await turn();
      await clock.advance(100);
    }
    await clock.advance(10_000);
    await Promise.all(attempts);

    expect(worstExcess(admittedAt, rate, burst)).toBeLessThanOrEqual(1e-9);
    expect(mostInFlight).toBeLessThanOrEqual(maxInFlight);
    // The budget is used, not just respected: attempts come at twice the rate.
    expect(admittedAt.length).toBeGreaterThan(0.95 * rate * 1_000);
    expect(limiter.stats()).toEqual({ admitted: admittedAt.length, limited: 10_000 - admittedAt.length });
  });

  it('has a window check that flags twice the rate and passes the rate itself', () => {
    const times = Array.from({ length: 100 }, (_, k) => k * 100);
    expect(worstExcess(times, 5, 10)).toBeGreaterThan(0);
    expect(worstExcess(times, 10, 1)).toBeLessThanOrEqual(1e-9);
  });
});

describe('AdaptiveLimiter in-flight cap', () => {
  it('holds a request until a slot is released, and gives up at its deadline', async () => {
    const clock = new ManualClock();
    const limiter = new AdaptiveLimiter({ name: 'slots', rate: 1_000, burst: 100, maxInFlight: 2, clock });
    const now = clock.now();
    const [a, b] = await Promise.all([limiter.acquire(now + 1_000), limiter.acquire(now + 1_000)]);
    expect(a?.ok && b?.ok).toBe(true);
    let third: boolean | undefined;
    const waiting = limiter.acquire(now + 1_000).then((admission) => (third = admission.ok));
    await turn();
    expect(third).toBeUndefined();
    expect((await limiter.state()).inFlight).toBe(2);
    if (a?.ok) a.release();
    await waiting;
    expect(third).toBe(true);

    const late = limiter.acquire(now + 100);
    await clock.advance(100);
    expect((await late).ok).toBe(false);
    expect((await limiter.state()).inFlight).toBe(2);
  });

  it('gives the slot back when the caller aborts the wait', async () => {
    const clock = new ManualClock();
    const limiter = new AdaptiveLimiter({ name: 'abort', rate: 1, burst: 1, maxInFlight: 1, clock });
    const now = clock.now();
    const first = await limiter.acquire(now);
    if (!first.ok) throw new Error('the first request should pass');
    first.release();
    const controller = new AbortController();
    const waiting = limiter.acquire(now + 5_000, controller.signal);
    while (clock.sleeping === 0) await turn();
    controller.abort(new Error('client went away'));
    await expect(waiting).rejects.toThrow('client went away');
    expect((await limiter.state()).inFlight).toBe(0);
  });
});

describe('AdaptiveLimiter on a shared Redis', () => {
  it('keeps two instances with their own Redis clients within one budget', async () => {
    const rate = 2;
    const burst = 4;
    const clock = new ManualClock();
    const keyPrefix = uniquePrefix();
    const replicas = [redisClient(), redisClient()].map(
      (redis) => new AdaptiveLimiter({ name: 'shared', rate, burst, clock, redis, keyPrefix }),
    );
    const admittedAt: number[] = [];
    for (let step = 0; step < 2_000; step += 1) {
      const now = clock.now();
      const admissions = await Promise.all(replicas.flatMap((limiter) => [limiter.acquire(now), limiter.acquire(now)]));
      for (const admission of admissions) {
        if (!admission.ok) continue;
        admittedAt.push(now);
        admission.release();
      }
      await clock.advance(250);
    }
    const elapsed = 2_000 * 250;
    expect(admittedAt.length).toBeLessThanOrEqual(burst + (rate * elapsed) / 1000);
    expect(admittedAt.length).toBeGreaterThan(0.95 * ((rate * elapsed) / 1000));
    expect(worstExcess(admittedAt, rate, burst)).toBeLessThanOrEqual(1e-9);
    expect(replicas.every((limiter) => limiter.stats().admitted > 0)).toBe(true);
  });

  it('shows a block reported by one replica to the other', async () => {
    const clock = new ManualClock();
    const keyPrefix = uniquePrefix();
    const [first, second] = [redisClient(), redisClient()].map(
      (redis) => new AdaptiveLimiter({ name: 'shared', rate: 10, burst: 10, clock, redis, keyPrefix }),
    );
    const blockedUntil = await first?.report('limited', '600');
    expect(await second?.acquire(clock.now() + 60_000)).toEqual({ ok: false, retryAt: blockedUntil });
    expect((await second?.state())?.blockedUntil).toBe(blockedUntil);
  });

  it('keeps to the rate across a Redis outage and its end, falling back to an in-process budget and saying so once', async () => {
    const clock = new ManualClock();
    const redis = redisClient();
    const { logger, lines } = capturingLogger();
    const limiter = new AdaptiveLimiter({ name: 'fallback', rate: 1, burst: 2, clock, redis, keyPrefix: uniquePrefix(), logger });
    const admitted: number[] = [];
    const take = async () => {
      const admission = await limiter.acquire(clock.now());
      if (!admission.ok) return false;
      admission.release();
      admitted.push(clock.now());
      return true;
    };
    const run = async (steps: number) => {
      for (let step = 0; step < steps; step += 1) {
        await take();
        await take();
        await clock.advance(500);
      }
    };
    expect([await take(), await take(), await take()]).toEqual([true, true, false]);
    await run(10);
    redis.disconnect();
    await run(100);
    await redis.connect();
    await run(100);
    // One window over all three stretches: neither store may start with a bucket the other had emptied.
    expect(worstExcess(admitted, 1, 2)).toBeLessThanOrEqual(1e-9);
    expect(admitted.length).toBeGreaterThanOrEqual(0.95 * 105);
    expect(lines.filter((line) => line.msg.startsWith('Redis failed'))).toHaveLength(1);
    expect(lines.filter((line) => line.msg.startsWith('Redis is back'))).toHaveLength(1);
  });

  it('falls back when Redis cannot be reached at all', async () => {
    const unreachable = new Redis({ host: '127.0.0.1', port: 1, lazyConnect: true, enableOfflineQueue: false, retryStrategy: () => null });
    unreachable.on('error', () => undefined);
    const clock = new ManualClock();
    const limiter = new AdaptiveLimiter({ name: 'down', rate: 1, burst: 2, clock, redis: unreachable });
    const now = clock.now();
    const admissions = await Promise.all([1, 2, 3].map(() => limiter.acquire(now)));
    expect(admissions.filter((a) => a.ok)).toHaveLength(2);
    expect(await limiter.report('limited', '30')).toBe(now + 30_000);
  });
});

describe('AdaptiveLimiter calls to Redis', () => {
  // A server of this file's own, so that its command counts are this test's alone.
  let server: RedisServer;
  beforeAll(async () => {
    server = await startRedisServer();
  });
  afterAll(async () => server.stop());

  /** Calls of a command that ran: an EVALSHA the server did not know the script of is counted as failed. */
  async function calls(command: string): Promise<number> {
    const info = await redisClient(server.url).info('commandstats');
    const stats = new RegExp(`cmdstat_${command}:calls=(\\d+),.*rejected_calls=(\\d+),failed_calls=(\\d+)`).exec(info);
    return stats ? Number(stats[1]) - Number(stats[2]) - Number(stats[3]) : 0;
  }
  const scripts = async () => (await calls('evalsha')) + (await calls('eval'));

  it('reports a success only when there is a failure count to reset, and resets one that another replica left', async () => {
    const clock = new ManualClock();
    const keyPrefix = uniquePrefix();
    const [first, second] = [redisClient(server.url), redisClient(server.url)].map(
      (redis) => new AdaptiveLimiter({ name: 'shared', rate: 10, burst: 10, clock, redis, keyPrefix }),
    );
    if (!first || !second) throw new Error('two replicas');
    const before = await scripts();
    for (let request = 0; request < 5; request += 1) {
      const admission = await first.acquire(clock.now());
      if (admission.ok) admission.release();
      await first.report('ok');
    }
    // Five reservations and nothing else.
    expect((await scripts()) - before).toBe(5);

    await first.report('limited', '1');
    await clock.advance(1_000);
    const admission = await second.acquire(clock.now());
    expect(admission.ok).toBe(true);
    await second.report('ok');
    expect((await first.state()).consecutiveFailures).toBe(0);
    // The 429, the second replica's reservation, and its success that reset the count.
    expect((await scripts()) - before).toBe(8);
    await second.report('ok');
    expect((await scripts()) - before).toBe(8);
  });

  it('reserves the moments of requests that come together in one call, and keeps two replicas within one budget', async () => {
    const rate = 20;
    const burst = 5;
    const clock = new ManualClock();
    const keyPrefix = uniquePrefix();
    const replicas = [redisClient(server.url), redisClient(server.url)].map(
      (redis) => new AdaptiveLimiter({ name: 'together', rate, burst, maxInFlight: 10, clock, redis, keyPrefix }),
    );
    const before = await scripts();
    const admittedAt: number[] = [];
    const steps = 200;
    for (let step = 0; step < steps; step += 1) {
      const now = clock.now();
      const admissions = await Promise.all(
        replicas.flatMap((limiter) => Array.from({ length: 10 }, () => limiter.acquire(now))),
      );
      for (const admission of admissions) {
        if (!admission.ok) continue;
        admittedAt.push(now);
        admission.release();
      }
      await clock.advance(250);
    }
    const elapsed = steps * 250;
    expect(worstExcess(admittedAt, rate, burst)).toBeLessThanOrEqual(1e-9);
    expect(admittedAt.length).toBeGreaterThan(0.95 * ((rate * elapsed) / 1000));
    // Twenty requests a step: on each replica the first goes alone and the other nine together after it.
    expect((await scripts()) - before).toBeLessThanOrEqual(4 * steps);
  });

  it('asks Redis for the block once for the requests that wake together, not once each', async () => {
    const clock = new ManualClock();
    // Sixteen requests a millisecond (exact in binary): seventeen go at once, the next sixteen are all due
    // one millisecond later.
    const limiter = new AdaptiveLimiter({
      name: 'wake',
      rate: 16_000,
      burst: 17,
      maxInFlight: 33,
      clock,
      redis: redisClient(server.url),
      keyPrefix: uniquePrefix(),
    });
    const start = clock.now();
    const before = await calls('hget');
    const admissions = Array.from({ length: 33 }, () => limiter.acquire(start + 1_000));
    while (clock.sleeping < 16) await turn();
    await clock.advance(1);
    expect((await Promise.all(admissions)).every((a) => a.ok)).toBe(true);
    expect((await calls('hget')) - before).toBe(1);
  });

  it('holds a request whose moment comes after another replica reported a 429, until the block ends', async () => {
    const clock = new ManualClock();
    const keyPrefix = uniquePrefix();
    const [first, second] = [redisClient(server.url), redisClient(server.url)].map(
      (redis) => new AdaptiveLimiter({ name: 'shared', rate: 1, burst: 1, clock, redis, keyPrefix }),
    );
    if (!first || !second) throw new Error('two replicas');
    const start = clock.now();
    const early = await second.acquire(start);
    if (early.ok) early.release();
    let admittedAt: number | undefined;
    const waiting = second.acquire(start + 10_000).then((admission) => {
      admittedAt = clock.now();
      return admission;
    });
    while (clock.sleeping === 0) await turn();
    await clock.advance(500);
    expect(await first.report('limited', '5')).toBe(start + 5_500);
    await clock.advance(500);
    while (clock.sleeping === 0) await turn();
    await clock.advance(4_499);
    expect(admittedAt).toBeUndefined();
    await clock.advance(1);
    expect((await waiting).ok).toBe(true);
    expect(admittedAt).toBe(start + 5_500);
  });
});
