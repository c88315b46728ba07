import { Type } from '@sinclair/typebox';
import { PROBLEM_CONTENT_TYPE } from '../errors.js';

const DESCRIPTIONS: Record<number, string> = {
  400: 'the request is malformed (problem+json names what is wrong)',
  404: 'no such route',
  413: 'the request is too large',
  414: 'a path parameter is longer than the router takes',
  415: 'the body is not JSON',
  500: 'internal error',
  503: 'a required backend (the database) is unavailable',
};

/** Problem+json response schemas for the given status codes, by reference to the shared Problem schema. */
export function problemResponses(...statuses: number[]) {
  return Object.fromEntries(
    statuses.map((status) => [
      status,
      {
        description: DESCRIPTIONS[status] ?? 'error',
        content: { [PROBLEM_CONTENT_TYPE]: { schema: Type.Ref('Problem') } },
      },
    ]),
  );
}
