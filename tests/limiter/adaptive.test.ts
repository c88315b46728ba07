import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { systemClock, type Clock } from '../../src/clock.js';
import { ManualClock } from '../support/manual-clock.js';
import { AdaptiveLimiter, type LimiterOptions } from '../../src/limiter/adaptive.js';
import { capturingLogger } from '../doubles/logger.js';
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

/**
 * Redis times a shared budget by its own clock, which a test cannot move: Redis-backed tests run in real time
 * with short windows, and a moment that came back from Redis may be off by what a call took to reach it.
 */
const REDIS_SLACK_MS = 250;

/** Node may fire a timer up to a millisecond before Date.now() reaches the moment it was set for. */
const TIMER_SLACK_MS = 2;

/** The system's clock, off by `offsetMs`: a replica whose clock disagrees with the others'. */
const offsetClock = (offsetMs: number): Clock => ({ ...systemClock, now: () => Date.now() + offsetMs });

/**
 * The system's clock, counting the sleeps it was asked for, and never waking before the moment asked for:
 * a Node timer may fire before Date.now() has got there, and requests woken early for one moment do not
 * know they woke together.
 */
function countingClock(): Clock & { sleeps: number } {
  const clock = {
    ...systemClock,
    sleeps: 0,
    async sleep(ms: number, signal?: AbortSignal) {
      clock.sleeps += 1;
      const until = Date.now() + ms;
      for (let left = ms; left > 0; left = until - Date.now()) await systemClock.sleep(left, signal);
    },
  };
  return clock;
}

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
});

describe('AdaptiveLimiter (in-process) on a ManualClock', () => {
  const backend = 'in-process';

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

  it('refuses at once when the bucket cannot refill before the deadline, and says when it will', async () => {
    const clock = new ManualClock();
    const limiter = limiterFor(backend, { rate: 2, burst: 3, clock });
    const now = clock.now();
    const first = await Promise.all([1, 2, 3].map(() => limiter.acquire(now)));
    expect(first.every((a) => a.ok)).toBe(true);
    expect(await limiter.acquire(now + 499)).toEqual({ ok: false, retryAt: now + 500 });
  });
});

describe("AdaptiveLimiter (redis) on Redis's clock", () => {
  const backend = 'redis';

  /** Expects `moment` to be `expected` as seen by a call sent between `sentAfter` and `answeredBefore`. */
  function expectMoment(moment: number | undefined, expected: { sentAfter: number; answeredBefore: number; plus: number }) {
    expect(moment).toBeGreaterThanOrEqual(expected.sentAfter + expected.plus - REDIS_SLACK_MS);
    expect(moment).toBeLessThanOrEqual(expected.answeredBefore + expected.plus + REDIS_SLACK_MS);
  }

  it('lets nothing through inside a delta-seconds Retry-After window, and waits for its end within the deadline', async () => {
    const limiter = limiterFor(backend, { rate: 100, burst: 10 });
    const sentAfter = Date.now();
    const blockedUntil = (await limiter.report('limited', '0.3')) ?? 0;
    // The delay is added to Redis's now and taken off it again: exact, whatever the call took.
    expect(blockedUntil).toBeGreaterThanOrEqual(sentAfter + 300);
    expect(blockedUntil).toBeLessThanOrEqual(Date.now() + 300);
    expect(await limiter.acquire(blockedUntil - 1)).toEqual({ ok: false, retryAt: blockedUntil });
    const admission = await limiter.acquire(blockedUntil + 1_000);
    expect(admission.ok).toBe(true);
    expect(Date.now()).toBeGreaterThanOrEqual(blockedUntil - TIMER_SLACK_MS);
  });

  it('lets nothing through inside an HTTP-date Retry-After window, and waits for its end within the deadline', async () => {
    const limiter = limiterFor(backend, { rate: 100, burst: 10 });
    // The next whole second but one: an HTTP-date counts whole seconds.
    const until = Math.ceil(Date.now() / 1000) * 1000 + 1000;
    const blockedUntil = await limiter.report('unauthorized', new Date(until).toUTCString());
    expect(blockedUntil).toBe(until);
    expect(await limiter.acquire(until - 1)).toEqual({ ok: false, retryAt: until });
    const admission = await limiter.acquire(until + 1_000);
    expect(admission.ok).toBe(true);
    expect(Date.now()).toBeGreaterThanOrEqual(until - TIMER_SLACK_MS);
  });

  it('backs off 60 s, 120 s, 240 s … up to an hour without Retry-After, and starts over after a success', async () => {
    const redis = redisClient();
    const keyPrefix = uniquePrefix();
    const limiter = new AdaptiveLimiter({ name: 'upstream', rate: 1, burst: 1, redis, keyPrefix });
    const seconds: number[] = [];
    for (let failure = 0; failure < 9; failure += 1) {
      const now = Date.now();
      const blockedUntil = await limiter.report(failure % 2 === 0 ? 'limited' : 'unauthorized');
      seconds.push(Math.round(((blockedUntil ?? now) - now) / 1000));
      // Redis's clock cannot be moved on to the end of the block: the end is written into the key instead.
      await redis.hset(`${keyPrefix}upstream`, 'blockedUntil', 0);
    }
    expect(seconds).toEqual([60, 120, 240, 480, 960, 1920, 3600, 3600, 3600]);
    expect((await limiter.state()).consecutiveFailures).toBe(9);
    expect(await limiter.report('ok')).toBeUndefined();
    expect((await limiter.state()).consecutiveFailures).toBe(0);
    await redis.hset(`${keyPrefix}upstream`, 'blockedUntil', 0);
    const now = Date.now();
    expect(Math.round(((await limiter.report('limited', 'not a date')) ?? now) - now) / 1000).toBe(60);
  });

  it('counts the 429s of requests that were in flight together as one failure', async () => {
    const limiter = limiterFor(backend, { rate: 1, burst: 4 });
    const sentAfter = Date.now();
    await limiter.report('limited');
    await limiter.report('limited');
    await limiter.report('limited', '300');
    const state = await limiter.state();
    expect(state).toMatchObject({ consecutiveFailures: 1, inFlight: 0 });
    expectMoment(state.blockedUntil ?? undefined, { sentAfter, answeredBefore: Date.now(), plus: 300_000 });
    expect(await limiter.report('error')).toBeUndefined();
    expect((await limiter.state()).consecutiveFailures).toBe(1);
  });

  it('refuses at once when the bucket cannot refill before the deadline, and says when it will', async () => {
    const limiter = limiterFor(backend, { rate: 2, burst: 3 });
    const sentAfter = Date.now();
    const first = await Promise.all([1, 2, 3].map(() => limiter.acquire(Date.now() + 100)));
    expect(first.every((a) => a.ok)).toBe(true);
    const refused = await limiter.acquire(Date.now() + 100);
    expect(refused.ok).toBe(false);
    expectMoment(refused.ok ? undefined : refused.retryAt, { sentAfter, answeredBefore: Date.now(), plus: 500 });
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
  it.each([
    ['whose clocks agree', 0],
    ['whose clocks disagree by an hour', 3_600_000],
  ])("keeps two replicas %s within one budget, timed by Redis's clock", async (_, offsetMs) => {
    const rate = 50;
    const burst = 10;
    const keyPrefix = uniquePrefix();
    const clocks = [systemClock, offsetClock(offsetMs)];
    const replicas = clocks.map((clock) => new AdaptiveLimiter({ name: 'shared', rate, burst, clock, redis: redisClient(), keyPrefix }));
    const admitted = [0, 0];
    const started = Date.now();
    const stopAt = started + 1_000;
    // Four callers on each replica, each asking again once it has its answer, at twice the rate together.
    await Promise.all(
      replicas.flatMap((limiter, replica) =>
        Array.from({ length: 4 }, async () => {
          while (Date.now() < stopAt) {
            const admission = await limiter.acquire((clocks[replica] as Clock).now() + 50);
            if (!admission.ok) {
              await sleep(10);
              continue;
            }
            admitted[replica] = (admitted[replica] ?? 0) + 1;
            admission.release();
          }
        }),
      ),
    );
    const budget = burst + (rate * (Date.now() - started)) / 1000;
    const total = (admitted[0] ?? 0) + (admitted[1] ?? 0);
    // One request of slack: a moment Redis reserved may be seen a little early by a replica.
    expect(total).toBeLessThanOrEqual(budget + 1);
    expect(total).toBeGreaterThan(budget / 2);
    // Each replica gets more than a burst: neither finds the bucket an hour ahead of it (and is shut out
    // after the few requests it sent first) while the other gets a fresh one.
    for (const count of admitted) expect(count).toBeGreaterThan(burst);
  });

  it("shows a block reported by one replica to the other, on the other one's clock", async () => {
    const keyPrefix = uniquePrefix();
    const [first, second] = [0, 3_600_000].map(
      (offsetMs) => new AdaptiveLimiter({ name: 'shared', rate: 10, burst: 10, clock: offsetClock(offsetMs), redis: redisClient(), keyPrefix }),
    );
    if (!first || !second) throw new Error('two replicas');
    const blockedUntil = (await first.report('limited', '600')) ?? 0;
    const refused = await second.acquire(Date.now() + 3_600_000 + 60_000);
    expect(refused.ok).toBe(false);
    const seenUntil = refused.ok ? 0 : refused.retryAt;
    expect(Math.abs(seenUntil - (blockedUntil + 3_600_000))).toBeLessThanOrEqual(REDIS_SLACK_MS);
    expect(Math.abs(((await second.state()).blockedUntil ?? 0) - seenUntil)).toBeLessThanOrEqual(REDIS_SLACK_MS);
  });

  it('keeps to the rate across a Redis outage and its end, falling back to an in-process budget and saying so once', async () => {
    const rate = 10;
    const burst = 5;
    const redis = redisClient();
    const { logger, lines } = capturingLogger();
    const limiter = new AdaptiveLimiter({ name: 'fallback', rate, burst, redis, keyPrefix: uniquePrefix(), logger });
    const admitted: number[] = [];
    const take = async () => {
      // A few milliseconds of deadline: the moment the limiter reserves may lie just past the one asked at.
      const admission = await limiter.acquire(Date.now() + 5);
      if (!admission.ok) return;
      admission.release();
      admitted.push(Date.now());
    };
    const run = async (ms: number) => {
      const stopAt = Date.now() + ms;
      while (Date.now() < stopAt) {
        await Promise.all([take(), take()]);
        await sleep(25);
      }
    };
    const started = Date.now();
    await run(300);
    redis.disconnect();
    await run(1_000);
    await redis.connect();
    await run(1_000);
    const elapsed = (Date.now() - started) / 1000;
    // One window over all three stretches: neither store may start with a bucket the other had emptied. One
    // request of slack, as admissions are timed when they are seen, a little after they were let go.
    expect(worstExcess(admitted, rate, burst)).toBeLessThanOrEqual(1);
    expect(admitted.length).toBeGreaterThan(0.7 * rate * elapsed);
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
    const keyPrefix = uniquePrefix();
    const [first, second] = [redisClient(server.url), redisClient(server.url)].map(
      (redis) => new AdaptiveLimiter({ name: 'shared', rate: 10, burst: 10, redis, keyPrefix }),
    );
    if (!first || !second) throw new Error('two replicas');
    const before = await scripts();
    for (let request = 0; request < 5; request += 1) {
      const admission = await first.acquire(Date.now() + 100);
      if (admission.ok) admission.release();
      await first.report('ok');
    }
    // Five reservations and nothing else.
    expect((await scripts()) - before).toBe(5);

    const blockedUntil = (await first.report('limited', '0.05')) ?? 0;
    // Well after the block, so that the reservation needs no wait (and no question about the block after it).
    await sleep(blockedUntil + REDIS_SLACK_MS - Date.now());
    const admission = await second.acquire(Date.now() + 100);
    expect(admission.ok).toBe(true);
    await second.report('ok');
    // The 429, the second replica's reservation, and its success that reset the count.
    expect((await scripts()) - before).toBe(8);
    await second.report('ok');
    expect((await scripts()) - before).toBe(8);
    expect((await first.state()).consecutiveFailures).toBe(0);
  });

  it('reserves the moments of requests that come together in one call, and keeps two replicas within one budget', async () => {
    const rate = 40;
    const burst = 5;
    // Still within a step, so that a request asks for a moment that is now for the limiter too, and never
    // waits (a wait would add a question about the block).
    let stepAt = Date.now();
    const clock: Clock = { ...systemClock, now: () => stepAt };
    const keyPrefix = uniquePrefix();
    const replicas = [redisClient(server.url), redisClient(server.url)].map(
      (redis) => new AdaptiveLimiter({ name: 'together', rate, burst, maxInFlight: 10, clock, redis, keyPrefix }),
    );
    const before = await scripts();
    let admitted = 0;
    const steps = 40;
    const started = Date.now();
    for (let step = 0; step < steps; step += 1) {
      stepAt = Date.now();
      const admissions = await Promise.all(
        replicas.flatMap((limiter) => Array.from({ length: 10 }, () => limiter.acquire(stepAt))),
      );
      for (const admission of admissions) {
        if (!admission.ok) continue;
        admitted += 1;
        admission.release();
      }
      await sleep(25);
    }
    const budget = burst + (rate * (Date.now() - started)) / 1000;
    expect(admitted).toBeLessThanOrEqual(budget + 1);
    expect(admitted).toBeGreaterThan(budget / 2);
    // Twenty requests a step: on each replica the first goes alone and the other nine together after it.
    expect((await scripts()) - before).toBe(4 * steps);
  });

  it('asks Redis for the block once for the requests that wake together, not once each', async () => {
    const clock = countingClock();
    // Sixteen requests a millisecond: the requests that wait for the same whole millisecond wake together.
    const limiter = new AdaptiveLimiter({
      name: 'wake',
      rate: 16_000,
      burst: 17,
      maxInFlight: 200,
      clock,
      redis: redisClient(server.url),
      keyPrefix: uniquePrefix(),
    });
    const alone = await limiter.acquire(Date.now() + 1_000);
    if (alone.ok) alone.release();
    const before = await scripts();
    const admissions = await Promise.all(Array.from({ length: 200 }, () => limiter.acquire(Date.now() + 1_000)));
    expect(admissions.every((a) => a.ok)).toBe(true);
    // Two reservations (the first request alone, the rest together after it); every other call asked for the
    // block, after a wait.
    const asked = (await scripts()) - before - 2;
    expect(clock.sleeps).toBeGreaterThanOrEqual(64);
    // At most one question per millisecond woken at: sixteen requests a millisecond, and the first and the
    // last millisecond partly.
    expect(asked).toBeGreaterThan(0);
    expect(asked).toBeLessThanOrEqual(Math.ceil(clock.sleeps / 16) + 2);
  });

  it('holds a request whose moment comes after another replica reported a 429, until the block ends', async () => {
    const clock = countingClock();
    const keyPrefix = uniquePrefix();
    const first = new AdaptiveLimiter({ name: 'shared', rate: 2, burst: 1, redis: redisClient(server.url), keyPrefix });
    const second = new AdaptiveLimiter({ name: 'shared', rate: 2, burst: 1, clock, redis: redisClient(server.url), keyPrefix });
    const early = await second.acquire(Date.now() + 100);
    if (early.ok) early.release();
    let admittedAt: number | undefined;
    const waiting = second.acquire(Date.now() + 10_000).then((admission) => {
      admittedAt = Date.now();
      return admission;
    });
    // Its moment is half a second away; the 429 comes while it waits for it.
    await vi.waitFor(() => expect(clock.sleeps).toBe(1), { timeout: 5_000, interval: 1 });
    const blockedUntil = (await first.report('limited', '1')) ?? 0;
    expect((await waiting).ok).toBe(true);
    expect(admittedAt).toBeGreaterThanOrEqual(blockedUntil - REDIS_SLACK_MS);
    expect(admittedAt).toBeGreaterThan(Date.now() - 10_000);
  });
});
