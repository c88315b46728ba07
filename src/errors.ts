import type { Socket } from 'node:net';
import type { ConnectionError, FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

export class ProblemError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    readonly title: string,
    detail: string,
    readonly headers: Record<string, string> = {},
    options?: ErrorOptions,
  ) {
    super(detail, options);
    this.name = 'ProblemError';
  }
}

export const badRequest = (code: string, detail: string) => new ProblemError(400, code, 'Bad Request', detail);
export const tooManyAddresses = (detail: string) =>
  new ProblemError(413, 'too-many-addresses', 'Payload Too Large', detail);
export const serviceUnavailable = (code: string, detail: string, options?: ErrorOptions) =>
  new ProblemError(503, code, 'Service Unavailable', detail, {}, options);

interface ProblemBody {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: string;
  instance?: string;
}

function problem(status: number, code: string, title: string, detail: string, requestId?: string): ProblemBody {
  return { type: `urn:ip-enrich:problem:${code}`, title, status, detail, code, instance: requestId };
}

/** Maps Fastify's own request errors (bad JSON or URL, schema violations, limits) to stable problem codes. */
function fromFastifyError(error: FastifyError, request: FastifyRequest): ProblemBody | undefined {
  const requestId = request.id;
  if (error.validation) {
    const detail = error.validation
      .map((issue) => {
        const where = `${error.validationContext ?? 'request'}${issue.instancePath.replaceAll('/', '.')}`;
        const property = (issue.params as { missingProperty?: string; additionalProperty?: string } | undefined);
        const name = property?.missingProperty ?? property?.additionalProperty;
        return `${where}${name ? `.${name}` : ''} ${issue.message ?? 'is invalid'}`;
      })
      .join('; ');
    return problem(400, 'invalid-request', 'Bad Request', detail, requestId);
  }
  switch (error.code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return problem(400, 'invalid-json', 'Bad Request', 'the body is not valid JSON', requestId);
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return problem(413, 'body-too-large', 'Payload Too Large', error.message, requestId);
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE': {
      const contentType = request.headers['content-type'];
      const detail = contentType
        ? `the body must be application/json, not ${contentType.slice(0, 100)}`
        : 'the body must be application/json, and the request has no content type';
      return problem(415, 'unsupported-media-type', 'Unsupported Media Type', detail, requestId);
    }
    case 'FST_ERR_BAD_URL':
      return problem(400, 'invalid-url', 'Bad Request', 'the URL path is not valid percent-encoded UTF-8', requestId);
    case 'FST_ERR_MAX_PARAM_LENGTH': {
      const limit = String(request.server.initialConfig.maxParamLength);
      return problem(414, 'uri-too-long', 'URI Too Long', `a path parameter is longer than ${limit} characters`, requestId);
    }
    default:
      break;
  }
  const status = error.statusCode;
  if (status !== undefined && status >= 400 && status < 500) {
    return problem(status, 'bad-request', 'Bad Request', error.message, requestId);
  }
  return undefined;
}

/** The one error handler: every 4xx/5xx leaves as problem+json, and a 5xx never shows internals. */
function sendProblem(error: FastifyError | ProblemError, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  let body: ProblemBody | undefined;
  if (error instanceof ProblemError) {
    body = problem(error.status, error.code, error.title, error.message, request.id);
    void reply.headers(error.headers);
  } else {
    body = fromFastifyError(error, request);
  }
  if (!body) {
    request.log.error({ err: error }, 'unhandled error');
    body = problem(500, 'internal-error', 'Internal Server Error', 'the server failed to handle the request; see its log', request.id);
  } else if (body.status >= 500) {
    request.log.error({ err: error }, body.detail);
  }
  return reply.code(body.status).type(PROBLEM_CONTENT_TYPE).send(body);
}

/**
 * Fastify's `frameworkErrors` option. The router refuses a path that is not valid percent-encoding, or a
 * parameter over maxParamLength, before any route, hook or error handler runs; without this they would
 * leave as Fastify's own application/json.
 */
export function answerFrameworkError(error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  sendProblem(error, request, reply);
}

const CLIENT_ERRORS: Record<string, { status: number; code: string; title: string; detail: string }> = {
  HPE_HEADER_OVERFLOW: {
    status: 431,
    code: 'headers-too-large',
    title: 'Request Header Fields Too Large',
    detail: 'the request headers are larger than the server accepts',
  },
  ERR_HTTP_REQUEST_TIMEOUT: {
    status: 408,
    code: 'request-timeout',
    title: 'Request Timeout',
    detail: 'the request was not received in time',
  },
};
const MALFORMED_REQUEST = { status: 400, code: 'malformed-request', title: 'Bad Request', detail: 'the request is not valid HTTP' };

/**
 * Fastify's `clientErrorHandler`: Node's HTTP parser refuses these before there is a request, so there is no
 * reply to send through and no request id; the answer is written to the socket, which is then closed.
 */
export function answerClientError(this: FastifyInstance, error: ConnectionError, socket: Socket): void {
  // A reset or closed connection has nobody left to answer.
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const { status, code, title, detail } = CLIENT_ERRORS[error.code] ?? MALFORMED_REQUEST;
  this.log.trace({ err: error }, `client error: ${code}`);
  if (socket.writable) {
    const body = JSON.stringify(problem(status, code, title, detail));
    socket.write(
      `HTTP/1.1 ${status} ${title}\r\nContent-Type: ${PROBLEM_CONTENT_TYPE}; charset=utf-8\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy(error);
}

export function registerProblemHandlers(app: FastifyInstance): void {
  app.setErrorHandler(sendProblem);
  app.setNotFoundHandler((request, reply) =>
    reply
      .code(404)
      .type(PROBLEM_CONTENT_TYPE)
      .send(problem(404, 'not-found', 'Not Found', `no route for ${request.method} ${request.url}`, request.id)),
  );
}
