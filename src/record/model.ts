import { Type, type Static } from '@sinclair/typebox';
import { Nullable, StringEnum } from '../schema.js';

export const SOURCE_NAMES = ['maxmind', 'cymru', 'greynoise', 'dshield'] as const;
export type SourceName = (typeof SOURCE_NAMES)[number];


export const SourceStatusSchema = StringEnum(
  [
    'ok',
    'not_found',
    'error',
    'skipped',
    'unavailable',
    'disabled',
    'unsupported',
    'rate_limited',
  ] as const,
  {
    description:
      'ok: answered; not_found: the source knows nothing of the address (a real, cached answer); error: the ' +
      'lookup failed; skipped: not needed or not requested; unavailable: the source is not configured; ' +
      'disabled: the source was switched off (see /readyz for why); unsupported: the source cannot answer ' +
      'for this kind of address; rate_limited: the upstream budget ran out before the deadline (see retryAt)',
  },
);

export const AsnSchema = Type.Object(
  {
    number: Type.Integer({ description: 'origin AS number (the first when several announce the prefix)' }),
    numbers: Type.Array(Type.Integer(), { description: 'every AS number announcing the prefix' }),
    name: Nullable(Type.String()),
    prefix: Nullable(Type.String({ description: 'announced BGP prefix (CIDR)' })),
    country: Nullable(Type.String({ description: 'ISO 3166-1 alpha-2 of the AS registration' })),
    registry: Nullable(Type.String({ description: 'arin, ripencc, apnic, lacnic or afrinic' })),
    allocated: Nullable(Type.String({ description: 'allocation date, YYYY-MM-DD' })),
    source: StringEnum(['maxmind', 'cymru'], { description: 'which source named the AS' }),
  },
  { $id: 'Asn' },
);
export type Asn = Static<typeof AsnSchema>;

export const GeoSchema = Type.Object(
  {
    country: Nullable(Type.String({ description: 'ISO 3166-1 alpha-2' })),
    countryName: Nullable(Type.String()),
    city: Nullable(Type.String()),
    latitude: Nullable(Type.Number()),
    longitude: Nullable(Type.Number()),
    accuracyRadius: Nullable(Type.Integer({ description: 'kilometres' })),
    timezone: Nullable(Type.String()),
  },
  { $id: 'Geo' },
);
export type Geo = Static<typeof GeoSchema>;

export const GreyNoiseSchema = Type.Object(
  {
    noise: Type.Boolean({ description: 'seen scanning the Internet in the last 90 days' }),
    riot: Type.Boolean({ description: 'belongs to a common business service (benign by design)' }),
    classification: Nullable(Type.String({ description: 'benign, malicious or unknown' })),
    name: Nullable(Type.String()),
    link: Nullable(Type.String()),
    lastSeen: Nullable(Type.String()),
  },
  { $id: 'GreyNoise' },
);
export type GreyNoise = Static<typeof GreyNoiseSchema>;

export const DShieldSchema = Type.Object(
  {
    attacks: Nullable(Type.Integer({ description: 'distinct targets attacked' })),
    reports: Nullable(Type.Integer({ description: 'reports (packets/log lines) submitted' })),
    firstSeen: Nullable(Type.String()),
    lastSeen: Nullable(Type.String()),
    threatFeeds: Type.Array(Type.String()),
    abuseContact: Nullable(Type.String()),
  },
  { $id: 'DShield' },
);
export type DShield = Static<typeof DShieldSchema>;

export const SourceReportSchema = Type.Object(
  {
    status: SourceStatusSchema,
    fetchedAt: Nullable(Type.String({ format: 'date-time', description: 'when the data shown was fetched' })),
    error: Type.Optional(Type.String()),
    retryAt: Type.Optional(Type.String({ format: 'date-time' })),
    database: Type.Optional(Type.String({ description: 'MaxMind databases and their build dates' })),
  },
  { $id: 'SourceReport' },
);
export type SourceReport = Static<typeof SourceReportSchema>;

export const RecordStatusSchema = StringEnum(
  ['ok', 'partial', 'bogon', 'invalid'],
  {
    description:
      'ok: every requested source answered; partial: some source failed or was rate limited; bogon: a ' +
      'private or reserved address, not looked up; invalid: the input is not an IP address',
  },
);

export const IpRecordSchema = Type.Object(
  {
    ip: Type.String({ description: 'canonical address; for invalid input, the input as given' }),
    input: Type.String({ description: 'the string as it was sent' }),
    status: RecordStatusSchema,
    error: Type.Optional(Type.String({ description: 'why an input is invalid' })),
    range: Type.Optional(Type.String({ description: 'the special-purpose range a bogon belongs to' })),
    asn: Nullable(Type.Ref(AsnSchema)),
    geo: Nullable(Type.Ref(GeoSchema)),
    greynoise: Nullable(Type.Ref(GreyNoiseSchema)),
    dshield: Nullable(Type.Ref(DShieldSchema)),
    sources: Type.Object({
      maxmind: Type.Ref(SourceReportSchema),
      cymru: Type.Ref(SourceReportSchema),
      greynoise: Type.Ref(SourceReportSchema),
      dshield: Type.Ref(SourceReportSchema),
    }),
    updatedAt: Nullable(Type.String({ format: 'date-time', description: 'when the stored record last changed' })),
  },
  { $id: 'IpRecord' },
);
export type IpRecord = Static<typeof IpRecordSchema>;

/** Every schema referenced by `$ref`, registered once with Fastify so routes and OpenAPI share them. */
export const SHARED_SCHEMAS = [AsnSchema, GeoSchema, GreyNoiseSchema, DShieldSchema, SourceReportSchema, IpRecordSchema];

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
