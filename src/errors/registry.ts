/**
 * Every problem the service answers, by its stable code, after fastify's lib/errors.js: the one place
 * where a code's status and title are decided, with the detail for codes whose detail never varies.
 * README's "Errors" table lists the same codes and statuses, and a test holds the two together.
 */
interface ProblemDefinition {
  readonly status: number;
  /** The reason phrase of the status: it is also the status line the client-error writer sends. */
  readonly title: string;
  readonly detail?: string;
}

const definitions = {
  'invalid-json': { status: 400, title: 'Bad Request', detail: 'the body is not valid JSON' },
  'invalid-request': { status: 400, title: 'Bad Request' },
  'invalid-address': { status: 400, title: 'Bad Request' },
  'invalid-url': { status: 400, title: 'Bad Request', detail: 'the URL path is not valid percent-encoded UTF-8' },
  'malformed-request': { status: 400, title: 'Bad Request', detail: 'the request is not valid HTTP' },
  'bad-request': { status: 400, title: 'Bad Request' },
  'no-addresses': {
    status: 400,
    title: 'Bad Request',
    detail: 'the list holds no address (blank lines and # comments do not count)',
  },
  unauthorized: { status: 401, title: 'Unauthorized' },
  forbidden: { status: 403, title: 'Forbidden' },
  'not-found': { status: 404, title: 'Not Found' },
  'job-not-found': { status: 404, title: 'Not Found' },
  'request-timeout': { status: 408, title: 'Request Timeout', detail: 'the request was not received in time' },
  'job-finished': { status: 409, title: 'Conflict' },
  'too-many-addresses': { status: 413, title: 'Payload Too Large' },
  'body-too-large': { status: 413, title: 'Payload Too Large' },
  'uri-too-long': { status: 414, title: 'URI Too Long' },
  'unsupported-media-type': { status: 415, title: 'Unsupported Media Type' },
  'rate-limited': { status: 429, title: 'Too Many Requests' },
  'address-limit': { status: 429, title: 'Too Many Requests' },
  'headers-too-large': {
    status: 431,
    title: 'Request Header Fields Too Large',
    detail: 'the request headers are larger than the server accepts',
  },
  'internal-error': {
    status: 500,
    title: 'Internal Server Error',
    detail: 'the server failed to handle the request; see its log',
  },
  'database-unavailable': {
    status: 503,
    title: 'Service Unavailable',
    detail: 'the database did not answer; try again shortly',
  },
  'shutting-down': {
    status: 503,
    title: 'Service Unavailable',
    detail: 'the server is shutting down; send the request again, on a new connection',
  },
} as const satisfies Record<string, ProblemDefinition>;

export type ProblemCode = keyof typeof definitions;

/** The codes with a fixed detail, which may be answered without spelling one. */
export type FixedDetailCode = {
  [C in ProblemCode]: (typeof definitions)[C] extends { detail: string } ? C : never;
}[ProblemCode];

export const PROBLEMS: { readonly [C in ProblemCode]: ProblemDefinition } = definitions;
