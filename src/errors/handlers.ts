import type { Socket } from 'node:net';
import type { ConnectionError, FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { DatabaseUnavailableError } from '../db/errors.js';
import { PROBLEM_CONTENT_TYPE, ProblemError, problemBody, type Problem, type ProblemBody } from './problem.js';
import type { FixedDetailCode } from './registry.js';
import { REQUEST_ID_HEADER } from '../plugins/app/request-id.js';

// The request id goes on here as well: a request refused by the router or by access control never reaches
// the hook that sets it on every other answer.
const send = (reply: FastifyReply, body: ProblemBody): FastifyReply =>
  reply.code(body.status).header(REQUEST_ID_HEADER, reply.request.id).type(PROBLEM_CONTENT_TYPE).send(body);

const notFound = (request: FastifyRequest): Problem => ({ code: 'not-found', detail: `no route for ${request.method} ${request.url}` });

/** Maps Fastify's own request errors (bad JSON or URL, schema violations, limits) to stable problem codes. */
function fromFastifyError(error: FastifyError, request: FastifyRequest): Problem | undefined {
  if (error.validation) {
    const detail = error.validation
      .map((issue) => {
        const where = `${error.validationContext ?? 'request'}${issue.instancePath.replaceAll('/', '.')}`;
        const property = (issue.params as { missingProperty?: string; additionalProperty?: string } | undefined);
        const name = property?.missingProperty ?? property?.additionalProperty;
        return `${where}${name ? `.${name}` : ''} ${issue.message ?? 'is invalid'}`;
      })
      .join('; ');
    return { code: 'invalid-request', detail };
  }
  switch (error.code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return { code: 'invalid-json' };
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return { code: 'body-too-large', detail: error.message };
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE': {
      const contentType = request.headers['content-type'];
      // A route that takes more than JSON (POST /jobs also reads text/plain) names what it takes in its config.
      const accepts = (request.routeOptions.config as { accepts?: string } | undefined)?.accepts ?? 'application/json';
      const detail = contentType
        ? `the body must be ${accepts}, not ${contentType.slice(0, 100)}`
        : `the body must be ${accepts}, and the request has no content type`;
      return { code: 'unsupported-media-type', detail };
    }
    case 'FST_ERR_BAD_URL':
      return { code: 'invalid-url' };
    case 'FST_ERR_MAX_PARAM_LENGTH': {
      const limit = String(request.server.initialConfig.maxParamLength);
      return { code: 'uri-too-long', detail: `a path parameter is longer than ${limit} characters` };
    }
    case 'FST_ERR_NOT_FOUND':
      return notFound(request);
    default:
      break;
  }
  const status = error.statusCode;
  if (status !== undefined && status >= 400 && status < 500) return { code: 'bad-request', detail: error.message };
  return undefined;
}

type HandledError = FastifyError | ProblemError | DatabaseUnavailableError;

function toProblem(error: HandledError, request: FastifyRequest): Problem | undefined {
  if (error instanceof ProblemError) return error.problem;
  // The layers below the routes throw domain errors; their messages are for the log, and the registry says
  // what the client is told.
  if (error instanceof DatabaseUnavailableError) return { code: 'database-unavailable' };
  return fromFastifyError(error, request);
}

/** The one error handler: every 4xx/5xx leaves as problem+json, and a 5xx never shows internals. */
function sendProblem(error: HandledError, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const problem = toProblem(error, request);
  if (!problem) request.log.error({ err: error }, 'unhandled error');
  const body = problemBody(problem ?? { code: 'internal-error' }, request.id);
  if (problem && body.status >= 500) request.log.error({ err: error }, body.detail);
  if (error instanceof ProblemError) reply.headers(error.headers);
  return send(reply, body);
}

/** A line per request would dominate the cost of a cached lookup; debug and trace still log them. */
export const logsRequests = (level: string): boolean => level === 'debug' || level === 'trace';

/**
 * Fastify's `frameworkErrors` option. The router refuses a path that is not valid percent-encoding, or a
 * parameter over maxParamLength, before any route, hook or error handler runs; without this they would
 * leave as Fastify's own application/json.
 */
export function answerFrameworkError(error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  // Fastify logs "incoming request" for these but never "request completed", since the response listeners
  // that log it are set up by the router, which refused the request.
  if (logsRequests(request.log.level)) {
    const started = performance.now();
    reply.raw.once('finish', () =>
      request.log.info({ res: reply, responseTime: performance.now() - started }, 'request completed'),
    );
  }
  sendProblem(error, request, reply);
}

const CLIENT_ERRORS: Partial<Record<string, FixedDetailCode>> = {
  HPE_HEADER_OVERFLOW: 'headers-too-large',
  ERR_HTTP_REQUEST_TIMEOUT: 'request-timeout',
};

/**
 * Fastify's `clientErrorHandler`: Node's HTTP parser refuses these before there is a request, so there is no
 * reply to send through and no request id; the answer is written to the socket, which is then closed.
 */
export function answerClientError(this: FastifyInstance, error: ConnectionError, socket: Socket): void {
  // A reset or closed connection has nobody left to answer.
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const code = CLIENT_ERRORS[error.code] ?? 'malformed-request';
  this.log.trace({ err: error }, `client error: ${code}`);
  if (socket.writable) {
    const problem = problemBody({ code });
    const body = JSON.stringify(problem);
    socket.write(
      `HTTP/1.1 ${problem.status} ${problem.title}\r\nContent-Type: ${PROBLEM_CONTENT_TYPE}; charset=utf-8\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy(error);
}

/**
 * Fastify's own 503 for requests that arrive while it closes (return503OnClosing) is plain JSON, written
 * before any hook could change it; buildApp turns that option off so that the refusal happens here instead.
 * Fastify still marks such responses `Connection: close`, so a kept-alive client moves to another instance.
 * The flag is raised by a preClose hook, which Fastify runs once it has started closing and before it stops
 * accepting connections. preClose hooks registered before this one run first: while a slow one of them runs,
 * a new request is still served (with `Connection: close`).
 */
function refuseWhileClosing(app: FastifyInstance): void {
  let closing = false;
  app.addHook('preClose', (done) => {
    closing = true;
    done();
  });
  // A callback hook rather than an async one: it runs for every request, and only ever answers while closing.
  app.addHook('onRequest', (request, reply, done) => {
    if (!closing) {
      done();
      return;
    }
    request.log.info('refused: the server is closing');
    void send(reply, problemBody({ code: 'shutting-down' }, request.id));
  });
}

export function registerProblemHandlers(app: FastifyInstance): void {
  refuseWhileClosing(app);
  app.setErrorHandler(sendProblem);
  app.setNotFoundHandler((request, reply) => send(reply, problemBody(notFound(request), request.id)));
}
