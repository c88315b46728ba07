import type { StoredRecord } from '../record/model.js';
import { traceTierRead } from '../tracing/enrich.js';
import type { RecordCache } from './tier.js';

/** L2: the stored records, read a list at a time (PostgreSQL's RecordStore in the service). */
export interface RecordSource {
  load(ips: readonly string[]): Promise<Map<string, StoredRecord>>;
}

export interface TierStats {
  hits: number;
  misses: number;
  durationMs: number;
}

/** What each tier held of the addresses asked for; an address is in at most one of the maps. */
export interface TieredRead {
  l1: ReadonlyMap<string, StoredRecord>;
  l2: ReadonlyMap<string, StoredRecord>;
  stats: { l1: TierStats; l2: TierStats };
}

/** Durations are measured in real time whatever clock decides freshness: they describe this process. */
export const elapsedMs = (since: number) => Math.round((performance.now() - since) * 100) / 100;

const NOTHING: ReadonlyMap<string, StoredRecord> = new Map();

/**
 * The cache tiers in front of the upstreams: L1 (the process-local copy, then Redis or the in-process LRU)
 * and L2 (PostgreSQL). A list is read tier by tier, each tier asked only for what the ones before it lacked,
 * and whatever L2 supplied is what L1 is to be filled with once it is merged.
 */
export class TieredLoader {
  constructor(
    readonly l1: RecordCache,
    private readonly l2: RecordSource,
  ) {}

  /** The records this process holds itself, read without an await; the rest come from `load`. */
  peek(ips: readonly string[]): { found: Map<string, StoredRecord>; stats: TierStats } {
    const started = performance.now();
    const found = new Map<string, StoredRecord>();
    for (const ip of ips) {
      const record = this.l1.peek(ip);
      if (record) found.set(ip, record);
    }
    // A peek that finds nothing is not a miss: the same addresses go on to L1's own read.
    return { found, stats: { hits: found.size, misses: 0, durationMs: elapsedMs(started) } };
  }

  /**
   * Reads the addresses from L1 and then L2 for what L1 lacks. `skipL1` (a refresh) still reads L2: what
   * is stored is not used as fresh then, but a source that fails now must not erase what it already holds.
   */
  async load(ips: readonly string[], options: { skipL1?: boolean } = {}): Promise<TieredRead> {
    const stats = { l1: { hits: 0, misses: 0, durationMs: 0 }, l2: { hits: 0, misses: 0, durationMs: 0 } };
    let l1: ReadonlyMap<string, StoredRecord> = NOTHING;
    let missing = ips;
    if (!options.skipL1 && missing.length > 0) {
      const started = performance.now();
      l1 = await traceTierRead('l1', missing.length, () => this.l1.getMany(missing));
      stats.l1 = { hits: l1.size, misses: missing.length - l1.size, durationMs: elapsedMs(started) };
      if (l1.size > 0) missing = missing.filter((ip) => !l1.has(ip));
    }
    if (missing.length === 0) return { l1, l2: NOTHING, stats };
    const started = performance.now();
    const l2 = await traceTierRead('l2', missing.length, () => this.l2.load(missing));
    stats.l2 = { hits: l2.size, misses: missing.length - l2.size, durationMs: elapsedMs(started) };
    return { l1, l2, stats };
  }

  /** Writes merged records through to L1. */
  fill(records: readonly StoredRecord[]): Promise<void> {
    return records.length === 0 ? Promise.resolve() : this.l1.setMany(records);
  }
}
