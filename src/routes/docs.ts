import swaggerUi from '@fastify/swagger-ui';
import type { FastifyPluginAsync } from 'fastify';

/** Swagger UI's own scripts and styles, from its package; React sets some styles inline. */
const DOCS_POLICY = [
  "default-src 'self'",
  "img-src 'self' data:",
  "style-src 'self' 'unsafe-inline'",
  "object-src 'none'",
  "base-uri 'self'",
  "frame-ancestors 'none'",
].join('; ');

/**
 * The API reference at /docs, rendered by Swagger UI from the document the service serves (its /docs/json is
 * app.swagger(), as /openapi.json is). Every asset comes from the @fastify/swagger-ui package; the validator
 * badge, which would ask validator.swagger.io, stays off.
 */
const docsRoute: FastifyPluginAsync = async (app) => {
  await app.register(swaggerUi, {
    routePrefix: '/docs',
    staticCSP: DOCS_POLICY,
    uiConfig: { validatorUrl: null, deepLinking: true, docExpansion: 'list', defaultModelsExpandDepth: 0 },
  });
};

export default docsRoute;
