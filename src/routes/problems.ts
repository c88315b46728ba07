import { Type } from '@sinclair/typebox';
import { PROBLEM_CONTENT_TYPE } from '../errors/problem.js';
import { PROBLEMS, type ProblemCode } from '../errors/registry.js';

const DESCRIPTIONS: Record<number, string> = {
  400: 'the request is malformed (problem+json names what is wrong)',
  413: 'the request is too large',
  414: 'a path parameter is longer than the router takes',
  415: 'the body is not JSON',
  500: 'internal error',
  503: 'a required backend (the database) is unavailable',
};

/** A problem+json response schema, by reference to the shared Problem schema. */
export const problemResponse = (description: string) => ({
  description,
  content: { [PROBLEM_CONTENT_TYPE]: { schema: Type.Ref('Problem') } },
});

/** Problem+json response schemas for the statuses of the given codes. */
export function problemResponses(...codes: ProblemCode[]) {
  return Object.fromEntries(
    codes.map((code) => [PROBLEMS[code].status, problemResponse(DESCRIPTIONS[PROBLEMS[code].status] ?? 'error')]),
  );
}
