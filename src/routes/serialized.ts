import type { FastifyReply } from 'fastify';

/**
 * Sends JSON text the enricher already serialized. The route's response schema still describes the body
 * (and the tests validate answers against it); Fastify sends a string with a JSON content type as it is.
 */
export function sendSerialized(reply: FastifyReply, json: string): FastifyReply {
  return reply.type('application/json; charset=utf-8').send(json);
}
