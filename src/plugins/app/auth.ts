import { createHash, timingSafeEqual } from 'node:crypto';
import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance, FastifyRequest, onRequestHookHandler, preHandlerAsyncHookHandler, RouteOptions } from 'fastify';
import fp from 'fastify-plugin';
import { Counter } from 'prom-client';
import { KeyCache } from '../../auth/key-cache.js';
import { KeyStore, type ApiKey } from '../../auth/key-store.js';
import { looksLikeToken, type RouteScope } from '../../auth/tokens.js';
import { authMode } from '../../config.js';
import { errorMessage } from '../../errors/message.js';
import { ProblemError } from '../../errors/problem.js';
import { parseTextList } from '../../jobs/text-list.js';
import { appendRouteHook } from '../route-hooks.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The key the request came with (AUTH=keys), or null (AUTH=off, or a route open to all). */
    apiKey: ApiKey | null;
    /** The key whose jobs alone the request may see; undefined: all jobs (AUTH=off, or an admin key). */
    jobOwner: string | undefined;
  }
  interface FastifyContextConfig {
    /** What the route asks of a request: a scope of the key, or METRICS_TOKEN; a route without one is open. */
    scope?: RouteScope;
  }
}

const REALM = 'Bearer realm="ip-enrich"';

/** The token of a request: `Authorization: Bearer <key>` or `X-API-Key: <key>`; '' for a malformed header. */
function tokenOf(request: FastifyRequest): string | undefined {
  const { authorization } = request.headers;
  if (authorization !== undefined) return /^Bearer +([\x21-\x7E]+) *$/i.exec(authorization)?.[1] ?? '';
  const header = request.headers['x-api-key'];
  return typeof header === 'string' ? header.trim() : undefined;
}

const digest = (value: string) => createHash('sha256').update(value).digest();

/** Seconds until the next UTC midnight, when every key's daily allowance starts again. */
function secondsToNextDay(now: number): number {
  const next = new Date(now);
  next.setUTCHours(24, 0, 0, 0);
  return Math.max(1, Math.ceil((next.getTime() - now) / 1000));
}

/** How many addresses a request sends: a JSON body's `ips`, or a text list's lines (POST /jobs). */
function addressesOf(body: unknown): number {
  if (typeof body === 'string') return parseTextList(body).length;
  const ips = (body as { ips?: unknown } | null | undefined)?.ips;
  return Array.isArray(ips) ? ips.length : 0;
}

/**
 * Access control. Every route that declares a `scope` in its config needs a key with that scope (or admin)
 * when AUTH is keys; /metrics needs METRICS_TOKEN when it is set; the rest (/healthz, /readyz) is open.
 * Keys come from a bounded cache (src/auth/key-cache.ts), revoked at once on every replica through the
 * invalidations; their limits are @fastify/rate-limit per minute and a daily allowance of addresses.
 */
async function auth(app: FastifyInstance) {
  const { config, database, redis, metrics, clock, invalidations } = app;
  const mode = authMode(config);
  const refused = new Counter({
    name: 'ipenrich_auth_refused_total',
    help: 'requests refused by access control, by reason',
    labelNames: ['reason'],
    registers: [metrics.registry],
  });
  const metricsDigest = config.METRICS_TOKEN === undefined ? undefined : digest(config.METRICS_TOKEN);
  app.decorateRequest('apiKey', null);
  app.decorateRequest('jobOwner', undefined);

  const unauthorized = (reason: string, detail: string, error = 'invalid_token') => {
    refused.inc({ reason });
    return new ProblemError('unauthorized', detail).withHeaders({ 'www-authenticate': `${REALM}, error="${error}"` });
  };
  const metricsAllowed = (request: FastifyRequest) => {
    const token = tokenOf(request);
    return metricsDigest !== undefined && token !== undefined && timingSafeEqual(digest(token), metricsDigest);
  };

  // Hooks go on the routes that declare a scope, closed over it, rather than one hook on every request that
  // looks the scope up: request.routeOptions builds a new object on each read, a measurable share of a cached
  // GET /ip/:addr. Registered here, before registerApi adds the routes.
  const onScopedRoute = (attach: (route: RouteOptions, scope: RouteScope) => void) =>
    app.addHook('onRoute', (route) => {
      const scope = route.config?.scope;
      if (scope) attach(route, scope);
    });
  const metricsHook: onRequestHookHandler = (request, _reply, done) =>
    done(metricsAllowed(request) ? undefined : unauthorized('metrics-token', 'GET /metrics needs the METRICS_TOKEN as a Bearer token'));

  if (mode === 'off') {
    app.log.info(config.AUTH === 'off' ? 'AUTH=off: the API is open to anyone who reaches it' : `AUTH unset and HOST ${config.HOST} is loopback: the API is open (AUTH=off)`);
    if (metricsDigest) onScopedRoute((route, scope) => scope === 'metrics' && appendRouteHook(route, 'onRequest', metricsHook));
    return;
  }
  app.log.info(
    config.AUTH === 'keys' ? 'AUTH=keys: every API request needs an API key' : `AUTH unset and HOST ${config.HOST} is not loopback: every API request needs an API key (AUTH=keys)`,
  );

  const store = new KeyStore(database);
  const cache = new KeyCache(store, () => clock.now(), (error) => app.log.warn(`could not record when API keys were last used: ${errorMessage(error)}`));
  app.addHook('onClose', () => cache.close());
  invalidations.on((message) => {
    if (message.kind === 'key-revoked') cache.forget(message.keyId);
  });

  await app.register(rateLimit, {
    // Not a hook of its own on every route: the key check below asks it, and only for keys with a rate.
    global: false,
    keyGenerator: (request) => request.apiKey?.id ?? '',
    max: (request) => request.apiKey?.ratePerMinute ?? 0,
    timeWindow: 60_000,
    enableDraftSpec: true,
    // With Redis, every replica counts against one budget; while Redis does not answer, requests pass
    // rather than fail (as the L1 does), and only the daily allowance, kept in PostgreSQL, still holds.
    ...(redis ? { redis, nameSpace: `${config.REDIS_KEY_PREFIX}rate:`, skipOnError: true } : {}),
    errorResponseBuilder: (request, context) => {
      refused.inc({ reason: 'rate' });
      const key = request.apiKey!;
      return new ProblemError(
        'rate-limited',
        `the API key ${key.prefix} (${key.name}) may make ${context.max} requests a minute; retry in ${context.after}`,
      );
    },
  });
  const limitRate = app.rateLimit();

  const admit = (request: FastifyRequest, scope: RouteScope, key: ApiKey | null, token: string): ProblemError | undefined => {
    if (!key) {
      return looksLikeToken(token)
        ? unauthorized('unknown', 'the API key is unknown or has been revoked')
        : unauthorized('malformed', 'the API key is not one this service issued (ipe_…)');
    }
    if (!key.scopes.includes(scope as ApiKey['scopes'][number]) && !key.scopes.includes('admin')) {
      refused.inc({ reason: 'scope' });
      return new ProblemError('forbidden', `the API key ${key.prefix} (${key.name}) lacks the ${scope} scope`);
    }
    request.apiKey = key;
    if (!key.scopes.includes('admin')) request.jobOwner = key.id;
    // Who asked, tied to the request's other lines by reqId. Not a child logger with the key bound: making one
    // per request was the largest cost the key check added to a cached GET /ip/:addr (pino's child, ~7% of
    // the service's CPU under load), and at the default level no other line of the request is written.
    request.log.debug({ key: key.prefix, keyName: key.name }, 'api key');
    return undefined;
  };

  /** The key check of a route; a callback hook, so that a cached key is decided without a promise. */
  const keyHook = (scope: RouteScope): onRequestHookHandler =>
    function checkKey(request, reply, done) {
      const token = tokenOf(request);
      if (!token) {
        done(
          token === undefined
            ? unauthorized('missing', 'this request needs an API key: Authorization: Bearer <key>, or X-API-Key: <key>', 'invalid_request')
            : unauthorized('malformed', 'the Authorization header is not "Bearer <key>"', 'invalid_request'),
        );
        return;
      }
      const decide = (key: ApiKey | null) => {
        const refusal = admit(request, scope, key, token);
        if (refusal || !key?.ratePerMinute) done(refusal);
        else limitRate.call(this, request, reply).then(() => done(), done);
      };
      const cached = cache.peek(token);
      if (cached !== undefined) decide(cached);
      else cache.resolve(token).then(decide, done);
    };

  // A key's jobs are its own: another key's job is answered as if it did not exist.
  const ownJobsOnly: preHandlerAsyncHookHandler = async (request) => {
    const owner = request.jobOwner;
    const id = (request.params as { id?: unknown } | undefined)?.id;
    if (owner === undefined || typeof id !== 'string') return;
    const actual = await store.jobOwner(id);
    if (actual !== undefined && actual !== owner) throw new ProblemError('job-not-found', `there is no job ${id}`);
  };

  const chargeAddresses: preHandlerAsyncHookHandler = async (request, reply) => {
    const key = request.apiKey;
    const limit = key?.addressesPerDay;
    if (!key || limit === undefined || limit === null) return;
    const count = addressesOf(request.body);
    if (count === 0) return;
    const now = clock.now();
    const charge = await store.charge(key.id, new Date(now).toISOString().slice(0, 10), count, limit);
    const reset = secondsToNextDay(now);
    const remaining = Math.max(0, limit - charge.used);
    if (charge.allowed) {
      void reply.headers({ 'ratelimit-limit': limit, 'ratelimit-remaining': remaining, 'ratelimit-reset': reset });
      return;
    }
    refused.inc({ reason: 'addresses' });
    throw new ProblemError(
      'address-limit',
      `the API key ${key.prefix} (${key.name}) may send ${limit} addresses a day (UTC) and has ${remaining} left today; this request has ${count}`,
    ).withHeaders({ 'retry-after': reset, 'ratelimit-limit': limit, 'ratelimit-remaining': remaining, 'ratelimit-reset': reset });
  };

  onScopedRoute((route, scope) => {
    if (scope === 'metrics') {
      if (metricsDigest) appendRouteHook(route, 'onRequest', metricsHook);
      return;
    }
    appendRouteHook(route, 'onRequest', keyHook(scope));
    if (scope === 'jobs' && route.url.includes(':id')) appendRouteHook(route, 'preHandler', ownJobsOnly);
    // The routes that take a list of addresses are the ones with a body.
    if (route.schema?.body) appendRouteHook(route, 'preHandler', chargeAddresses);
  });
}

export default fp(auth, { name: 'auth', dependencies: ['database', 'redis', 'metrics', 'invalidations'] });
