import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyPluginAsync, FastifyReply } from 'fastify';

/**
 * Where `npm run build` puts the page (vite.config.ts). Two levels up is the project's root both from
 * src/routes/ (tests, tsx) and from dist/routes/ (the built service, the Docker image).
 */
export const WEB_ROOT = fileURLToPath(new URL('../../dist/web/', import.meta.url));

/**
 * The page asks nothing of any other host, and the browser is told to refuse it if it ever tried: no CDN, no
 * web font, no tracker can be added by accident. Links to GreyNoise and ISC are navigations, which this allows.
 */
const PAGE_POLICY = [
  "default-src 'self'",
  "img-src 'self' data:",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

/** Vite names every asset by its content's hash, so an asset never changes; index.html names the current ones. */
function setHeaders(reply: FastifyReply, path: string): void {
  const immutable = path.startsWith(join(WEB_ROOT, 'assets'));
  reply.header('cache-control', immutable ? 'public, max-age=31536000, immutable' : 'no-cache');
  reply.header('content-security-policy', PAGE_POLICY);
  reply.header('x-content-type-options', 'nosniff');
}

/**
 * The analysts' page: index.html at `/` and Vite's assets under `/assets/`, read from dist/web when asked (so a
 * rebuild needs no restart). Nothing wider than /assets/* is routed: a catch-all would take the requests the
 * API's own routes refuse (a path parameter over maxParamLength must stay a 414, not become a missing file).
 */
const webRoute: FastifyPluginAsync = async (app) => {
  if (!existsSync(join(WEB_ROOT, 'index.html'))) {
    app.log.info(`the web page is not built (${WEB_ROOT} has no index.html; npm run build makes it): / answers 404`);
    return;
  }
  await app.register(fastifyStatic, { root: join(WEB_ROOT, 'assets'), prefix: '/assets/', index: false, cacheControl: false, setHeaders });
  app.get('/', { schema: { hide: true } }, (_request, reply) => reply.sendFile('index.html', WEB_ROOT));
};

export default webRoute;
