import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { durationToMs } from '../../config.js';
import { Enricher } from '../../enrich/cascade.js';
import { LookupRecorder } from '../../enrich/lookup-recorder.js';
import type { AppOverrides } from '../overrides.js';

declare module 'fastify' {
  interface FastifyInstance {
    enricher: Enricher;
  }
}

async function enricher(app: FastifyInstance, overrides: AppOverrides) {
  const { config, clock, metrics } = app;
  const lookups = new LookupRecorder(app.records, clock, app.log);
  const enricher = new Enricher({
    sources: app.sources,
    tiers: app.tiers,
    store: app.records,
    clock,
    chunkSize: config.CYMRU_BATCH_SIZE,
    lookups,
    freshness: {
      cymru: durationToMs(config.TTL_CYMRU),
      greynoise: durationToMs(config.TTL_GREYNOISE),
      dshield: durationToMs(config.TTL_DSHIELD),
    },
    onStats: (stats, kind) => {
      metrics.observe(stats, kind);
      if (kind === 'request') overrides.onStats?.(stats);
    },
  });
  app.addHook('onClose', async () => {
    await enricher.close();
    await lookups.close();
  });
  app.decorate('enricher', enricher);
}

export default fp(enricher, { name: 'enricher', dependencies: ['cache', 'sources', 'metrics'] });
