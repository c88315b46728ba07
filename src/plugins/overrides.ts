import type { FastifyServerOptions } from 'fastify';
import type { RecordCache } from '../cache/tier.js';
import type { Clock } from '../clock.js';
import type { EnrichStats } from '../enrich/stats.js';
import type { SourceSet } from '../enrich/sources.js';

/**
 * The parts a caller of buildApp (a test, a benchmark) may replace; each plugin takes its own from here and
 * builds the rest from the configuration.
 */
export interface AppOverrides {
  logger?: FastifyServerOptions['logger'];
  clock?: Clock;
  /** Called with every request's stats, beside the metrics. */
  onStats?: (stats: EnrichStats) => void;
  /** L1 in place of Redis or the in-process LRU. */
  cache?: RecordCache;
  /** Any source in place of the one the configuration describes. */
  sources?: Partial<SourceSet>;
}
