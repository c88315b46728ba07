import type { Static } from '@sinclair/typebox';
import type { EnrichStatsSchema, SourceCountersSchema } from '../schemas/enrich.js';

export type EnrichStats = Static<typeof EnrichStatsSchema>;
export type SourceCounters = Static<typeof SourceCountersSchema>;
