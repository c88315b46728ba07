import { createRequire } from 'node:module';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { MaxMindSource } from '../../sources/maxmind.js';

declare module 'fastify' {
  interface FastifyInstance {
    maxmind: MaxMindSource;
  }
}

/** GeoLite2-City from the geoip-database package: a real (if dated) database that needs no licence key. */
function bundledCityDatabase(): string {
  return createRequire(import.meta.url).resolve('geoip-database/GeoLite2-City.mmdb');
}

/** The MaxMind databases, opened at boot and watched for updates; a file that fails to load shows in /readyz. */
async function maxmind(app: FastifyInstance) {
  const { config } = app;
  const cityDb = config.MAXMIND_CITY_DB ?? bundledCityDatabase();
  if (!config.MAXMIND_CITY_DB) app.readiness.noteDefault(`MAXMIND_CITY_DB unset: bundled GeoLite2-City from geoip-database (${cityDb})`);
  const source = await MaxMindSource.open({ cityDb, asnDb: config.MAXMIND_ASN_DB, logger: app.log });
  app.addHook('onClose', () => source.close());
  app.readiness.add('maxmind', () => source.availability());
  app.decorate('maxmind', source);
}

export default fp(maxmind, { name: 'maxmind', dependencies: ['readiness'] });
