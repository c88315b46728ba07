import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { ProblemError } from '../errors/problem.js';
import { EnrichAnswerSchema, EnrichBodySchema } from '../schemas/enrich.js';
import { problemResponses } from './problems.js';
import { sendInOrder } from './serialized.js';

const enrichRoute: FastifyPluginAsyncTypebox = async (app) => {
  const maxIps = app.config.ENRICH_MAX_IPS;
  app.post(
    '/enrich',
    {
      config: { scope: 'enrich' },
      schema: {
        summary: 'Enrich a list of IP addresses',
        description:
          'One result per input string, in input order (duplicates answered each time, looked up once). ' +
          'At most ENRICH_MAX_IPS strings (default 10000) per request; more is a 413.',
        tags: ['enrich'],
        body: EnrichBodySchema,
        response: {
          200: EnrichAnswerSchema,
          ...problemResponses(
            'invalid-json',
            'invalid-request',
            'too-many-addresses',
            'body-too-large',
            'unsupported-media-type',
            'internal-error',
            'database-unavailable',
          ),
        },
      },
      // Counted before validation so an oversized list is refused without validating every element.
      preValidation: async (request) => {
        const ips = (request.body as { ips?: unknown } | undefined)?.ips;
        if (Array.isArray(ips) && ips.length > maxIps) {
          throw new ProblemError('too-many-addresses', `ips has ${ips.length} entries; ENRICH_MAX_IPS allows ${maxIps} per request`);
        }
      },
    },
    async (request, reply) =>
      sendInOrder(reply, (sink) =>
        app.enricher.enrichInOrder(
          {
            inputs: request.body.ips,
            sources: request.body.sources,
            refresh: request.body.refresh,
            deadline: app.clock.now() + app.config.ENRICH_DEADLINE_MS,
          },
          sink,
        ),
      ),
  );
};

export default enrichRoute;
