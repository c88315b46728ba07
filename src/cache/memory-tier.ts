import { LRUCache } from 'lru-cache';
import type { RecordCache } from './tier.js';
import type { StoredRecord } from '../record/model.js';

/** The L1 when no Redis is configured: bounded in entries, entries expire after the L1 TTL. */
export class MemoryTier implements RecordCache {
  readonly kind = 'memory';
  private readonly cache: LRUCache<string, StoredRecord>;

  constructor(options: { maxEntries: number; ttlMs: number }) {
    this.cache = new LRUCache({ max: options.maxEntries, ttl: options.ttlMs });
  }

  getMany(ips: readonly string[]): Promise<Map<string, StoredRecord>> {
    const found = new Map<string, StoredRecord>();
    for (const ip of ips) {
      const record = this.cache.get(ip);
      if (record) found.set(ip, record);
    }
    return Promise.resolve(found);
  }

  peek(ip: string): StoredRecord | undefined {
    return this.cache.get(ip);
  }

  setMany(records: readonly StoredRecord[]): Promise<void> {
    for (const record of records) this.cache.set(record.ip, record);
    return Promise.resolve();
  }

  delete(ips: readonly string[]): Promise<number> {
    return Promise.resolve(ips.filter((ip) => this.cache.delete(ip)).length);
  }

  health(): 'ok' {
    return 'ok';
  }

  errors(): number {
    return 0;
  }

  close(): Promise<void> {
    this.cache.clear();
    return Promise.resolve();
  }
}
