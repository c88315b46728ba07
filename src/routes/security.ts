import type { FastifyInstance } from 'fastify';
import { problemResponse } from './problems.js';

/** The OpenAPI security schemes: an API key sent either way, and the METRICS_TOKEN for /metrics. */
export const SECURITY_SCHEMES = {
  bearerKey: {
    type: 'http',
    scheme: 'bearer',
    description: 'an API key (`ip-enrich keys create`) as `Authorization: Bearer <key>`; required when AUTH=keys',
  },
  headerKey: { type: 'apiKey', in: 'header', name: 'X-API-Key', description: 'the same API key in the X-API-Key header' },
  metricsToken: { type: 'http', scheme: 'bearer', description: 'METRICS_TOKEN, required by GET /metrics when it is set' },
} as const;

interface RouteSchema {
  description?: string;
  security?: Array<Record<string, string[]>>;
  response?: Record<string, unknown>;
}

/**
 * Declares, for every route whose config names a scope, how it is authorized and what it answers when it is
 * not: the routes say only `config: { scope }`, and the document follows. Registered before the routes.
 */
export function declareSecurity(app: FastifyInstance): void {
  app.addHook('onRoute', (route) => {
    const scope = route.config?.scope;
    const schema = route.schema as RouteSchema | undefined;
    if (!scope || !schema) return;
    if (scope === 'metrics') {
      // An empty requirement: the token is optional, since the route is open while METRICS_TOKEN is unset.
      schema.security = [{ metricsToken: [] }, {}];
      schema.response = { ...schema.response, 401: problemResponse('METRICS_TOKEN is set and the request lacks it') };
      return;
    }
    schema.security = [{ bearerKey: [] }, { headerKey: [] }];
    schema.description = `${schema.description ? `${schema.description} ` : ''}Needs an API key with the \`${scope}\` scope (or \`admin\`) when AUTH=keys.`;
    schema.response = {
      ...schema.response,
      401: problemResponse('no API key, or one that is unknown or revoked (see WWW-Authenticate)'),
      403: problemResponse(`the API key lacks the ${scope} scope`),
      429: problemResponse("over the key's requests per minute, or its addresses per day (see Retry-After and RateLimit-*)"),
    };
  });
}
