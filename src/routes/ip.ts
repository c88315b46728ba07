import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { ProblemError } from '../errors/problem.js';
import { parseAddress } from '../ip/address.js';
import { IpParamsSchema, IpQuerySchema } from '../schemas/ip.js';
import { problemResponses } from './problems.js';
import { sendSerialized } from './serialized.js';

const ipRoute: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    '/ip/:addr',
    {
      config: { scope: 'lookup' },
      schema: {
        summary: 'Enrich one IP address',
        description: 'Answers from the stored record, enriching on demand what is missing or stale.',
        tags: ['enrich'],
        params: IpParamsSchema,
        querystring: IpQuerySchema,
        response: {
          200: Type.Ref('IpRecord', { description: 'the enriched record of the address' }),
          ...problemResponses('invalid-address', 'invalid-request', 'uri-too-long', 'internal-error', 'database-unavailable'),
        },
      },
    },
    async (request, reply) => {
      const parsed = parseAddress(request.params.addr);
      if (parsed.kind === 'invalid') {
        throw new ProblemError('invalid-address', `${JSON.stringify(request.params.addr)} is not an IP address: ${parsed.error}`);
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
