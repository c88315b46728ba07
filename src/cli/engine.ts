import type { SourceName } from '../record/model.js';
import type { JobProgressView } from './progress.js';

/** A job as GET /jobs/{id} shows it; the command reads the parts progress needs, and prints the rest. */
export type JobView = JobProgressView & Record<string, unknown>;

export const FINISHED = new Set(['completed', 'failed', 'cancelled']);

export interface Submission {
  /** Distinct addresses, read once. */
  addresses: Iterable<string>;
  sources?: readonly SourceName[];
  refresh: boolean;
  label?: string;
}

/**
 * Where a job runs: a service reached over HTTP (--server), or the engine in this process. Both answer with
 * the jobs API's shapes, so following and writing do not know which.
 */
export interface JobEngine {
  /** For messages: the server's URL, or "this process". */
  readonly where: string;
  /** Whether the job goes on without this process (a server's job does; one run here does not). */
  readonly detached: boolean;
  submit(submission: Submission): Promise<JobView>;
  get(id: string): Promise<JobView>;
  /** Every result from the first, as NDJSON lines (one record each), in input order. */
  results(id: string, signal?: AbortSignal): AsyncIterable<string>;
  cancel(id: string): Promise<JobView>;
  close(): Promise<void>;
}
