import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { runningTracing } from '../../tracing/sdk.js';

/**
 * The HTTP request span of every route, when tracing runs in this process (src/tracing/start.ts): the
 * official @fastify/otel plugin, registered before any route so that it sees them all. It continues an
 * incoming `traceparent`. Spans still buffered are handed to the exporter when the app closes.
 */
async function tracing(app: FastifyInstance) {
  const running = runningTracing();
  if (!running) return;
  await app.register(running.fastify.plugin());
  app.addHook('onClose', () => running.flush());
}

export default fp(tracing, { name: 'tracing' });
