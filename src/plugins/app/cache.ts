import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { MemoryTier } from '../../cache/memory-tier.js';
import { NearTier } from '../../cache/near-tier.js';
import { RedisTier } from '../../cache/redis-tier.js';
import { TieredLoader } from '../../cache/tiered-loader.js';
import type { RecordCache } from '../../cache/tier.js';
import { RecordStore } from '../../db/record-store.js';
import type { AppOverrides } from '../overrides.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** The stored records (L2), read and written by the cascade. */
    records: RecordStore;
    /** L1 then L2, in front of the upstreams. */
    tiers: TieredLoader;
  }
}

/**
 * How the process-local copy's records reach Redis: in batches between requests, each waiting at most
 * WRITE_BEHIND_MAX_MS while requests keep coming. A batch is about 2–4 ms of the main thread.
 */
const WRITE_BEHIND_MAX_MS = 2000;
const WRITE_BEHIND_BATCH = 250;
const WRITE_BEHIND_POLL_MS = 5;

/** L1 from the settings: Redis with a process-local copy in front, or an in-process LRU without Redis. */
function buildL1(app: FastifyInstance): RecordCache {
  const { config, redis } = app;
  const memory = (ttlSeconds: number) => new MemoryTier({ maxEntries: config.L1_MAX_ENTRIES, ttlMs: ttlSeconds * 1000 });
  if (!redis) {
    app.readiness.noteDefault(`REDIS_URL unset: in-process LRU L1 (${config.L1_MAX_ENTRIES} entries)`);
    return memory(config.L1_TTL_SECONDS);
  }
  const shared = new RedisTier(redis, { keyPrefix: config.REDIS_KEY_PREFIX, ttlSeconds: config.L1_TTL_SECONDS, logger: app.log });
  if (config.L1_LOCAL_TTL_SECONDS === 0) return shared;
  // Requests being answered, from their first byte until their last was sent (or the client went away).
  let answering = 0;
  app.addHook('onRequest', (_request, reply, done) => {
    answering += 1;
    reply.raw.once('close', () => (answering -= 1));
    done();
  });
  return new NearTier(memory(Math.min(config.L1_LOCAL_TTL_SECONDS, config.L1_TTL_SECONDS)), shared, {
    busy: () => answering > 0,
    maxDelayMs: WRITE_BEHIND_MAX_MS,
    batch: WRITE_BEHIND_BATCH,
    pollMs: WRITE_BEHIND_POLL_MS,
  });
}

async function cache(app: FastifyInstance, overrides: AppOverrides) {
  const l1 = overrides.cache ?? buildL1(app);
  app.addHook('onClose', () => l1.close());
  const records = new RecordStore(app.database);
  app.readiness.add('cache', () => ({ kind: l1.kind, status: l1.health() }));
  app.decorate('records', records);
  app.decorate('tiers', new TieredLoader(l1, records));
}

export default fp(cache, { name: 'cache', dependencies: ['readiness', 'database', 'redis'] });
