import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { tooManyAddresses } from '../errors.js';
import { SOURCE_NAMES } from '../record/model.js';
import { EnrichStatsSchema } from '../enrich/stats.js';
import { problemResponses } from './problems.js';
import { sendSerialized } from './serialized.js';
import { StringEnum } from '../schema.js';

export const SourceNameSchema = StringEnum(SOURCE_NAMES);

const EnrichBody = Type.Object(
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

const enrichRoute: FastifyPluginAsyncTypebox = async (app) => {
  const maxIps = app.config.ENRICH_MAX_IPS;
  app.post(
    '/enrich',
    {
      schema: {
        summary: 'Enrich a list of IP addresses',
        description:
          'One result per input string, in input order (duplicates answered each time, looked up once). ' +
          'At most ENRICH_MAX_IPS strings (default 10000) per request; more is a 413.',
        tags: ['enrich'],
        body: EnrichBody,
        response: {
          200: Type.Object(
            { results: Type.Array(Type.Ref('IpRecord')), stats: Type.Ref(EnrichStatsSchema) },
            { description: 'one result per input string, in input order' },
          ),
          ...problemResponses(400, 413, 415, 500, 503),
        },
      },
      // Counted before validation so an oversized list is refused without validating every element.
      preValidation: async (request) => {
        const ips = (request.body as { ips?: unknown } | undefined)?.ips;
        if (Array.isArray(ips) && ips.length > maxIps) {
          throw tooManyAddresses(`ips has ${ips.length} entries; ENRICH_MAX_IPS allows ${maxIps} per request`);
        }
      },
    },
    async (request, reply) => {
      const { results, stats } = await app.enricher.enrich({
        inputs: request.body.ips,
        sources: request.body.sources,
        refresh: request.body.refresh,
        deadline: app.clock.now() + app.config.ENRICH_DEADLINE_MS,
      });
      return sendSerialized(reply, `{"results":[${results.join(',')}],"stats":${JSON.stringify(stats)}}`);
    },
  );
};

export default enrichRoute;
