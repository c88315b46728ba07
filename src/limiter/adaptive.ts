import type { FastifyBaseLogger } from 'fastify';
import type { Redis } from 'ioredis';
import { systemClock, type Clock } from '../clock.js';
import { MemoryBucketStore } from './memory-store.js';
import { RedisBucketStore } from './redis-store.js';
import { parseRetryAfter } from './retry-after.js';
import { Slots } from './slots.js';
import { bucketPolicy, type BucketStore, type Reservation } from './token-bucket.js';

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

/** Told of a refusal before the caller is: a lookup's run refuses the rest of its list with it. */
export interface RefusalListener {
  refuse(retryAt: number): void;
}

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
  /**
   * The bucket's `tat` as the last store call left it. Every reservation passes it on as a floor, so that
   * switching between Redis and the in-process store (an outage, its end) never finds a refilled bucket:
   * what one store granted, the other counts as spent.
   */
  #tatFloor = 0;
  /** The failure count as the store last told it; a success is reported only when there may be one to reset. */
  #failures = 0;
  /**
   * The latest moment at which a store call was sent whose answer (and the block in it) is already in
   * #blockedUntil: what this process knows of the shared block is at least as new as that moment.
   */
  #blockKnownAsOf = 0;
  /** The latest store call that answers with the block, and when it was sent. */
  #latestAsk: { sentAt: number; answer: Promise<unknown> } | undefined;
  /** Requests (each holding its slot) waiting for the reservation call under way to come back, to have
   *  their moments reserved together in the next one. */
  #queued: Array<{ deadline: number; resolve(moment: Reservation): void; reject(error: Error): void }> = [];
  #reserving = false;
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

  /** Requests this limiter lets be in flight at once: the most a caller gains from running in parallel. */
  get maxInFlight(): number {
    return this.#slots.size;
  }

  /** Waits for a token (and an in-flight slot) until `deadline` (epoch ms). If the wait would end after the
   *  deadline (bucket empty, or blocked until later), resolves at once with {ok:false, retryAt} — never hangs
   *  past the deadline. `signal` aborts the wait; `refusals` hears of a refusal. */
  async acquire(deadline: number, signal?: AbortSignal, refusals?: RefusalListener): Promise<Admission> {
    signal?.throwIfAborted();
    if (this.#blockedUntil > deadline) return this.#refuse(this.#blockedUntil, refusals);
    // The slot comes first: a token taken while waiting for a slot would be spent late, and late requests
    // bunch up beyond the rate.
    if (!(await this.#slots.take(deadline, this.#clock, signal))) {
      return this.#refuse(Math.max(this.#clock.now(), this.#horizon, this.#blockedUntil), refusals);
    }
    try {
      for (;;) {
        const reservation = await this.#reserve(deadline);
        if (!reservation.granted) {
          this.#slots.release();
          return this.#refuse(reservation.at, refusals);
        }
        const wait = reservation.at - this.#clock.now();
        if (wait <= 0) break;
        await this.#clock.sleep(wait, signal);
        // A 429 may have come back (here or on another replica) while this request slept; its reservation
        // predates the block and must not be used. Any store call sent since the reservation fell due tells
        // (as a rule another request's reservation, when requests follow each other closely): its answer,
        // if it has come, or else the wait for it. Only without one is the store asked, and that question
        // serves the requests that wake after it is sent.
        if (this.#blockKnownAsOf < reservation.at) {
          const latest = this.#latestAsk;
          if (latest && latest.sentAt >= reservation.at) await latest.answer;
          else await this.#ask(async (store) => ({ blockedUntil: await store.blockedUntil(this.#clock.now()) }));
        }
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
    const now = this.#clock.now();
    if (outcome === 'ok') {
      // Nothing to reset is the rule, and a success then costs no store call. While a block is known the
      // count may have grown since the store last said it, so the success is reported as before.
      if (this.#failures === 0 && this.#blockedUntil <= now) return undefined;
      this.#failures = 0;
      await this.#withStore((store) => store.succeed());
      return undefined;
    }
    const delay = parseRetryAfter(retryAfter, now);
    const { blockedUntil } = await this.#ask((store) => store.fail(now, delay));
    this.#logger?.warn(
      { limiter: this.#name, outcome, retryAfter, blockedUntil: new Date(blockedUntil).toISOString() },
      'upstream refused a request; holding every request to it until the block ends',
    );
    return blockedUntil > now ? blockedUntil : undefined;
  }

  async state(): Promise<{ blockedUntil: number | null; consecutiveFailures: number; inFlight: number }> {
    const state = await this.#withStore((store) => store.state(this.#clock.now()));
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

  /**
   * One store call reserves the moments of every request that asked while the previous call was under way:
   * one round trip for several requests when they come close together, none added when they do not. The
   * store reserves them in order, exactly as one call each would.
   */
  #reserve(deadline: number): Promise<Reservation> {
    return new Promise((resolve, reject) => {
      this.#queued.push({ deadline, resolve, reject });
      if (!this.#reserving) void this.#reserveQueued();
    });
  }

  async #reserveQueued(): Promise<void> {
    this.#reserving = true;
    while (this.#queued.length > 0) {
      const batch = this.#queued;
      this.#queued = [];
      const now = this.#clock.now();
      const deadlines = batch.map((request) => request.deadline);
      try {
        const { moments, tat } = await this.#ask((store) => store.reserve(now, deadlines, this.#blockedUntil, this.#tatFloor));
        this.#tatFloor = Math.max(this.#tatFloor, tat);
        batch.forEach((request, index) => {
          const moment = moments[index] as Reservation;
          this.#horizon = Math.max(this.#horizon, moment.at);
          request.resolve(moment);
        });
      } catch (error) {
        for (const request of batch) request.reject(error as Error);
      }
    }
    this.#reserving = false;
  }

  /** A store call whose answer tells the block (and maybe the failure count), taken in as it comes. */
  #ask<T extends { blockedUntil: number; consecutiveFailures?: number }>(
    operation: (store: BucketStore) => Promise<T>,
  ): Promise<T> {
    const sentAt = this.#clock.now();
    const answer = this.#withStore(operation).then((state) => {
      this.#blockedUntil = Math.max(this.#blockedUntil, state.blockedUntil);
      this.#blockKnownAsOf = Math.max(this.#blockKnownAsOf, sentAt);
      if (state.consecutiveFailures !== undefined) this.#failures = state.consecutiveFailures;
      return state;
    });
    this.#latestAsk = { sentAt, answer };
    return answer;
  }

  #refuse(retryAt: number, refusals: RefusalListener | undefined): Admission {
    this.#limited += 1;
    refusals?.refuse(retryAt);
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
