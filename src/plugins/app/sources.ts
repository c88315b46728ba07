import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { durationToMs } from '../../config.js';
import type { RateLimitedSource } from '../../enrich/plan.js';
import type { SourceSet } from '../../enrich/sources.js';
import { CymruClient } from '../../sources/cymru.js';
import { DShieldSource } from '../../sources/dshield.js';
import { GreyNoiseSource } from '../../sources/greynoise.js';
import { VERSION } from '../../version.js';
import type { AppOverrides } from '../overrides.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** Every upstream the cascade consults, built once per process. */
    sources: SourceSet;
  }
}

async function sources(app: FastifyInstance, overrides: AppOverrides) {
  const { config, clock, limiters } = app;
  const logger = app.log;
  const given = overrides.sources ?? {};
  const set: SourceSet = {
    maxmind: given.maxmind ?? app.maxmind,
    cymru:
      given.cymru ??
      new CymruClient({
        host: config.CYMRU_WHOIS_HOST,
        port: config.CYMRU_WHOIS_PORT,
        batchSize: config.CYMRU_BATCH_SIZE,
        maxConnections: config.CYMRU_MAX_CONNECTIONS,
        timeoutMs: config.CYMRU_TIMEOUT_MS,
        retries: config.CYMRU_RETRIES,
        clock,
        logger,
      }),
    greynoise:
      given.greynoise ??
      new GreyNoiseSource({
        baseUrl: config.GREYNOISE_API_URL,
        apiKey: config.GREYNOISE_API_KEY,
        admission: limiters.greynoise,
        reprobeMs: durationToMs(config.GREYNOISE_REPROBE),
        clock,
        logger,
      }),
    dshield:
      given.dshield ??
      new DShieldSource({
        baseUrl: config.DSHIELD_API_URL,
        contact: config.DSHIELD_CONTACT,
        version: VERSION,
        admission: limiters.dshield,
        clock,
        logger,
      }),
  };
  app.addHook('onClose', async () => {
    set.cymru.close();
    await Promise.all([set.greynoise.close(), set.dshield.close()]);
  });

  const limited = async (name: RateLimitedSource) => {
    const { blockedUntil } = await limiters[name].state();
    return { ...set[name].availability(), blockedUntil: blockedUntil ? new Date(blockedUntil).toISOString() : null };
  };
  app.readiness.add('cymru', () => set.cymru.health());
  app.readiness.add('greynoise', () => limited('greynoise'));
  app.readiness.add('dshield', () => limited('dshield'));
  app.decorate('sources', set);
}

export default fp(sources, { name: 'sources', dependencies: ['readiness', 'maxmind', 'limiters'] });
