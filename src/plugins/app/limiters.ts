import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { UpstreamAdmission } from '../../limiter/admission.js';
import type { RateLimitedSource } from '../../enrich/plan.js';

export type Limiters = Record<RateLimitedSource, UpstreamAdmission>;

declare module 'fastify' {
  interface FastifyInstance {
    /**
     * One admission per rate-limited upstream: its queue, in-flight cap and budget, shared by every request
     * (and, with Redis, the budget by every replica).
     */
    limiters: Limiters;
  }
}

async function limiters(app: FastifyInstance) {
  const { config, redis, clock } = app;
  const limiter = (name: RateLimitedSource, rate: number, burst: number, maxInFlight: number) =>
    new UpstreamAdmission({ name, rate, burst, maxInFlight, clock, redis, keyPrefix: `${config.REDIS_KEY_PREFIX}limit:`, logger: app.log });
  app.decorate('limiters', {
    greynoise: limiter('greynoise', config.GREYNOISE_RATE, config.GREYNOISE_BURST, config.GREYNOISE_MAX_IN_FLIGHT),
    dshield: limiter('dshield', config.DSHIELD_RATE, config.DSHIELD_BURST, config.DSHIELD_MAX_IN_FLIGHT),
  });
}

export default fp(limiters, { name: 'limiters', dependencies: ['redis'] });
