import { once } from 'node:events';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { Redis } from 'ioredis';

declare module 'fastify' {
  interface FastifyInstance {
    /** The shared Redis (L1 and the limiters' budgets), or undefined when REDIS_URL is unset. */
    redis: Redis | undefined;
  }
}

const BOOT_WAIT_MS = 2000;

/** Redis at REDIS_URL, optional: without it the cache and the limiters keep everything in process. */
async function redis(app: FastifyInstance) {
  const url = app.config.REDIS_URL;
  if (!url) {
    app.readiness.add('redis', () => ({ status: 'off' as const }));
    app.decorate('redis', undefined);
    return;
  }
  const client = new Redis(url, {
    // Fail fast instead of queueing while Redis is away: a cache must never hold a request up.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: 250,
    retryStrategy: (attempt) => Math.min(attempt * 200, 2000),
  });
  client.on('error', () => undefined);
  app.addHook('onClose', async () => void client.disconnect());
  // Give the connection a moment before serving, so the first requests use L1; an unreachable Redis only
  // means starting degraded, never a failed boot.
  const ready = await Promise.race([
    once(client, 'ready').then(
      () => true,
      () => false,
    ),
    new Promise<false>((resolve) => setTimeout(resolve, BOOT_WAIT_MS, false).unref()),
  ]);
  if (!ready) app.log.warn('Redis at REDIS_URL is not answering; serving without L1 until it does');
  app.readiness.add('redis', () => ({ status: client.status === 'ready' ? ('ok' as const) : ('unreachable' as const) }));
  app.decorate('redis', client);
}

export default fp(redis, { name: 'redis', dependencies: ['readiness'] });
