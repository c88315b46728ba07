import type {
  Asn,
  DShield,
  GreyNoise,
  MaxMindData,
  SourceName,
  SourceOutcome,
} from '../record/model.js';

/** Whether a source can be asked at all right now, and why not. */
export interface SourceAvailability {
  status: 'ready' | 'disabled' | 'unavailable';
  reason?: string;
}

export interface LookupOptions {
  /** Epoch ms after which a rate-limited source answers `rate_limited` instead of waiting. */
  deadline: number;
  signal?: AbortSignal;
}

/** A source asked per address over HTTP behind the shared rate limiter (GreyNoise, DShield). */
export interface PerAddressSource<T> {
  lookup(ips: readonly string[], options: LookupOptions): Promise<Map<string, SourceOutcome<T>>>;
  availability(): SourceAvailability;
  close(): Promise<void>;
}

export interface InProcessSource {
  lookup(ip: string): SourceOutcome<MaxMindData>;
  /** Identifies the loaded databases; a stored answer from another version is stale. */
  version(): string | null;
  availability(): SourceAvailability;
}

export interface BulkAsnSource {
  lookupStreaming(
    ips: readonly string[],
    onBatch: (results: Map<string, SourceOutcome<Asn>>) => void | Promise<void>,
  ): Promise<void>;
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
