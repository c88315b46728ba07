import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';

const SourceState = Type.Object({
  status: Type.Union([Type.Literal('ready'), Type.Literal('disabled'), Type.Literal('unavailable')]),
  reason: Type.Optional(Type.String()),
  blockedUntil: Type.Optional(Type.Union([Type.String({ format: 'date-time' }), Type.Null()])),
  databases: Type.Optional(
    Type.Array(Type.Object({ type: Type.String(), path: Type.String(), buildDate: Type.String() })),
  ),
});

const Readiness = Type.Object(
  {
    status: Type.Union([Type.Literal('ready'), Type.Literal('degraded'), Type.Literal('unready')], {
      description: 'ready; degraded: answering without the Redis L1; unready: the database is unreachable',
    }),
    database: Type.Object({ status: Type.Union([Type.Literal('ok'), Type.Literal('error')]), error: Type.Optional(Type.String()) }),
    cache: Type.Object({
      kind: Type.Union([Type.Literal('redis'), Type.Literal('memory')]),
      status: Type.Union([Type.Literal('ok'), Type.Literal('degraded')]),
    }),
    sources: Type.Object({ maxmind: SourceState, cymru: SourceState, greynoise: SourceState, dshield: SourceState }),
    defaults: Type.Array(Type.String(), { description: 'built-in defaults in use because a setting is absent' }),
  },
  { $id: 'Readiness' },
);

const healthRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    '/healthz',
    {
      schema: {
        summary: 'Liveness: the process answers',
        tags: ['operations'],
        response: { 200: Type.Object({ status: Type.Literal('ok') }) },
      },
    },
    async () => ({ status: 'ok' as const }),
  );

  app.get(
    '/readyz',
    {
      schema: {
        summary: 'Readiness: database reachable, and the state of every source',
        tags: ['operations'],
        response: { 200: Readiness, 503: Readiness },
      },
    },
    async (request, reply) => {
      const { store, cache, sources, limiters, defaults } = app.services;
      const database = await store.ping().then(
        () => ({ status: 'ok' as const }),
        (error: unknown) => {
          request.log.warn({ err: error }, 'readiness: database unreachable');
          return { status: 'error' as const, error: 'database unreachable' };
        },
      );
      const limited = async (name: 'greynoise' | 'dshield') => {
        const { blockedUntil } = await limiters[name].state();
        return { ...sources[name].availability(), blockedUntil: blockedUntil ? new Date(blockedUntil).toISOString() : null };
      };
      const cacheStatus = cache.health();
      const status = database.status === 'error' ? 'unready' : cacheStatus === 'degraded' ? 'degraded' : 'ready';
      return reply.code(status === 'unready' ? 503 : 200).send({
        status,
        database,
        cache: { kind: cache.kind, status: cacheStatus },
        sources: {
          maxmind: sources.maxmind.availability(),
          cymru: { status: 'ready' as const },
          greynoise: await limited('greynoise'),
          dshield: await limited('dshield'),
        },
        defaults,
      });
    },
  );
};

export default healthRoutes;
