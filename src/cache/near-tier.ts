import type { RecordCache } from './tier.js';
import type { StoredRecord } from '../record/model.js';

/**
 * Redis L1 with a short-lived process-local copy in front. A record another replica refreshed meanwhile
 * may be answered from the older local copy for up to its TTL; that copy is still within every source's
 * freshness, since freshness is judged from each source's fetchedAt, not from where the record was read.
 * It spares the Redis round trip and the JSON parsing for addresses this process answered recently.
 */
export class NearTier implements RecordCache {
  readonly kind = 'redis';

  constructor(
    private readonly local: RecordCache,
    private readonly remote: RecordCache,
  ) {}

  async getMany(ips: readonly string[]): Promise<Map<string, StoredRecord>> {
    const found = await this.local.getMany(ips);
    if (found.size === ips.length) return found;
    const fromRemote = await this.remote.getMany(ips.filter((ip) => !found.has(ip)));
    await this.local.setMany([...fromRemote.values()]);
    for (const [ip, record] of fromRemote) found.set(ip, record);
    return found;
  }

  peek(ip: string): StoredRecord | undefined {
    return this.local.peek(ip);
  }

  async setMany(records: readonly StoredRecord[]): Promise<void> {
    await Promise.all([this.local.setMany(records), this.remote.setMany(records)]);
  }

  async delete(ips: readonly string[]): Promise<number> {
    const [local, remote] = await Promise.all([this.local.delete(ips), this.remote.delete(ips)]);
    return Math.max(local, remote);
  }

  health(): 'ok' | 'degraded' {
    return this.remote.health();
  }

  errors(): number {
    return this.remote.errors();
  }

  async close(): Promise<void> {
    await Promise.all([this.local.close(), this.remote.close()]);
  }
}
