import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { StringEnum } from '../schema.js';

const healthRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    '/healthz',
    {
      schema: {
        summary: 'Liveness: the process answers',
        tags: ['operations'],
        response: { 200: Type.Object({ status: StringEnum(['ok']) }, { description: 'the process is alive' }) },
      },
    },
    async () => ({ status: 'ok' as const }),
  );

  app.get(
    '/readyz',
    {
      schema: {
        summary: 'Readiness: database reachable, and the state of Redis, the cache and every source',
        tags: ['operations'],
        response: {
          200: Type.Ref('Readiness', { description: 'the service can answer (possibly degraded)' }),
          503: Type.Ref('Readiness', { description: 'the database is unreachable' }),
        },
      },
    },
    async (_request, reply) => {
      const report = await app.readiness.report();
      return reply.code(report.status === 'unready' ? 503 : 200).send(report);
    },
  );
};

export default healthRoutes;
