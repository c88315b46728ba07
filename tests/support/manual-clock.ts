import type { Clock } from '../../src/clock.js';

interface Sleeper {
  wakeAt: number;
  order: number;
  wake(): void;
}

/** Simulated time: nothing moves until `advance` is called. */
export class ManualClock implements Clock {
  #now: number;
  #order = 0;
  /** Sorted by wake time, then by the order the waits began. */
  #sleepers: Sleeper[] = [];

  constructor(start = Date.UTC(2026, 0, 1)) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  /** How many sleeps and scheduled calls are waiting for time to pass. */
  get sleeping(): number {
    return this.#sleepers.length;
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(signal.reason as Error);
    if (ms <= 0) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        cancel();
        reject(signal?.reason as Error);
      };
      const cancel = this.schedule(ms, () => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      });
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** A call due now or earlier waits for the next `advance`, as a timer of 0 ms waits for the next turn. */
  schedule(ms: number, fire: () => void): () => void {
    const sleeper: Sleeper = { wakeAt: this.#now + Math.max(0, ms), order: this.#order++, wake: fire };
    const index = this.#sleepers.findIndex(
      (s) => s.wakeAt > sleeper.wakeAt || (s.wakeAt === sleeper.wakeAt && s.order > sleeper.order),
    );
    this.#sleepers.splice(index === -1 ? this.#sleepers.length : index, 0, sleeper);
    return () => {
      const at = this.#sleepers.indexOf(sleeper);
      if (at !== -1) this.#sleepers.splice(at, 1);
    };
  }

  /**
   * Moves time forward by `ms`, waking each due sleeper at its own moment and in order. After each wake the
   * event loop gets a turn, so the woken code runs (and may sleep again) before time moves on past it.
   */
  async advance(ms: number): Promise<void> {
    const target = this.#now + ms;
    for (let next = this.#sleepers[0]; next !== undefined && next.wakeAt <= target; next = this.#sleepers[0]) {
      this.#sleepers.shift();
      this.#now = Math.max(this.#now, next.wakeAt);
      next.wake();
      await new Promise((resolve) => setImmediate(resolve));
    }
    this.#now = target;
  }
}
