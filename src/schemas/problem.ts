import { Type } from '@sinclair/typebox';

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
