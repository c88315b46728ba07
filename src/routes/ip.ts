import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { badRequest } from '../errors.js';
import { parseAddress } from '../ip/address.js';
import { SourceNameSchema } from './enrich.js';
import { problemResponses } from './problems.js';
import { sendSerialized } from './serialized.js';

const ipRoute: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    '/ip/:addr',
    {
      schema: {
        summary: 'Enrich one IP address',
        description: 'Answers from the stored record, enriching on demand what is missing or stale.',
        tags: ['enrich'],
        params: Type.Object({ addr: Type.String({ description: 'IPv4 or IPv6 address' }) }),
        querystring: Type.Object(
          {
            sources: Type.Optional(Type.Array(SourceNameSchema, { description: 'limit lookups to these sources' })),
            refresh: Type.Optional(Type.Boolean({ default: false, description: 'fetch again what is still fresh' })),
          },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Ref('IpRecord', { description: 'the enriched record of the address' }),
          ...problemResponses(400, 414, 500, 503),
        },
      },
    },
    async (request, reply) => {
      const parsed = parseAddress(request.params.addr);
      if (parsed.kind === 'invalid') {
        throw badRequest('invalid-address', `${JSON.stringify(request.params.addr)} is not an IP address: ${parsed.error}`);
      }
      const { results } = await app.enricher.enrich({
        inputs: [request.params.addr],
        sources: request.query.sources,
        refresh: request.query.refresh,
        deadline: app.clock.now() + app.config.ENRICH_DEADLINE_MS,
      });
      return sendSerialized(reply, results[0]!);
    },
  );
};

export default ipRoute;
