import cors from '@fastify/cors';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { REQUEST_ID_HEADER } from './request-id.js';

/** CORS for the origins in CORS_ORIGINS (none by default: browsers on other origins get no access). */
async function corsPlugin(app: FastifyInstance) {
  const setting = app.config.CORS_ORIGINS;
  if (!setting) return;
  const origins = setting.split(',').map((origin) => origin.trim());
  await app.register(cors, {
    origin: origins.includes('*') ? '*' : origins,
    methods: ['GET', 'POST', 'DELETE'],
    allowedHeaders: ['authorization', 'x-api-key', 'content-type', 'accept', REQUEST_ID_HEADER],
    exposedHeaders: [REQUEST_ID_HEADER, 'location', 'retry-after', 'ratelimit-limit', 'ratelimit-remaining', 'ratelimit-reset', 'www-authenticate'],
    maxAge: 600,
  });
}

export default fp(corsPlugin, { name: 'cors' });
