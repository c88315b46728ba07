import type { FastifyBaseLogger } from 'fastify';
import type { Redis } from 'ioredis';
import type { RecordCache } from './tier.js';
import type { StoredRecord } from '../record/model.js';

/**
 * The shared L1 in Redis. While Redis is unreachable the tier is skipped outright (no command is even
 * tried, since the client fails fast with its offline queue off); ioredis reconnects on its own and the
 * tier is used again as soon as the connection is ready.
 */
export class RedisTier implements RecordCache {
  readonly kind = 'redis';
  private lastErrorLog = 0;
  private failures = 0;

  constructor(
    private readonly redis: Redis,
    private readonly options: { keyPrefix: string; ttlSeconds: number; logger: FastifyBaseLogger },
  ) {}

  private key(ip: string): string {
    return `${this.options.keyPrefix}rec:${ip}`;
  }

  private failed(action: string, error: unknown): void {
    this.failures += 1;
    const now = Date.now();
    if (now - this.lastErrorLog < 10_000) return;
    this.lastErrorLog = now;
    this.options.logger.warn({ err: error }, `Redis L1 ${action} failed; answering without the cache`);
  }

  async getMany(ips: readonly string[]): Promise<Map<string, StoredRecord>> {
    const found = new Map<string, StoredRecord>();
    if (ips.length === 0 || this.redis.status !== 'ready') return found;
    try {
      const values = await this.redis.mget(ips.map((ip) => this.key(ip)));
      values.forEach((value, index) => {
        if (value !== null) found.set(ips[index] as string, JSON.parse(value) as StoredRecord);
      });
    } catch (error) {
      this.failed('read', error);
    }
    return found;
  }

  peek(): undefined {
    return undefined;
  }

  async setMany(records: readonly StoredRecord[]): Promise<void> {
    if (records.length === 0 || this.redis.status !== 'ready') return;
    const pipeline = this.redis.pipeline();
    for (const record of records) pipeline.set(this.key(record.ip), JSON.stringify(record), 'EX', this.options.ttlSeconds);
    try {
      await pipeline.exec();
    } catch (error) {
      this.failed('write', error);
    }
  }

  /** Unlike the reads, a deletion must not pass silently: a Redis that does not answer is an error here. */
  async delete(ips: readonly string[]): Promise<number> {
    return ips.length === 0 ? 0 : this.redis.del(...ips.map((ip) => this.key(ip)));
  }

  errors(): number {
    return this.failures;
  }

  health(): 'ok' | 'degraded' {
    return this.redis.status === 'ready' ? 'ok' : 'degraded';
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
