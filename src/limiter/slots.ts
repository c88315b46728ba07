import type { Clock } from '../clock.js';

interface SlotWaiter {
  grant(): void;
}

/** FIFO in-flight slots; a waiter gives up at its deadline. */
export class Slots {
  readonly size: number;
  #free: number;
  /** In arrival order; a Set so that a waiter whose deadline came leaves without a scan. */
  #waiters = new Set<SlotWaiter>();

  constructor(size: number) {
    this.size = size;
    this.#free = size;
  }

  get inUse(): number {
    return this.size - this.#free;
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
      const onAbort = () => {
        this.#waiters.delete(waiter);
        cancel();
        reject(signal?.reason as Error);
      };
      const waiter: SlotWaiter = {
        grant: () => {
          cancel();
          signal?.removeEventListener('abort', onAbort);
          resolve(true);
        },
      };
      const cancel = clock.schedule(wait, () => {
        this.#waiters.delete(waiter);
        signal?.removeEventListener('abort', onAbort);
        resolve(false);
      });
      this.#waiters.add(waiter);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  release(): void {
    for (const next of this.#waiters) {
      this.#waiters.delete(next);
      next.grant();
      return;
    }
    this.#free += 1;
  }
}
