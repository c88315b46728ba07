import type { FastifyInstance, onResponseHookHandler } from 'fastify';
import fp from 'fastify-plugin';
import { RATE_LIMITED_SOURCES } from '../../enrich/plan.js';
import { Metrics } from '../../metrics.js';
import { appendRouteHook } from '../route-hooks.js';

declare module 'fastify' {
  interface FastifyInstance {
    metrics: Metrics;
  }
}

/**
 * Prometheus metrics: per-request tallies fed by the enricher, totals read from the parts that keep them,
 * states read when scraped (readiness, Retry-After blocks), and each route's answers timed by a hook of its
 * own, so that no request looks its route up.
 */
async function metrics(app: FastifyInstance) {
  const { sources, limiters, tiers, readiness, clock } = app;
  const service = new Metrics({
    cymruQueries: () => sources.cymru.stats().queries,
    cymruFailures: () => sources.cymru.stats().failures,
    limiterAdmitted: (name) => limiters[name].stats().admitted,
    limiterRefused: (name) => limiters[name].stats().refused,
    cacheErrors: () => tiers.l1.errors(),
  });
  service.trackReadiness(() => readiness.report());
  service.trackBlocks(
    RATE_LIMITED_SOURCES,
    async (source) => (await limiters[source].state()).blockedUntil,
    () => clock.now(),
  );
  app.addHook('onRoute', (route) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    const observe = service.routeTimer(methods.join(','), route.url);
    const timed: onResponseHookHandler = (_request, reply, done) => {
      observe(reply.statusCode, reply.elapsedTime / 1000);
      done();
    };
    appendRouteHook(route, 'onResponse', timed);
  });
  app.decorate('metrics', service);
}

export default fp(metrics, { name: 'metrics', dependencies: ['readiness', 'sources', 'limiters', 'cache'] });
