import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';

const PROMETHEUS_TEXT = 'text/plain; version=0.0.4; charset=utf-8';

const metricsRoute: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    '/metrics',
    {
      config: { scope: 'metrics' },
      schema: {
        summary: 'Prometheus metrics: cache tiers (hits, misses, errors, latency) and upstreams (calls, errors, limited)',
        tags: ['operations'],
        response: {
          200: { description: 'Prometheus text exposition format', content: { 'text/plain': { schema: Type.String() } } },
        },
      },
    },
    async (_request, reply) => reply.type(PROMETHEUS_TEXT).send(await app.metrics.text()),
  );
};

export default metricsRoute;
