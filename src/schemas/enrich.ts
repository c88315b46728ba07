import { Type } from '@sinclair/typebox';
import { SOURCE_NAMES, type SourceName } from '../record/model.js';
import { SourceNameSchema } from './record.js';

export const EnrichBodySchema = Type.Object(
  {
    ips: Type.Array(Type.String(), {
      description: 'addresses to enrich; anything that is not an IP address is answered with status "invalid"',
    }),
    sources: Type.Optional(
      Type.Array(SourceNameSchema, { uniqueItems: true, description: 'limit lookups to these sources (default: all)' }),
    ),
    refresh: Type.Optional(Type.Boolean({ description: 'fetch again what is stored and still fresh', default: false })),
  },
  { additionalProperties: false },
);

const Counter = (description: string) => Type.Integer({ minimum: 0, description });

export const SourceCountersSchema = Type.Object({
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

export const EnrichAnswerSchema = Type.Object(
  { results: Type.Array(Type.Ref('IpRecord')), stats: Type.Ref(EnrichStatsSchema) },
  { description: 'one result per input string, in input order' },
);
