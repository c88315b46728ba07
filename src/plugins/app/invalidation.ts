import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { publishInvalidation, subscribePostgres, subscribeRedis, type Invalidation, type Subscription } from '../../auth/invalidation.js';
import { errorMessage } from '../../errors/message.js';

export interface Invalidations {
  /** Applies the invalidation here at once, and sends it to every other replica. */
  publish(message: Invalidation): Promise<void>;
  on(handler: (message: Invalidation) => void): void;
}

declare module 'fastify' {
  interface FastifyInstance {
    invalidations: Invalidations;
  }
}

/**
 * What one replica must tell the others at once: a revoked key, deleted records. On Redis pub/sub when
 * REDIS_URL is set; without it, PostgreSQL's LISTEN/NOTIFY on DATABASE_URL (replicas share at least the
 * database); the embedded database has a single instance, so there is nobody to tell.
 */
async function invalidations(app: FastifyInstance) {
  const { config, redis, database } = app;
  const handlers: Array<(message: Invalidation) => void> = [];
  const deliver = (message: Invalidation) => {
    for (const handler of handlers) handler(message);
  };
  let subscription: Subscription | undefined;
  if (redis) subscription = await subscribeRedis(redis, config.REDIS_KEY_PREFIX, deliver, app.log);
  else if (config.DATABASE_URL) subscription = subscribePostgres(config.DATABASE_URL, deliver, app.log);
  app.addHook('onClose', async () => subscription?.close());
  const transport = redis ? { redis, keyPrefix: config.REDIS_KEY_PREFIX } : config.DATABASE_URL ? { pool: database.pool } : undefined;
  app.decorate<Invalidations>('invalidations', {
    async publish(message) {
      deliver(message);
      if (!transport) return;
      await publishInvalidation(transport, message).catch((error: unknown) =>
        app.log.warn(`could not tell the other replicas (${message.kind}): ${errorMessage(error)}`),
      );
    },
    on(handler) {
      handlers.push(handler);
    },
  });
}

export default fp(invalidations, { name: 'invalidations', dependencies: ['database', 'redis'] });
