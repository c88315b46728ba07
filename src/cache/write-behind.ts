import type { StoredRecord } from '../record/model.js';

export interface WriteBehindOptions {
  /** Writes one batch to the shared store; failures are the store's own to report (a cache never fails). */
  write(records: readonly StoredRecord[]): Promise<void>;
  /** While true, queued records wait, unless they have waited maxDelayMs. */
  busy(): boolean;
  maxDelayMs: number;
  /** Records per write: what the event loop gives to one write at a time. */
  batch: number;
  /** How often the queue looks whether it may write. */
  pollMs: number;
}

/**
 * The writes of merged records to the shared L1 (Redis), made after the answers that produced them and
 * between requests rather than inside them. Turning 10,000 records into Redis commands takes 80–100 ms of
 * the main thread; written as each chunk of a cold list was merged, that work came before the list's last
 * records and delayed its answer (npm run bench, 8 connections).
 *
 * A record waits at most maxDelayMs, however busy the process is. The latest record of an address replaces
 * one still waiting, so the store never gets an older record after a newer one, and an address that is
 * deleted is forgotten, so that a waiting write does not bring it back.
 */
export class WriteBehind {
  readonly #options: WriteBehindOptions;
  /** By address, in the order they were queued (a replaced record moves to the end). */
  readonly #waiting = new Map<string, { record: StoredRecord; at: number }>();
  #timer: NodeJS.Timeout | undefined;
  #writing: Promise<void> | undefined;
  #closed = false;

  constructor(options: WriteBehindOptions) {
    this.#options = options;
  }

  /** Records not written yet. */
  get size(): number {
    return this.#waiting.size;
  }

  enqueue(records: readonly StoredRecord[]): void {
    if (this.#closed) return;
    const at = performance.now();
    for (const record of records) {
      this.#waiting.delete(record.ip);
      this.#waiting.set(record.ip, { record, at });
    }
    this.#poll();
  }

  /** Drops the waiting records of these addresses. */
  forget(ips: Iterable<string>): void {
    for (const ip of ips) this.#waiting.delete(ip);
  }

  /** Writes everything still waiting, at once, and takes no more; resolves once it is written. */
  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#writing;
    while (this.#waiting.size > 0) await this.#writeBatch();
  }

  #poll(): void {
    if (this.#closed || this.#timer || this.#writing || this.#waiting.size === 0) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      if (!this.#due()) {
        this.#poll();
        return;
      }
      // A store that fails says so itself (RedisTier logs it); the records of that batch are given up.
      this.#writing = this.#writeBatch()
        .catch(() => undefined)
        .finally(() => {
          this.#writing = undefined;
          this.#poll();
        });
    }, this.#options.pollMs);
    // The queue never keeps the process alive: closing writes what it holds.
    this.#timer.unref();
  }

  #due(): boolean {
    if (!this.#options.busy()) return true;
    const oldest = this.#waiting.values().next().value;
    return oldest !== undefined && performance.now() - oldest.at >= this.#options.maxDelayMs;
  }

  async #writeBatch(): Promise<void> {
    const batch: StoredRecord[] = [];
    for (const [ip, { record }] of this.#waiting) {
      batch.push(record);
      this.#waiting.delete(ip);
      if (batch.length === this.#options.batch) break;
    }
    if (batch.length > 0) await this.#options.write(batch);
  }
}
