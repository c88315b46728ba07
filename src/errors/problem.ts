import { PROBLEMS, type FixedDetailCode, type ProblemCode } from './registry.js';

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

/** A problem to answer: a code, and the detail unless the registry fixes it. */
export type Problem = { code: FixedDetailCode; detail?: string } | { code: ProblemCode; detail: string };

export interface ProblemBody {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: string;
  instance?: string;
}

export function problemBody(problem: Problem, requestId?: string): ProblemBody {
  const { code } = problem;
  const { status, title, detail } = PROBLEMS[code];
  // The type of `problem` guarantees one of the two details.
  return { type: `urn:ip-enrich:problem:${code}`, title, status, detail: (problem.detail ?? detail)!, code, instance: requestId };
}

/** Thrown by a route to answer a problem; the error handler turns it into problem+json. */
export class ProblemError extends Error {
  override name = 'ProblemError';
  readonly problem: Problem;

  /** The detail may be left out only for a code whose detail the registry fixes. */
  constructor(...[code, detail]: [code: FixedDetailCode, detail?: string] | [code: ProblemCode, detail: string]) {
    super(detail ?? PROBLEMS[code].detail);
    this.problem = detail === undefined ? { code: code as FixedDetailCode } : { code, detail };
  }

  /** Headers the answer carries besides the problem (WWW-Authenticate, Retry-After). */
  headers: Record<string, string | number> = {};

  get code(): ProblemCode {
    return this.problem.code;
  }

  withHeaders(headers: Record<string, string | number>): this {
    this.headers = { ...this.headers, ...headers };
    return this;
  }
}
