import type { FastifyBaseLogger } from 'fastify';
import type { Clock } from '../clock.js';
import type { RecordStore } from '../db/record-store.js';

/**
 * Last-seen and lookup counts for addresses answered from the cache tiers. They are coalesced and
 * written every few seconds in one statement, so a cached answer never waits for, nor pays, a write
 * per request; counts that fail to be written are kept for the next attempt.
 */
export class LookupRecorder {
  private pending = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<void> = Promise.resolve();

  constructor(
    private readonly store: RecordStore,
    private readonly clock: Clock,
    private readonly logger: FastifyBaseLogger,
    private readonly intervalMs = 2000,
  ) {}

  record(ips: readonly string[]): void {
    if (ips.length === 0) return;
    for (const ip of ips) this.pending.set(ip, (this.pending.get(ip) ?? 0) + 1);
    this.timer ??= setTimeout(() => void this.flush(), this.intervalMs).unref();
  }

  /** Writes everything recorded so far; resolves once it is stored (or kept for a retry). */
  flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    const batch = this.pending;
    this.pending = new Map();
    this.writing = this.writing.then(() => this.write(batch));
    return this.writing;
  }

  private async write(batch: Map<string, number>): Promise<void> {
    if (batch.size === 0) return;
    const updates = [...batch].map(([ip, lookups]) => ({ ip, sources: {}, lookups }));
    try {
      await this.store.save(updates, new Date(this.clock.now()));
    } catch (error) {
      this.logger.warn({ err: error, addresses: batch.size }, 'could not record lookups of cached addresses; will retry');
      for (const [ip, lookups] of batch) this.record(Array<string>(lookups).fill(ip));
    }
  }

  async close(): Promise<void> {
    await this.flush();
  }
}
