import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Nullable, StringEnum } from '../schema.js';

const SourceState = Type.Object({
  status: StringEnum(['ready', 'disabled', 'unavailable']),
  reason: Type.Optional(Type.String()),
  blockedUntil: Type.Optional(Nullable(Type.String({ format: 'date-time', description: 'no request leaves before this' }))),
  databases: Type.Optional(
    Type.Array(Type.Object({ type: Type.String(), path: Type.String(), buildDate: Type.String() })),
  ),
});

export const ReadinessSchema = Type.Object(
  {
    status: StringEnum(['ready', 'degraded', 'unready'], {
      description: 'ready; degraded: answering without the Redis L1; unready: the database is unreachable',
    }),
    database: Type.Object({ status: StringEnum(['ok', 'error']), error: Type.Optional(Type.String()) }),
    cache: Type.Object({
      kind: StringEnum(['redis', 'memory']),
      status: StringEnum(['ok', 'degraded']),
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
        response: { 200: Type.Object({ status: StringEnum(['ok']) }, { description: 'the process is alive' }) },
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
        response: {
          200: Type.Ref('Readiness', { description: 'the service can answer (possibly degraded)' }),
          503: Type.Ref('Readiness', { description: 'the database is unreachable' }),
        },
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
