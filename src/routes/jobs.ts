import { Type, type Static } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { ProblemError } from '../errors/problem.js';
import { JOB_STATUSES } from '../jobs/model.js';
import { parseTextList } from '../jobs/text-list.js';
import { StringEnum } from '../schema.js';
import { JobResultSchema, JobSchema, JobSourcesSchema } from '../schemas/jobs.js';
import { problemResponse, problemResponses } from './problems.js';
import { sendSerialized } from './serialized.js';

const JobBody = Type.Object(
  {
    ips: Type.Array(Type.String(), {
      description: 'addresses to enrich; anything that is not an IP address is answered with status "invalid"',
    }),
    sources: Type.Optional(JobSourcesSchema),
    refresh: Type.Optional(Type.Boolean({ description: 'fetch again what is stored and still fresh', default: false })),
    label: Type.Optional(Type.String({ maxLength: 200, description: 'a name for the job, shown with it' })),
  },
  { additionalProperties: false },
);

/** For a text/plain list, which has no room for them; a JSON body's own fields take precedence. */
const SubmitQuery = Type.Object(
  {
    sources: Type.Optional(JobSourcesSchema),
    refresh: Type.Optional(Type.Boolean({ description: 'fetch again what is stored and still fresh' })),
    label: Type.Optional(Type.String({ maxLength: 200 })),
  },
  { additionalProperties: false },
);

const JobParams = Type.Object({ id: Type.String({ format: 'uuid', description: 'the job id' }) });

const notFound = problemResponse('there is no such job');
const jobNotFound = (id: string) => new ProblemError('job-not-found', `there is no job ${id}`);

const RESULT_TYPES = ['application/json', 'application/x-ndjson', 'text/csv'] as const;
type ResultType = (typeof RESULT_TYPES)[number];

/** The results' form the Accept header prefers (by q, then by its order); JSON when it names none of them. */
export function negotiate(accept: string | undefined): ResultType {
  let best: { type: ResultType; q: number } | undefined;
  for (const part of (accept ?? '').split(',')) {
    const [range = '', ...parameters] = part.split(';').map((piece) => piece.trim().toLowerCase());
    const q = Number(parameters.find((parameter) => parameter.startsWith('q='))?.slice(2) ?? 1);
    const type = RESULT_TYPES.find((candidate) => candidate === range);
    if (type && q > 0 && (!best || q > best.q)) best = { type, q };
  }
  return best?.type ?? 'application/json';
}

const jobRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const maxIps = app.config.JOB_MAX_IPS;
  // Room for JOB_MAX_IPS addresses of the longest textual form, so the 413 names the real limit.
  const bodyLimit = Math.max(1024 * 1024, maxIps * 64);
  // Only here: every other route answers 415 to text/plain (see registerApi).
  app.addContentTypeParser('text/plain', { parseAs: 'string', bodyLimit }, (_request, body, done) => done(null, body));

  app.post(
    '/jobs',
    {
      bodyLimit,
      config: { accepts: 'application/json or text/plain', scope: 'jobs' },
      schema: {
        summary: 'Submit a list to be enriched in the background',
        description:
          'A JSON body `{ips, sources?, refresh?, label?}`, or a text/plain body of one address per line (# starts a ' +
          'comment, blank lines are ignored; sources, refresh and label then go in the query string). At most ' +
          'JOB_MAX_IPS strings (default 1000000); more is a 413. The job is answered at once with 202 and its ' +
          'Location; it runs in the background (GET /jobs/{id} for progress, GET /jobs/{id}/results for the records).',
        tags: ['jobs'],
        querystring: SubmitQuery,
        body: {
          content: {
            'application/json': { schema: JobBody },
            'text/plain': { schema: Type.String({ description: 'one address per line' }) },
          },
        },
        response: {
          202: {
            description: 'the job, queued',
            headers: { location: Type.String({ description: '/jobs/{id}' }) },
            content: { 'application/json': { schema: Type.Ref(JobSchema) } },
          },
          ...problemResponses('invalid-request', 'too-many-addresses', 'unsupported-media-type', 'internal-error', 'database-unavailable'),
        },
      },
      // Counted before validation so an oversized list is refused without validating every element.
      preValidation: async (request) => {
        const ips = (request.body as { ips?: unknown } | undefined)?.ips;
        if (Array.isArray(ips) && ips.length > maxIps) {
          throw new ProblemError('too-many-addresses', `ips has ${ips.length} entries; JOB_MAX_IPS allows ${maxIps} per job`);
        }
      },
    },
    async (request, reply) => {
      const body = request.body as string | Static<typeof JobBody>;
      const { query } = request;
      const fields: Omit<Static<typeof JobBody>, 'ips'> = typeof body === 'string' ? {} : body;
      const inputs = typeof body === 'string' ? parseTextList(body) : body.ips;
      if (inputs.length > maxIps) throw new ProblemError('too-many-addresses', `the list has ${inputs.length} lines; JOB_MAX_IPS allows ${maxIps} per job`);
      if (inputs.length === 0) throw new ProblemError('no-addresses');
      const job = await app.jobs.submit({
        inputs,
        sources: fields.sources ?? query.sources,
        refresh: fields.refresh ?? query.refresh,
        label: fields.label ?? query.label,
        owner: request.apiKey?.id ?? null,
      });
      return reply.code(202).header('location', `/jobs/${job.id}`).send(job);
    },
  );

  app.get(
    '/jobs',
    {
      config: { scope: 'jobs' },
      schema: {
        summary: 'The latest jobs',
        description: 'Newest first. Finished jobs are kept for JOB_RETENTION (default 7d).',
        tags: ['jobs'],
        querystring: Type.Object(
          {
            status: Type.Optional(Type.Array(StringEnum(JOB_STATUSES), { description: 'only jobs in these states' })),
            limit: Type.Integer({ minimum: 1, maximum: 100, default: 20 }),
          },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({ jobs: Type.Array(Type.Ref(JobSchema)) }, { description: 'the latest jobs, newest first' }),
          ...problemResponses('invalid-request', 'internal-error', 'database-unavailable'),
        },
      },
    },
    async (request) => ({ jobs: await app.jobs.list(request.query.status, request.query.limit, request.jobOwner) }),
  );

  app.get(
    '/jobs/:id',
    {
      config: { scope: 'jobs' },
      schema: {
        summary: 'A job: its status, counts, progress per phase and estimated time left',
        tags: ['jobs'],
        params: JobParams,
        response: {
          200: Type.Ref(JobSchema, { description: 'the job' }),
          404: notFound,
          ...problemResponses('invalid-request', 'internal-error', 'database-unavailable'),
        },
      },
    },
    async (request) => {
      const job = await app.jobs.get(request.params.id);
      if (!job) throw jobNotFound(request.params.id);
      return job;
    },
  );

  app.get(
    '/jobs/:id/results',
    {
      config: { scope: 'jobs' },
      schema: {
        summary: "A job's results, one record per input string, in input order",
        description:
          'As POST /enrich answers them, available while the job runs: an address the job has not finished has ' +
          '"status": "pending". application/json (the default) answers a page of `limit` results from `cursor` with ' +
          'the `next` cursor (null after the last); Accept: application/x-ndjson streams every result from `cursor` ' +
          'on, one per line; Accept: text/csv streams them as CSV with the columns ip, input, status, error, asn, ' +
          'as_name, prefix, country, city, latitude, longitude, greynoise_classification, greynoise_noise, ' +
          'greynoise_riot, dshield_attacks, dshield_reports, dshield_threat_feeds, maxmind_status, cymru_status, ' +
          'greynoise_status, dshield_status, updated_at.',
        tags: ['jobs'],
        params: JobParams,
        querystring: Type.Object(
          {
            cursor: Type.Optional(Type.String({ pattern: '^[0-9]{1,10}$', description: 'where to continue: a `next` cursor' })),
            limit: Type.Integer({ minimum: 1, maximum: 10_000, default: 1000, description: 'results per JSON page' }),
          },
          { additionalProperties: false },
        ),
        response: {
          200: {
            description: 'the results',
            content: {
              'application/json': {
                schema: Type.Object({
                  results: Type.Array(JobResultSchema),
                  next: Type.Union([Type.String(), Type.Null()], { description: 'the cursor of the next page; null after the last' }),
                }),
              },
              'application/x-ndjson': { schema: Type.String({ description: 'one record (IpRecord or PendingRecord) per line' }) },
              'text/csv': { schema: Type.String({ description: 'a header line, then one row per input' }) },
            },
          },
          404: notFound,
          ...problemResponses('invalid-request', 'internal-error', 'database-unavailable'),
        },
      },
    },
    async (request, reply) => {
      const { id } = request.params;
      if (!(await app.jobs.exists(id))) throw jobNotFound(id);
      const from = Number(request.query.cursor ?? 0);
      const type = negotiate(request.headers.accept);
      if (type === 'application/x-ndjson') {
        return reply.type('application/x-ndjson; charset=utf-8').send(app.jobs.results.ndjson(id, from));
      }
      if (type === 'text/csv') {
        return reply
          .type('text/csv; charset=utf-8')
          .header('content-disposition', `attachment; filename="job-${id}.csv"`)
          .send(app.jobs.results.csv(id, from));
      }
      const { results, next } = await app.jobs.results.page(id, from, request.query.limit);
      return sendSerialized(reply, `{"results":[${results.join(',')}],"next":${next === null ? 'null' : `"${next}"`}}`);
    },
  );

  app.delete(
    '/jobs/:id',
    {
      config: { scope: 'jobs' },
      schema: {
        summary: 'Cancel a queued or running job',
        description: 'What the job finished stays: its records, and its results so far. A finished job is a 409.',
        tags: ['jobs'],
        params: JobParams,
        response: {
          200: Type.Ref(JobSchema, { description: 'the job, cancelled' }),
          404: notFound,
          409: problemResponse('the job has already finished (completed, failed or cancelled)'),
          ...problemResponses('invalid-request', 'internal-error', 'database-unavailable'),
        },
      },
    },
    async (request) => {
      const { id } = request.params;
      const job = await app.jobs.cancel(id);
      if (job === null) throw jobNotFound(id);
      if (job === 'finished') throw new ProblemError(
          'job-finished',
          `job ${id} is ${(await app.jobs.get(id))?.status ?? 'finished'}; only a queued or running job can be cancelled`,
        );
      return job;
    },
  );
};

export default jobRoutes;
