import { once } from 'node:events';
import { createRequire } from 'node:module';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { Redis } from 'ioredis';
import { MemoryTier } from '../cache/memory-tier.js';
import { NearTier } from '../cache/near-tier.js';
import { RedisTier } from '../cache/redis-tier.js';
import type { RecordCache } from '../cache/tier.js';
import { systemClock, type Clock } from '../clock.js';
import { durationToMs, type Config } from '../config.js';
import { connectDatabase, type DatabaseHandle } from '../db/client.js';
import { startEmbeddedDatabase } from '../db/embedded.js';
import { applyMigrations, MigrationError } from '../db/migrate.js';
import { RecordStore } from '../db/record-store.js';
import { Enricher } from '../enrich/cascade.js';
import { LookupRecorder } from '../enrich/lookup-recorder.js';
import type { EnrichStats } from '../enrich/stats.js';
import type { SourceSet } from '../enrich/sources.js';
import { UpstreamAdmission } from '../limiter/admission.js';
import { CymruClient } from '../sources/cymru.js';
import { DShieldSource } from '../sources/dshield.js';
import { GreyNoiseSource } from '../sources/greynoise.js';
import { MaxMindSource } from '../sources/maxmind.js';
import { Metrics } from '../metrics.js';
import { PRODUCT, VERSION } from '../version.js';

export interface ServiceOverrides {
  clock?: Clock;
  /** Called with every request's stats (tests and metrics). */
  onStats?: (stats: EnrichStats) => void;
}

export interface Services {
  store: RecordStore;
  cache: RecordCache;
  sources: SourceSet;
  limiters: { greynoise: UpstreamAdmission; dshield: UpstreamAdmission };
  enricher: Enricher;
  metrics: Metrics;
  clock: Clock;
  defaults: string[];
}

declare module 'fastify' {
  interface FastifyInstance {
    config: Config;
    services: Services;
  }
}

const REDIS_BOOT_WAIT_MS = 2000;

/** GeoLite2-City from the geoip-database package: a real (if dated) database that needs no licence key. */
function bundledCityDatabase(): string {
  return createRequire(import.meta.url).resolve('geoip-database/GeoLite2-City.mmdb');
}

/**
 * Builds every process-wide service once: the database (migrated before anything is served), the L1
 * cache, the sources and the limiters they share, and the enricher. Routes only ever use these.
 */
async function services(app: FastifyInstance, options: { config: Config; overrides: ServiceOverrides }) {
  const { config, overrides } = options;
  const clock = overrides.clock ?? systemClock;
  const logger = app.log;
  const defaults: string[] = [];
  const closers: Array<() => Promise<void>> = [];
  app.addHook('onClose', async () => {
    for (const close of closers.reverse()) {
      await close().catch((error: unknown) => logger.warn({ err: error }, 'error while closing a service'));
    }
  });

  let database: DatabaseHandle;
  if (config.DATABASE_URL) {
    database = connectDatabase(config.DATABASE_URL, { timeoutMs: config.DATABASE_TIMEOUT_MS });
  } else {
    const embedded = await startEmbeddedDatabase(config.DATA_DIR, { logger });
    closers.push(() => embedded.close());
    database = connectDatabase(embedded.url, { maxConnections: embedded.maxConnections, timeoutMs: config.DATABASE_TIMEOUT_MS });
    defaults.push(`DATABASE_URL unset: embedded PostgreSQL (PGlite) in DATA_DIR ${config.DATA_DIR}`);
  }
  closers.push(() => database.close());
  try {
    await applyMigrations(database.pool, { logger });
  } catch (error) {
    if (error instanceof MigrationError) throw error;
    const where = config.DATABASE_URL ? 'the database at DATABASE_URL' : `the embedded database in DATA_DIR ${config.DATA_DIR}`;
    throw new Error(`cannot reach ${where}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
  const store = new RecordStore(database);

  let redis: Redis | undefined;
  if (config.REDIS_URL) {
    redis = new Redis(config.REDIS_URL, {
      // Fail fast instead of queueing while Redis is away: a cache must never hold a request up.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: 250,
      retryStrategy: (attempt) => Math.min(attempt * 200, 2000),
    });
    redis.on('error', () => undefined);
    const client = redis;
    closers.push(async () => void client.disconnect());
    // Give the connection a moment before serving, so the first requests use L1; an unreachable Redis only
    // means starting degraded, never a failed boot.
    const ready = await Promise.race([
      once(client, 'ready').then(
        () => true,
        () => false,
      ),
      new Promise<false>((resolve) => setTimeout(resolve, REDIS_BOOT_WAIT_MS, false).unref()),
    ]);
    if (!ready) logger.warn(`Redis at REDIS_URL is not answering; serving without L1 until it does`);
  }
  const memory = (ttlSeconds: number) => new MemoryTier({ maxEntries: config.L1_MAX_ENTRIES, ttlMs: ttlSeconds * 1000 });
  let cache: RecordCache = memory(config.L1_TTL_SECONDS);
  if (redis) {
    cache = new RedisTier(redis, { keyPrefix: config.REDIS_KEY_PREFIX, ttlSeconds: config.L1_TTL_SECONDS, logger });
    if (config.L1_LOCAL_TTL_SECONDS > 0) cache = new NearTier(memory(Math.min(config.L1_LOCAL_TTL_SECONDS, config.L1_TTL_SECONDS)), cache);
  }
  if (!redis) defaults.push(`REDIS_URL unset: in-process LRU L1 (${config.L1_MAX_ENTRIES} entries)`);
  closers.push(() => cache.close());

  const cityDb = config.MAXMIND_CITY_DB ?? bundledCityDatabase();
  if (!config.MAXMIND_CITY_DB) defaults.push(`MAXMIND_CITY_DB unset: bundled GeoLite2-City from geoip-database (${cityDb})`);
  const maxmind = await MaxMindSource.open({ cityDb, asnDb: config.MAXMIND_ASN_DB, logger });
  closers.push(() => maxmind.close());

  const limiter = (name: 'greynoise' | 'dshield', rate: number, burst: number, maxInFlight: number) =>
    new UpstreamAdmission({ name, rate, burst, maxInFlight, clock, redis, keyPrefix: `${config.REDIS_KEY_PREFIX}limit:`, logger });
  const limiters = {
    greynoise: limiter('greynoise', config.GREYNOISE_RATE, config.GREYNOISE_BURST, config.GREYNOISE_MAX_IN_FLIGHT),
    dshield: limiter('dshield', config.DSHIELD_RATE, config.DSHIELD_BURST, config.DSHIELD_MAX_IN_FLIGHT),
  };
  const greynoise = new GreyNoiseSource({
    baseUrl: config.GREYNOISE_API_URL,
    apiKey: config.GREYNOISE_API_KEY,
    admission: limiters.greynoise,
    reprobeMs: durationToMs(config.GREYNOISE_REPROBE),
    clock,
    logger,
  });
  closers.push(() => greynoise.close());
  const dshield = new DShieldSource({
    baseUrl: config.DSHIELD_API_URL,
    contact: config.DSHIELD_CONTACT,
    version: VERSION,
    admission: limiters.dshield,
    clock,
    logger,
  });
  closers.push(() => dshield.close());
  const cymru = new CymruClient({
    host: config.CYMRU_WHOIS_HOST,
    port: config.CYMRU_WHOIS_PORT,
    batchSize: config.CYMRU_BATCH_SIZE,
    maxConnections: config.CYMRU_MAX_CONNECTIONS,
    timeoutMs: config.CYMRU_TIMEOUT_MS,
    retries: config.CYMRU_RETRIES,
    clock,
    logger,
  });
  const sources: SourceSet = { maxmind, cymru, greynoise, dshield };
  const metrics = new Metrics({
    cymruQueries: () => cymru.stats().queries,
    cymruFailures: () => cymru.stats().failures,
    limiterAdmitted: (name) => limiters[name].stats().admitted,
    limiterRefused: (name) => limiters[name].stats().refused,
    cacheErrors: () => cache.errors(),
  });

  const lookups = new LookupRecorder(store, clock, logger);
  closers.push(() => lookups.close());
  const enricher = new Enricher({
    sources,
    store,
    cache,
    clock,
    chunkSize: config.CYMRU_BATCH_SIZE,
    lookups,
    freshness: {
      cymru: durationToMs(config.TTL_CYMRU),
      greynoise: durationToMs(config.TTL_GREYNOISE),
      dshield: durationToMs(config.TTL_DSHIELD),
    },
    onStats: (stats) => {
      metrics.observe(stats);
      overrides.onStats?.(stats);
    },
  });

  for (const line of defaults) logger.info(`${PRODUCT} default in use: ${line}`);
  app.decorate('services', { store, cache, sources, limiters, enricher, metrics, clock, defaults });
}

export default fp(services, { name: 'services' });
