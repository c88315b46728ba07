import { Type, type Static } from '@sinclair/typebox';
import { JOB_KINDS, JOB_STATUSES, type Phase } from '../jobs/model.js';
import { SOURCE_NAMES } from '../record/model.js';
import { IpRecordSchema } from './record.js';
import { Nullable, StringEnum } from '../schema.js';

const Count = (description: string) => Type.Integer({ minimum: 0, description });
const Moment = (description: string) => Nullable(Type.String({ format: 'date-time', description }));

export const JobSourcesSchema = Type.Array(StringEnum(SOURCE_NAMES), {
  uniqueItems: true,
  // A job that asks no source would have nothing to do for its addresses, and never finish them.
  minItems: 1,
  description: 'limit lookups to these sources (default: all)',
});

export const JobPhaseSchema = Type.Object(
  {
    state: StringEnum(['pending', 'running', 'waiting', 'done', 'skipped', 'stopped'], {
      description:
        'pending: not begun; running; waiting: the upstream answered 429 and its Retry-After block runs until ' +
        'waitingUntil; done; skipped: the source was not requested; stopped: the job ended (cancelled, failed) first',
    }),
    done: Count('addresses the phase has settled'),
    total: Count('addresses the phase has to settle'),
    asked: Type.Optional(Count('sources only: addresses actually sent to the upstream (the rest were stored fresh, or cannot be asked)')),
    batches: Type.Optional(Count('Team Cymru only: bulk queries answered')),
    startedAt: Moment('when the phase began'),
    finishedAt: Moment('when the phase finished'),
    waitingUntil: Type.Optional(Type.String({ format: 'date-time', description: 'while the state is waiting: when the block ends' })),
  },
  { $id: 'JobPhase' },
);

export const JobSchema = Type.Object(
  {
    id: Type.String({ format: 'uuid' }),
    kind: StringEnum(JOB_KINDS, { description: 'list: submitted with POST /jobs; refresh: the scheduled refresh of stale records' }),
    status: StringEnum(JOB_STATUSES),
    label: Nullable(Type.String()),
    sources: Type.Array(StringEnum(SOURCE_NAMES), { description: 'the sources the job asks' }),
    refresh: Type.Boolean({ description: 'whether stored answers that are still fresh are fetched again' }),
    createdAt: Type.String({ format: 'date-time' }),
    startedAt: Moment('when a worker first took the job'),
    finishedAt: Moment('when the job completed, failed or was cancelled'),
    counts: Type.Object({
      total: Count('strings in the list'),
      unique: Count('distinct routable addresses'),
      invalid: Count('strings that are not IP addresses'),
      bogon: Count('private or reserved addresses, not looked up'),
    }),
    phases: Type.Object(
      {
        collect: Type.Ref(JobPhaseSchema, { description: 'reading what the cache tiers hold of each address' }),
        maxmind: Type.Ref(JobPhaseSchema),
        cymru: Type.Ref(JobPhaseSchema),
        greynoise: Type.Ref(JobPhaseSchema),
        dshield: Type.Ref(JobPhaseSchema),
        persist: Type.Ref(JobPhaseSchema, { description: 'addresses finished, their records written' }),
      } satisfies Record<Phase, unknown>,
      { description: 'in the order an address goes through them' },
    ),
    etaSeconds: Nullable(
      Type.Integer({
        minimum: 0,
        description: 'estimated time left, from the work remaining, the pace so far and the rate limits; null before any pace is known',
      }),
    ),
    error: Type.Optional(Type.String({ description: 'why a failed job failed' })),
    results: Type.String({ description: 'where the results are' }),
  },
  { $id: 'Job' },
);
export type JobView = Static<typeof JobSchema>;

/** A record as POST /enrich answers it, for an address the job has not finished yet. */
export const PendingRecordSchema = Type.Composite(
  [
    Type.Omit(IpRecordSchema, ['status']),
    Type.Object({ status: StringEnum(['pending'], { description: 'the job has not finished this address yet' }) }),
  ],
  { $id: 'PendingRecord' },
);

export const JobResultSchema = Type.Union([Type.Ref(IpRecordSchema), Type.Ref(PendingRecordSchema)]);

export const JOB_SCHEMAS = [JobPhaseSchema, JobSchema, PendingRecordSchema];

export type JobPhaseView = Static<typeof JobPhaseSchema>;
