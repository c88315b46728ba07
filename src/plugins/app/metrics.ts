import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { Metrics } from '../../metrics.js';

declare module 'fastify' {
  interface FastifyInstance {
    metrics: Metrics;
  }
}

/** Prometheus metrics: per-request tallies fed by the enricher, totals read from the parts that keep them. */
async function metrics(app: FastifyInstance) {
  const { sources, limiters, tiers } = app;
  app.decorate(
    'metrics',
    new Metrics({
      cymruQueries: () => sources.cymru.stats().queries,
      cymruFailures: () => sources.cymru.stats().failures,
      limiterAdmitted: (name) => limiters[name].stats().admitted,
      limiterRefused: (name) => limiters[name].stats().refused,
      cacheErrors: () => tiers.l1.errors(),
    }),
  );
}

export default fp(metrics, { name: 'metrics', dependencies: ['sources', 'limiters', 'cache'] });
