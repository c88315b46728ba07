/**
 * The budget of one upstream, kept as a token bucket in its "virtual scheduling" form (GCRA): instead of a
 * token count the store keeps the theoretical arrival time `tat` of the next request. A request reserves the
 * earliest moment the bucket allows (at most `burst` at once, then one per `intervalMs`), so a caller learns at
 * once when it may go and whether that is before its deadline, and over any window T no more than
 * burst + rate × T reservations fall due. Both stores implement exactly this; the Redis one in Lua so that
 * replicas sharing it share one budget.
 */
export interface BucketPolicy {
  /** ms between requests at the sustained rate (1000 / rate). */
  intervalMs: number;
  /** How far `tat` may run ahead of now while a request is still allowed: (burst - 1) × interval. */
  toleranceMs: number;
}

export function bucketPolicy(rate: number, burst: number): BucketPolicy {
  const intervalMs = 1000 / rate;
  return { intervalMs, toleranceMs: (Math.max(1, burst) - 1) * intervalMs };
}

/** Backoff after a 429/401 without a usable Retry-After: 60 s, doubling per consecutive failure, at most 1 h. */
export const BACKOFF_BASE_MS = 60_000;
export const BACKOFF_MAX_MS = 3_600_000;

export interface BucketState {
  blockedUntil: number;
  consecutiveFailures: number;
}

export type Reservation =
  /** A moment was reserved; the caller may send at `at` (which may be now). */
  | { granted: true; at: number }
  /** The earliest possible moment is after the deadline; nothing was reserved. */
  | { granted: false; at: number };

/** One reservation per deadline asked for, in order, and the block and failure count as they were found: a
 *  success need not be reported when there is nothing to reset. */
export interface Reservations extends BucketState {
  moments: Reservation[];
  /** The bucket's `tat` after these reservations. */
  tat: number;
}

/**
 * Every moment a store is given or answers is on the caller's clock, `now` being the caller's now; a store
 * may keep its own (the Redis one keeps Redis's) and convert.
 */
export interface BucketStore {
  /**
   * For each deadline in turn, reserves the earliest moment at or after `now`, `notBefore`, any block and
   * the moments reserved before it, if that is no later than the deadline: exactly what one call per
   * deadline in that order would reserve. Moments are whole milliseconds, rounded up. The bucket's `tat`
   * is taken to be at least `tatFloor`: what the caller already spent through another store.
   */
  reserve(now: number, deadlines: readonly number[], notBefore: number, tatFloor: number): Promise<Reservations>;
  /** The moment the upstream is blocked until (0, or a moment already past, when it is not). */
  blockedUntil(now: number): Promise<number>;
  /**
   * A 429/401: blocks for `delayMs` (the Retry-After) or, without one, for the backoff of the new failure
   * count. While already blocked, further failures (the other requests that were in flight) only extend the
   * block to their own Retry-After and do not count again. Returns the block and failure count after it.
   */
  fail(now: number, delayMs: number | undefined): Promise<BucketState>;
  /** A real answer: the failure count starts over. */
  succeed(): Promise<void>;
  state(now: number): Promise<BucketState>;
}
