import { Type } from '@sinclair/typebox';
import type { FastifyError, FastifyInstance } from 'fastify';

/** RFC 9457 problem details; `code` is the stable, machine-readable name of the problem. */
export const ProblemSchema = Type.Object(
  {
    type: Type.String({ description: 'URI naming the problem type' }),
    title: Type.String(),
    status: Type.Integer(),
    detail: Type.String(),
    code: Type.String({ description: 'stable error code' }),
    instance: Type.Optional(Type.String({ description: 'request id, for the logs' })),
  },
  { $id: 'Problem' },
);

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
  instance: string;
}

function problem(status: number, code: string, title: string, detail: string, requestId: string): ProblemBody {
  return { type: `urn:ip-enrich:problem:${code}`, title, status, detail, code, instance: requestId };
}

/** Maps Fastify's own request errors (bad JSON, schema violations, limits) to stable problem codes. */
function fromFastifyError(error: FastifyError, requestId: string): ProblemBody | undefined {
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
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return problem(415, 'unsupported-media-type', 'Unsupported Media Type', error.message, requestId);
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
export function registerProblemHandlers(app: FastifyInstance): void {
  app.setErrorHandler((error: FastifyError | ProblemError, request, reply) => {
    let body: ProblemBody | undefined;
    if (error instanceof ProblemError) {
      body = problem(error.status, error.code, error.title, error.message, request.id);
      void reply.headers(error.headers);
    } else {
      body = fromFastifyError(error, request.id);
    }
    if (!body) {
      request.log.error({ err: error }, 'unhandled error');
      body = problem(500, 'internal-error', 'Internal Server Error', 'the server failed to handle the request; see its log', request.id);
    } else if (body.status >= 500) {
      request.log.error({ err: error }, body.detail);
    }
    return reply.code(body.status).type(PROBLEM_CONTENT_TYPE).send(body);
  });
  app.setNotFoundHandler((request, reply) =>
    reply
      .code(404)
      .type(PROBLEM_CONTENT_TYPE)
      .send(problem(404, 'not-found', 'Not Found', `no route for ${request.method} ${request.url}`, request.id)),
  );
}
