import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { FastifyInstance } from 'fastify';

export const REQUEST_ID_HEADER = 'x-request-id';

/** Short and printable: anything else (a log injection, a megabyte of header) is replaced by our own. */
const USABLE = /^[\x21-\x7E]{1,128}$/;

/** Fastify's genReqId: the caller's X-Request-Id when it is usable, so one id follows a request across services. */
export function requestId(raw: IncomingMessage): string {
  const incoming = raw.headers[REQUEST_ID_HEADER];
  return typeof incoming === 'string' && USABLE.test(incoming) ? incoming : randomUUID();
}

/** Every answer names its request id, as every log line of it and its problem+json `instance` do. */
export function echoRequestIds(app: FastifyInstance): void {
  app.addHook('onRequest', (request, reply, done) => {
    void reply.header(REQUEST_ID_HEADER, request.id);
    done();
  });
}
