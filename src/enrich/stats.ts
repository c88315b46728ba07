import { Type, type Static } from '@sinclair/typebox';
import { SOURCE_NAMES, type SourceName } from '../record/model.js';

const Counter = (description: string) => Type.Integer({ minimum: 0, description });

const SourceCountersSchema = Type.Object({
  lookups: Counter('addresses this request asked the source about'),
  ok: Counter('answers with data'),
  notFound: Counter('answers saying the source knows nothing of the address'),
  errors: Counter('failed lookups'),
  rateLimited: Counter('lookups the rate limit deferred past the deadline'),
});

const TierSchema = Type.Object({
  hits: Counter('addresses found'),
  misses: Counter('addresses not found'),
  durationMs: Type.Number({ minimum: 0, description: 'time spent reading the tier' }),
});

export const EnrichStatsSchema = Type.Object(
  {
    total: Counter('strings in the request'),
    unique: Counter('distinct routable addresses'),
    invalid: Counter('strings that are not IP addresses'),
    bogon: Counter('private or reserved addresses, not looked up'),
    durationMs: Type.Number({ minimum: 0, description: 'time spent on the request' }),
    tiers: Type.Object({ l1: TierSchema, l2: TierSchema }),
    sources: Type.Object(
      Object.fromEntries(SOURCE_NAMES.map((source) => [source, SourceCountersSchema])) as Record<
        SourceName,
        typeof SourceCountersSchema
      >,
    ),
  },
  { $id: 'EnrichStats' },
);

export type EnrichStats = Static<typeof EnrichStatsSchema>;
export type SourceCounters = Static<typeof SourceCountersSchema>;
