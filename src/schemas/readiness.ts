import { Type, type Static } from '@sinclair/typebox';
import { Nullable, StringEnum } from '../schema.js';

const SourceStateSchema = Type.Object({
  status: StringEnum(['ready', 'failing', 'disabled', 'unavailable'], {
    description:
      'ready; failing: the last queries failed (reason, since); disabled: switched off (reason says why); ' +
      'unavailable: not configured or not loaded',
  }),
  reason: Type.Optional(Type.String()),
  refused: Type.Optional(
    Type.Literal(true, { description: 'disabled because the upstream refused our credentials; probed again later' }),
  ),
  since: Type.Optional(Type.String({ format: 'date-time', description: 'when the failures began' })),
  blockedUntil: Type.Optional(Nullable(Type.String({ format: 'date-time', description: 'no request leaves before this' }))),
  databases: Type.Optional(
    Type.Array(Type.Object({ type: Type.String(), path: Type.String(), buildDate: Type.String() })),
  ),
});
export type SourceState = Static<typeof SourceStateSchema>;

const DatabaseStateSchema = Type.Object({ status: StringEnum(['ok', 'error']), error: Type.Optional(Type.String()) });
export type DatabaseState = Static<typeof DatabaseStateSchema>;

const RedisStateSchema = Type.Object({
  status: StringEnum(['ok', 'unreachable', 'off'], { description: 'off: REDIS_URL is not set' }),
});
export type RedisState = Static<typeof RedisStateSchema>;

const CacheStateSchema = Type.Object({
  kind: StringEnum(['redis', 'memory']),
  status: StringEnum(['ok', 'degraded']),
});
export type CacheState = Static<typeof CacheStateSchema>;

export const ReadinessSchema = Type.Object(
  {
    status: StringEnum(['ready', 'degraded', 'unready'], {
      description: 'ready; degraded: answering without the Redis L1; unready: the database is unreachable',
    }),
    database: DatabaseStateSchema,
    redis: RedisStateSchema,
    cache: CacheStateSchema,
    sources: Type.Object({
      maxmind: SourceStateSchema,
      cymru: SourceStateSchema,
      greynoise: SourceStateSchema,
      dshield: SourceStateSchema,
    }),
    defaults: Type.Array(Type.String(), { description: 'built-in defaults in use because a setting is absent' }),
  },
  { $id: 'Readiness' },
);
export type Readiness = Static<typeof ReadinessSchema>;
