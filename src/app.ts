import swagger from '@fastify/swagger';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Ajv, type Options as AjvOptions } from 'ajv';
import addFormats from 'ajv-formats';
import Fastify, { LogController, type FastifyInstance } from 'fastify';
import { systemClock, type Clock } from './clock.js';
import type { Config } from './config.js';
import { answerClientError, answerFrameworkError, logsRequests, registerProblemHandlers } from './errors/handlers.js';
import auth from './plugins/app/auth.js';
import cache from './plugins/app/cache.js';
import cors from './plugins/app/cors.js';
import enricher from './plugins/app/enricher.js';
import invalidations from './plugins/app/invalidation.js';
import jobs from './plugins/app/jobs.js';
import limiters from './plugins/app/limiters.js';
import metrics from './plugins/app/metrics.js';
import readiness from './plugins/app/readiness.js';
import recordRemoval from './plugins/app/record-deletion.js';
import { echoRequestIds, requestId } from './plugins/app/request-id.js';
import sources from './plugins/app/sources.js';
import database from './plugins/external/database.js';
import maxmind from './plugins/external/maxmind.js';
import redis from './plugins/external/redis.js';
import type { AppOverrides } from './plugins/overrides.js';
import { serviceLogger } from './plugins/app/logger.js';
import enrichRoute from './routes/enrich.js';
import healthRoutes from './routes/health.js';
import ipRoute from './routes/ip.js';
import jobRoutes from './routes/jobs.js';
import metricsRoute from './routes/metrics.js';
import recordRoutes from './routes/records.js';
import { declareSecurity, SECURITY_SCHEMES } from './routes/security.js';
import { EnrichStatsSchema } from './schemas/enrich.js';
import { JOB_SCHEMAS } from './schemas/jobs.js';
import { ProblemSchema } from './schemas/problem.js';
import { ReadinessSchema } from './schemas/readiness.js';
import { RECORD_SCHEMAS } from './schemas/record.js';
import { RecordDeletionSchema } from './schemas/records.js';
import { PRODUCT, VERSION } from './version.js';

export type { AppOverrides };

declare module 'fastify' {
  interface FastifyInstance {
    config: Config;
    /** The one source of "now" and of waiting for every part (simulated in tests). */
    clock: Clock;
  }
}

/**
 * Everything that enriches, in the order of their dependencies: the outside resources, then the service's
 * own parts. Every role has them all: the jobs plugin runs jobs only where ROLE says so, and the API routes
 * are served where it says so (see registerApi).
 */
export const ENRICHMENT_PLUGINS = [
  readiness,
  database,
  redis,
  maxmind,
  cache,
  limiters,
  sources,
  metrics,
  enricher,
  jobs,
  invalidations,
  recordRemoval,
  auth,
];

export const API_SCHEMAS = [...RECORD_SCHEMAS, ProblemSchema, EnrichStatsSchema, ReadinessSchema, ...JOB_SCHEMAS, RecordDeletionSchema];

/**
 * Bodies are validated without coercion, so `{"ips": "1.2.3.4"}` or `{"ips": [1]}` is a 400 rather than
 * silently reshaped; path and query strings are text by nature and are coerced to the declared types.
 */
function validators(): { body: Ajv; text: Ajv } {
  const make = (options: AjvOptions) => {
    const ajv = new Ajv({ useDefaults: true, removeAdditional: false, allErrors: false, ...options });
    addFormats.default(ajv);
    ajv.addKeyword('kind').addKeyword('modifier');
    for (const schema of API_SCHEMAS) ajv.addSchema(schema);
    return ajv;
  };
  return { body: make({ coerceTypes: false }), text: make({ coerceTypes: 'array' }) };
}

/** Schemas, OpenAPI and routes: everything that defines the HTTP contract, without any backend. */
export async function registerApi(app: FastifyInstance, config: Config): Promise<void> {
  const ajv = validators();
  // Fastify's built-in text/plain parser would hand a JSON-looking text body to the schema, answering 400
  // where the contract promises 415 for every body that is not application/json.
  app.removeContentTypeParser('text/plain');
  app.setValidatorCompiler(({ schema, httpPart }) => (httpPart === 'body' ? ajv.body : ajv.text).compile(schema));
  // Responses are built by our own code to the declared schemas (tests validate them against those schemas).
  // The schema-driven serializer runs an Ajv check for every nullable field of every record, which made a
  // 10,000-record answer 5 to 20 times slower than JSON.stringify.
  app.setSerializerCompiler(() => (data) => JSON.stringify(data));
  for (const schema of API_SCHEMAS) app.addSchema(schema);
  registerProblemHandlers(app);
  echoRequestIds(app);
  declareSecurity(app);
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: PRODUCT,
        version: VERSION,
        description:
          'Enriches IP addresses with MaxMind GeoIP, Team Cymru IP-to-ASN, GreyNoise and DShield, ' +
          'cached per source and answered in input order.',
        license: { name: 'MIT', identifier: 'MIT' },
      },
      tags: [
        { name: 'enrich', description: 'address enrichment' },
        { name: 'jobs', description: 'lists of any size, enriched in the background' },
        { name: 'operations', description: 'health, readiness and documentation' },
      ],
      components: { securitySchemes: SECURITY_SCHEMES },
    },
    refResolver: {
      buildLocalReference: (json, _baseUri, _fragment, index) => (typeof json.$id === 'string' ? json.$id : `def-${index}`),
    },
  });
  if (!app.hasDecorator('config')) app.decorate('config', config);
  await app.register(cors);
  // A worker answers the orchestrator and Prometheus only; its work comes from the queue.
  if (config.ROLE !== 'worker') {
    await app.register(enrichRoute);
    await app.register(ipRoute);
    await app.register(recordRoutes);
    await app.register(jobRoutes);
  }
  await app.register(healthRoutes);
  await app.register(metricsRoute);
  if (config.ROLE !== 'worker') app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
}

export async function buildApp(config: Config, overrides: AppOverrides = {}): Promise<FastifyInstance> {
  const app = Fastify({
    logger: overrides.logger ?? serviceLogger(config),
    genReqId: requestId,
    // Room for ENRICH_MAX_IPS addresses of the longest textual form, so the 413 names the real limit.
    bodyLimit: Math.max(1024 * 1024, config.ENRICH_MAX_IPS * 64),
    logController: new LogController({ disableRequestLogging: !logsRequests(config.LOG_LEVEL) }),
    frameworkErrors: answerFrameworkError,
    clientErrorHandler: answerClientError,
    // The refusal while closing is answered as problem+json by registerProblemHandlers.
    return503OnClosing: false,
  }).withTypeProvider<TypeBoxTypeProvider>();
  app.decorate('config', config);
  app.decorate('clock', overrides.clock ?? systemClock);
  for (const plugin of ENRICHMENT_PLUGINS) await app.register(plugin, overrides);
  await registerApi(app, config);
  return app;
}
