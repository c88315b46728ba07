import {
  BACKOFF_BASE_MS,
  BACKOFF_MAX_MS,
  type BucketPolicy,
  type BucketState,
  type BucketStore,
  type Reservation,
  type Reservations,
} from './token-bucket.js';

/** The bucket of one upstream in this process; the same rules as the Lua script in redis-store.ts. */
export class MemoryBucketStore implements BucketStore {
  readonly #policy: BucketPolicy;
  #tat: number | undefined;
  #blockedUntil = 0;
  #failures = 0;

  constructor(policy: BucketPolicy) {
    this.#policy = policy;
  }

  reserve(now: number, deadlines: readonly number[], notBefore: number, tatFloor: number): Promise<Reservations> {
    const found = { blockedUntil: this.#blockedUntil, consecutiveFailures: this.#failures };
    let tat = Math.max(this.#tat ?? now, tatFloor);
    const moments = deadlines.map((deadline): Reservation => {
      const at = Math.ceil(Math.max(now, tat - this.#policy.toleranceMs, this.#blockedUntil, notBefore));
      if (at > deadline) return { granted: false, at };
      tat = Math.max(tat, at) + this.#policy.intervalMs;
      this.#tat = tat;
      return { granted: true, at };
    });
    return Promise.resolve({ ...found, moments, tat });
  }

  blockedUntil(): Promise<number> {
    return Promise.resolve(this.#blockedUntil);
  }

  fail(now: number, delayMs: number | undefined): Promise<BucketState> {
    if (now < this.#blockedUntil) {
      if (delayMs !== undefined) this.#blockedUntil = Math.max(this.#blockedUntil, now + delayMs);
    } else {
      this.#failures += 1;
      const backoff = Math.min(BACKOFF_BASE_MS * 2 ** Math.min(this.#failures - 1, 16), BACKOFF_MAX_MS);
      this.#blockedUntil = now + (delayMs ?? backoff);
    }
    return this.state();
  }

  succeed(): Promise<void> {
    this.#failures = 0;
    return Promise.resolve();
  }

  state(): Promise<BucketState> {
    return Promise.resolve({ blockedUntil: this.#blockedUntil, consecutiveFailures: this.#failures });
  }
}
