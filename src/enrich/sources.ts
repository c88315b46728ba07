import type {
  Asn,
  DShield,
  GreyNoise,
  MaxMindData,
  SourceName,
  SourceOutcome,
} from '../record/model.js';

export interface SourceAvailability {
  status: 'ready' | 'disabled' | 'unavailable';
  reason?: string;
  /**
   * Set when the upstream refused our credentials (a GreyNoise 401); absent when the source is off by
   * configuration. A refused source was meant to answer, so its silence is a failure, not a choice.
   */
  refused?: true;
}

export interface LookupOptions {
  /** Epoch ms after which no request waits for the rate limit any more. */
  deadline: number;
  signal?: AbortSignal;
}

/** A source asked one address at a time over HTTP (GreyNoise, DShield). */
export interface PerAddressSource<T> {
  lookup(ips: readonly string[], options: LookupOptions): Promise<Map<string, SourceOutcome<T>>>;
  availability(): SourceAvailability;
  /** Why the source cannot answer for this address at all, decided without a request; undefined when it can. */
  unsupported(ip: string): string | undefined;
  close(): Promise<void>;
}

export interface InProcessSource {
  lookup(ip: string): SourceOutcome<MaxMindData>;
  /** Identifies the loaded databases; a stored answer from another version is stale. */
  version(): string | null;
  availability(): SourceAvailability;
}

/** From the last bulk query: failing when its every attempt failed, with the last error and since when. */
export type BulkSourceHealth = { status: 'ready' } | { status: 'failing'; reason: string; since: string };

export interface BulkAsnSource {
  lookupStreaming(
    ips: readonly string[],
    onBatch: (results: Map<string, SourceOutcome<Asn>>) => void | Promise<void>,
  ): Promise<void>;
  health(): BulkSourceHealth;
  /** queries: bulk queries attempted (retries included); failures: attempts that failed. */
  stats(): { queries: number; failures: number };
  close(): void;
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
