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
/** How often a connected Redis is asked whether it still answers. */
const PROBE_MS = 1000;
/** Probes in a row without an answer after which a connected Redis is taken for gone. */
const FROZEN_AFTER = 2;

/**
 * A Redis that stops answering without closing the connection (a stopped process, a frozen network) keeps
 * the client `ready` while every command times out: the L1 and the limiters would each wait for their
 * timeout on every request, and /readyz would say ready. A probe that goes unanswered twice drops the
 * connection instead; ioredis then reconnects, and stays short of `ready` until the server answers its ready
 * check, so until then everything skips Redis at once, as it does when Redis is down. Returns whether the
 * last probe was answered.
 */
function watchFreezes(client: Redis, log: FastifyInstance['log']): { answering(): boolean; stop(): void } {
  let missed = 0;
  const probe = setInterval(() => {
    if (client.status !== 'ready') return;
    client.ping().then(
      () => (missed = 0),
      () => {
        missed += 1;
        if (missed < FROZEN_AFTER) return;
        log.warn(`Redis at REDIS_URL stopped answering (${FROZEN_AFTER} probes timed out); serving without it until it answers again`);
        missed = 0;
        client.disconnect(true);
      },
    );
  }, PROBE_MS).unref();
  return { answering: () => client.status === 'ready' && missed === 0, stop: () => clearInterval(probe) };
}

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
  const freezes = watchFreezes(client, app.log);
  app.addHook('onClose', async () => {
    freezes.stop();
    client.disconnect();
  });
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
  app.readiness.add('redis', () => ({ status: freezes.answering() ? ('ok' as const) : ('unreachable' as const) }));
  app.decorate('redis', client);
}

export default fp(redis, { name: 'redis', dependencies: ['readiness'] });
