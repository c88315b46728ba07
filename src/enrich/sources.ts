import type {
  Asn,
  DShield,
  GreyNoise,
  MaxMindData,
  SourceName,
  SourceOutcome,
} from '../record/model.js';
import type { LookupOptions, PerAddressSource, SourceAvailability } from '../sources/http.js';

export type { LookupOptions, PerAddressSource, SourceAvailability };

export interface InProcessSource {
  lookup(ip: string): SourceOutcome<MaxMindData>;
  /** Identifies the loaded databases; a stored answer from another version is stale. */
  version(): string | null;
  availability(): SourceAvailability;
}

/** A bulk source's state from the outcome of its latest queries. */
export type SourceHealth = { status: 'ready' } | { status: 'failing'; reason: string; since: string };

export interface BulkAsnSource {
  lookupStreaming(
    ips: readonly string[],
    onBatch: (results: Map<string, SourceOutcome<Asn>>) => void | Promise<void>,
  ): Promise<void>;
  health(): SourceHealth;
  /** queries: bulk queries attempted (retries included); failures: attempts that failed. */
  stats(): { queries: number; failures: number };
}

/** Every upstream the cascade consults, built once per process. */
export interface SourceSet {
  maxmind: InProcessSource;
  cymru: BulkAsnSource;
  greynoise: PerAddressSource<GreyNoise>;
  dshield: PerAddressSource<DShield>;
}

/** How long an answer of each source stays fresh, in ms; MaxMind's freshness is its database version. */
export type Freshness = Record<Exclude<SourceName, 'maxmind'>, number>;
