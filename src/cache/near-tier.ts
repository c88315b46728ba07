import type { RecordCache } from './tier.js';
import { WriteBehind, type WriteBehindOptions } from './write-behind.js';
import type { StoredRecord } from '../record/model.js';

/**
 * Redis L1 with a short-lived process-local copy in front. A record another replica refreshed meanwhile
 * may be answered from the older local copy for up to its TTL; that copy is still within every source's
 * freshness, since freshness is judged from each source's fetchedAt, not from where the record was read.
 * It spares the Redis round trip and the JSON parsing for addresses this process answered recently.
 */
export class NearTier implements RecordCache {
  readonly kind = 'redis';
  /** The writes to the remote tier, made after the local copy holds the records (src/cache/write-behind.ts). */
  readonly #behind: WriteBehind;

  constructor(
    private readonly local: RecordCache,
    private readonly remote: RecordCache,
    writes: Omit<WriteBehindOptions, 'write'>,
  ) {
    this.#behind = new WriteBehind({ ...writes, write: (records) => remote.setMany(records) });
  }

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

  /** Resolves once the local copy holds the records; the remote write follows between requests. */
  async setMany(records: readonly StoredRecord[]): Promise<void> {
    await this.local.setMany(records);
    this.#behind.enqueue(records);
  }

  async delete(ips: readonly string[]): Promise<number> {
    this.#behind.forget(ips);
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
    await this.#behind.close();
    await Promise.all([this.local.close(), this.remote.close()]);
  }
}
