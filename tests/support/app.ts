import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { buildApp, type AppOverrides } from '../../src/app.js';
import { loadConfig, type Config } from '../../src/config.js';
import { startCymruWhois, type CymruWhoisDouble, type CymruWhoisOptions } from '../doubles/cymru-whois.js';
import { HttpUpstreamDouble, type HttpUpstreamDoubleOptions } from '../doubles/http-upstream.js';
import { createTestDatabase, type TestDatabase } from './database.js';
import { writeMmdb } from './mmdb-writer.js';
import { startTcpProxy, type TcpProxy } from './tcp-proxy.js';

export interface Harness {
  app: FastifyInstance;
  config: Config;
  database: TestDatabase;
  cymru: CymruWhoisDouble;
  greynoise: HttpUpstreamDouble;
  dshield: HttpUpstreamDouble;
  mmdbDir: string;
  /** Closes the app only (the database, doubles and files stay), e.g. to boot a second instance. */
  restart(overrides?: Partial<Config>): Promise<FastifyInstance>;
  close(): Promise<void>;
}

export interface HarnessOptions {
  config?: Partial<Config>;
  overrides?: AppOverrides;
  cymru?: CymruWhoisOptions;
  upstream?: HttpUpstreamDoubleOptions;
  /** Share this database instead of creating one (several app instances on one store). */
  database?: TestDatabase;
}

const epoch = (date: string) => Date.parse(`${date}T00:00:00Z`) / 1000;

/**
 * Real MaxMind files for the tests: City knows 81.2.69.0/24 (London) and 2a02:d8::/32 (Stockholm); ASN
 * knows 81.2.0.0/16 and 2a02:d8::/32. Everything else has no ASN in MaxMind, so it goes to Team Cymru.
 */
export async function writeTestMaxMind(dir: string): Promise<{ city: string; asn: string }> {
  const city = join(dir, 'GeoLite2-City.mmdb');
  const asn = join(dir, 'GeoLite2-ASN.mmdb');
  const place = (iso: string, country: string, name: string, latitude: number, longitude: number, zone: string) => ({
    city: { geoname_id: 1, names: { en: name } },
    country: { geoname_id: 2, iso_code: iso, names: { en: country } },
    location: { accuracy_radius: 20, latitude, longitude, time_zone: zone },
  });
  await writeMmdb(city, {
    databaseType: 'GeoLite2-City',
    buildEpoch: epoch('2026-11-17'),
    networks: [
      { cidr: '81.2.69.0/24', data: place('GB', 'United Kingdom', 'London', 51.5142, -0.0931, 'Europe/London') },
      { cidr: '2a02:d8::/32', data: place('SE', 'Sweden', 'Stockholm', 59.3294, 18.0686, 'Europe/Stockholm') },
      { cidr: '8.8.8.0/24', data: { country: { geoname_id: 3, iso_code: 'US', names: { en: 'United States' } } } },
    ],
  });
  await writeMmdb(asn, {
    databaseType: 'GeoLite2-ASN',
    buildEpoch: epoch('2026-11-17'),
    networks: [
      { cidr: '81.2.0.0/16', data: { autonomous_system_number: 20712, autonomous_system_organization: 'Andrews & Arnold Ltd' } },
      { cidr: '2a02:d8::/32', data: { autonomous_system_number: 8473, autonomous_system_organization: 'Bahnhof AB' } },
    ],
  });
  return { city, asn };
}

/** The whole service on real PostgreSQL, real MaxMind files and local upstream doubles. */
export async function startHarness(options: HarnessOptions = {}): Promise<Harness> {
  const database = options.database ?? (await createTestDatabase());
  const cymru = await startCymruWhois(options.cymru);
  const greynoise = await HttpUpstreamDouble.start(options.upstream);
  const dshield = await HttpUpstreamDouble.start(options.upstream);
  const mmdbDir = await mkdtemp(join(tmpdir(), 'ipenrich-mmdb-'));
  const files = await writeTestMaxMind(mmdbDir);
  const redisKeyPrefix = `ipenrich-test:${randomBytes(6).toString('hex')}:`;
  const baseConfig = (extra: Partial<Config> = {}) =>
    loadConfig(
      {},
      {
        DATABASE_URL: database.url,
        LOG_LEVEL: 'warn',
        MAXMIND_CITY_DB: files.city,
        MAXMIND_ASN_DB: files.asn,
        CYMRU_WHOIS_HOST: cymru.host,
        CYMRU_WHOIS_PORT: cymru.port,
        CYMRU_TIMEOUT_MS: 2000,
        GREYNOISE_API_URL: greynoise.url,
        GREYNOISE_RATE: 1000,
        GREYNOISE_BURST: 1000,
        DSHIELD_API_URL: dshield.url,
        DSHIELD_CONTACT: 'soc@example.org',
        DSHIELD_RATE: 1000,
        DSHIELD_BURST: 1000,
        REDIS_KEY_PREFIX: redisKeyPrefix,
        ...options.config,
        ...extra,
      },
    );
  const config = baseConfig();
  const logger = options.overrides?.logger ?? { level: config.LOG_LEVEL };
  let app = await buildApp(config, { ...options.overrides, logger });
  const harness: Harness = {
    get app() {
      return app;
    },
    config,
    database,
    cymru,
    greynoise,
    dshield,
    mmdbDir,
    async restart(extra) {
      await app.close();
      app = await buildApp(baseConfig(extra), { ...options.overrides, logger });
      return app;
    },
    async close() {
      await app.close();
      await Promise.all([cymru.close(), greynoise.close(), dshield.close()]);
      await rm(mmdbDir, { recursive: true, force: true });
      if (!options.database) await database.drop();
    },
  };
  return harness;
}

/** Listens on a free loopback port; resolves to the service's origin (`http://127.0.0.1:PORT`). */
export async function listenOnLoopback(harness: Harness): Promise<string> {
  await harness.app.listen({ host: '127.0.0.1', port: 0 });
  const address = harness.app.server.address();
  if (address === null || typeof address === 'string') throw new Error('the service does not listen on a port');
  return `http://127.0.0.1:${address.port}`;
}

/** A harness whose database connections pass through a TCP proxy that a test can freeze. */
export async function startHarnessBehindProxy(config: Partial<Config>): Promise<{ harness: Harness; proxy: TcpProxy; database: TestDatabase }> {
  const database = await createTestDatabase();
  const url = new URL(database.url);
  const proxy = await startTcpProxy({ host: url.hostname, port: Number(url.port || 5432) });
  url.port = String(proxy.port);
  const harness = await startHarness({ database, config: { ...config, DATABASE_URL: url.toString() } });
  return { harness, proxy, database };
}

/**
 * The environment that points a child process (the built service or command) at the upstream doubles and the
 * test MaxMind files, with budgets no test runs into.
 */
export function upstreamEnv(upstreams: { cymru: CymruWhoisDouble; greynoise: HttpUpstreamDouble; dshield: HttpUpstreamDouble }, mmdb: { city: string; asn: string }): Record<string, string> {
  return {
    MAXMIND_CITY_DB: mmdb.city,
    MAXMIND_ASN_DB: mmdb.asn,
    CYMRU_WHOIS_HOST: upstreams.cymru.host,
    CYMRU_WHOIS_PORT: String(upstreams.cymru.port),
    GREYNOISE_API_URL: upstreams.greynoise.url,
    GREYNOISE_RATE: '1000',
    GREYNOISE_BURST: '1000',
    DSHIELD_API_URL: upstreams.dshield.url,
    DSHIELD_CONTACT: 'soc@example.org',
    DSHIELD_RATE: '1000',
    DSHIELD_BURST: '1000',
  };
}
