import type { FastifyBaseLogger } from 'fastify';
import type { Redis } from 'ioredis';
import { systemClock, type Clock } from '../clock.js';
import { MemoryBucketStore } from './memory-store.js';
import { RedisBucketStore } from './redis-store.js';
import { parseRetryAfter } from './retry-after.js';
import { bucketPolicy, type BucketStore } from './token-bucket.js';

export interface LimiterOptions {
  name: string;
  rate: number;
  burst: number;
  maxInFlight?: number;
  clock?: Clock;
  redis?: Redis;
  keyPrefix?: string;
  logger?: FastifyBaseLogger;
}

export type Admission = { ok: true; release(): void } | { ok: false; retryAt: number };

const DEFAULT_MAX_IN_FLIGHT = 4;
const DEFAULT_KEY_PREFIX = 'ip-enrich:limiter:';
/**
 * A Redis call that has not answered by then counts as failed. Real time, not the Clock: it bounds I/O,
 * which simulated time does not move.
 */
const REDIS_TIMEOUT_MS = 1_000;
/**
 * ioredis queues commands while it reconnects, which can take far longer than a request may wait; in these
 * states the in-process budget answers without asking Redis.
 */
const REDIS_DOWN = new Set(['reconnecting', 'close', 'end']);

/** FIFO in-flight slots; a waiter gives up at its deadline. */
class Slots {
  #free: number;
  #waiters: Array<() => void> = [];
  readonly #size: number;

  constructor(size: number) {
    this.#size = size;
    this.#free = size;
  }

  get inUse(): number {
    return this.#size - this.#free;
  }

  /** Resolves true with a slot taken, or false when the deadline came first. */
  take(deadline: number, clock: Clock, signal?: AbortSignal): Promise<boolean> {
    if (this.#free > 0) {
      this.#free -= 1;
      return Promise.resolve(true);
    }
    const wait = deadline - clock.now();
    if (wait <= 0) return Promise.resolve(false);
    return new Promise((resolve, reject) => {
      const timer = new AbortController();
      const grant = () => {
        timer.abort();
        resolve(true);
      };
      this.#waiters.push(grant);
      clock.sleep(wait, signal ? AbortSignal.any([signal, timer.signal]) : timer.signal).then(
        () => {
          this.#forget(grant);
          resolve(false);
        },
        (error: Error) => {
          if (timer.signal.aborted) return;
          this.#forget(grant);
          reject(error);
        },
      );
    });
  }

  release(): void {
    const next = this.#waiters.shift();
    if (next) next();
    else this.#free += 1;
  }

  #forget(waiter: () => void): void {
    const index = this.#waiters.indexOf(waiter);
    if (index !== -1) this.#waiters.splice(index, 1);
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer from Redis within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * The budget of one upstream, shared by every request of the process (and, with Redis, by every replica):
 * a token bucket for the sustained rate, a cap on requests in flight, and a block after 429/401 that honours
 * Retry-After or else backs off exponentially.
 */
export class AdaptiveLimiter {
  readonly #name: string;
  readonly #clock: Clock;
  readonly #logger: FastifyBaseLogger | undefined;
  readonly #slots: Slots;
  readonly #memory: MemoryBucketStore;
  readonly #shared: { redis: Redis; store: RedisBucketStore } | undefined;
  /** A Redis outage is logged when it begins and when it ends, not on every call. */
  #redisDown = false;
  /** The latest block this process knows of; a floor for every reservation, whichever store answers. */
  #blockedUntil = 0;
  /** The latest moment a reservation was made or refused for: a fair guess of when the budget frees up. */
  #horizon = 0;
  #admitted = 0;
  #limited = 0;

  constructor(options: LimiterOptions) {
    if (!(options.rate > 0)) throw new RangeError(`limiter ${options.name}: rate must be > 0`);
    if (!(options.burst >= 1)) throw new RangeError(`limiter ${options.name}: burst must be >= 1`);
    this.#name = options.name;
    this.#clock = options.clock ?? systemClock;
    this.#logger = options.logger;
    this.#slots = new Slots(Math.max(1, options.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT));
    const policy = bucketPolicy(options.rate, options.burst);
    this.#memory = new MemoryBucketStore(policy);
    if (options.redis) {
      const key = `${options.keyPrefix ?? DEFAULT_KEY_PREFIX}${options.name}`;
      this.#shared = { redis: options.redis, store: new RedisBucketStore(options.redis, key, policy) };
    }
  }

  /** Waits for a token (and an in-flight slot) until `deadline` (epoch ms). If the wait would end after the
   *  deadline (bucket empty, or blocked until later), resolves at once with {ok:false, retryAt} — never hangs
   *  past the deadline. `signal` aborts the wait. */
  async acquire(deadline: number, signal?: AbortSignal): Promise<Admission> {
    signal?.throwIfAborted();
    if (this.#blockedUntil > deadline) return this.#refuse(this.#blockedUntil);
    // The slot comes first: a token taken while waiting for a slot would be spent late, and late requests
    // bunch up beyond the rate.
    if (!(await this.#slots.take(deadline, this.#clock, signal))) {
      return this.#refuse(Math.max(this.#clock.now(), this.#horizon, this.#blockedUntil));
    }
    try {
      for (;;) {
        const now = this.#clock.now();
        const reservation = await this.#withStore((store) => store.reserve(now, deadline, this.#blockedUntil));
        this.#horizon = Math.max(this.#horizon, reservation.at);
        if (!reservation.granted) {
          this.#slots.release();
          return this.#refuse(reservation.at);
        }
        if (reservation.at <= now) break;
        await this.#clock.sleep(reservation.at - now, signal);
        // A 429 may have come back (here or on another replica) while this request slept; its reservation
        // predates the block and must not be used.
        const blockedUntil = await this.#withStore((store) => store.blockedUntil());
        this.#blockedUntil = Math.max(this.#blockedUntil, blockedUntil);
        if (this.#blockedUntil <= this.#clock.now()) break;
      }
    } catch (error) {
      this.#slots.release();
      throw error;
    }
    this.#admitted += 1;
    let released = false;
    return {
      ok: true,
      release: () => {
        if (released) return;
        released = true;
        this.#slots.release();
      },
    };
  }

  /** Report the upstream's answer: 'ok' resets backoff; 'limited' (429) / 'unauthorized' (401) with the
   *  Retry-After header value blocks the upstream. Returns the blocked-until epoch ms if blocked. */
  async report(
    outcome: 'ok' | 'limited' | 'unauthorized' | 'error',
    retryAfter?: string | string[],
  ): Promise<number | undefined> {
    // A 5xx or a timeout says nothing about our budget: it neither blocks nor ends a run of 429s.
    if (outcome === 'error') return undefined;
    if (outcome === 'ok') {
      await this.#withStore((store) => store.succeed());
      return undefined;
    }
    const now = this.#clock.now();
    const delay = parseRetryAfter(retryAfter, now);
    const blockedUntil = await this.#withStore((store) => store.fail(now, delay));
    this.#blockedUntil = Math.max(this.#blockedUntil, blockedUntil);
    this.#logger?.warn(
      { limiter: this.#name, outcome, retryAfter, blockedUntil: new Date(blockedUntil).toISOString() },
      'upstream refused a request; holding every request to it until the block ends',
    );
    return blockedUntil > now ? blockedUntil : undefined;
  }

  async state(): Promise<{ blockedUntil: number | null; consecutiveFailures: number; inFlight: number }> {
    const state = await this.#withStore((store) => store.state());
    const blockedUntil = Math.max(state.blockedUntil, this.#blockedUntil);
    return {
      blockedUntil: blockedUntil > this.#clock.now() ? blockedUntil : null,
      consecutiveFailures: state.consecutiveFailures,
      inFlight: this.#slots.inUse,
    };
  }

  stats(): { admitted: number; limited: number } {
    return { admitted: this.#admitted, limited: this.#limited };
  }

  #refuse(retryAt: number): Admission {
    this.#limited += 1;
    return { ok: false, retryAt };
  }

  /**
   * Runs on the shared Redis store, or on this process's own when Redis is absent or failing: a lost Redis
   * then costs the shared budget (each replica keeps its own), never the limit itself.
   */
  async #withStore<T>(operation: (store: BucketStore) => Promise<T>): Promise<T> {
    if (!this.#shared) return operation(this.#memory);
    const { redis, store } = this.#shared;
    try {
      // Once an outage is known, only a ready connection is worth a try; before that, a connection still
      // being set up at boot is.
      if (REDIS_DOWN.has(redis.status) || (this.#redisDown && redis.status !== 'ready')) {
        throw new Error(`Redis connection is ${redis.status}`);
      }
      const result = await withTimeout(operation(store), REDIS_TIMEOUT_MS);
      if (this.#redisDown) {
        this.#redisDown = false;
        this.#logger?.info({ limiter: this.#name }, 'Redis is back; the limiter uses the shared budget again');
      }
      return result;
    } catch (error) {
      if (!this.#redisDown) {
        this.#redisDown = true;
        this.#logger?.warn(
          { limiter: this.#name, err: error },
          'Redis failed; the limiter falls back to an in-process budget until it answers again',
        );
      }
      return operation(this.#memory);
    }
  }
}
