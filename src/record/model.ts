import type { Static } from '@sinclair/typebox';
import type {
  AsnSchema,
  DShieldSchema,
  GeoSchema,
  GreyNoiseSchema,
  IpRecordSchema,
  SourceReportSchema,
} from '../schemas/record.js';

export const SOURCE_NAMES = ['maxmind', 'cymru', 'greynoise', 'dshield'] as const;
export type SourceName = (typeof SOURCE_NAMES)[number];

// The answer's shapes are defined once, by the API schemas; the stored shapes below are built from them.
export type Asn = Static<typeof AsnSchema>;
export type Geo = Static<typeof GeoSchema>;
export type GreyNoise = Static<typeof GreyNoiseSchema>;
export type DShield = Static<typeof DShieldSchema>;
export type SourceReport = Static<typeof SourceReportSchema>;
export type IpRecord = Static<typeof IpRecordSchema>;

export interface MaxMindData {
  geo: Geo | null;
  asn: Asn | null;
}

export interface SourceData {
  maxmind: MaxMindData;
  cymru: Asn;
  greynoise: GreyNoise;
  dshield: DShield;
}

/** What is remembered of one source for one address: the last definitive answer and when it came. */
export interface StoredSourceState<T> {
  status: 'ok' | 'not_found' | 'unsupported';
  fetchedAt: string;
  data: T | null;
  /** MaxMind only: the databases that produced the answer; a new build makes it stale. */
  database?: string;
}

export type StoredSources = { [S in SourceName]: StoredSourceState<SourceData[S]> | null };

/** The persisted form of an address (PostgreSQL row, L1 cache entry). */
export interface StoredRecord {
  ip: string;
  sources: StoredSources;
  updatedAt: string;
}

/** One source's answer for one address in this request. */
export type SourceOutcome<T> =
  | { status: 'ok' | 'not_found'; data: T | null; database?: string }
  | { status: 'unsupported' | 'skipped' | 'unavailable'; reason?: string }
  /** `refused`: the upstream refused our credentials; absent when the source is off by configuration. */
  | { status: 'disabled'; reason?: string; refused?: true }
  | { status: 'error'; error: string }
  | { status: 'rate_limited'; retryAt: string };
