import { HttpJobs } from './client.js';
import type { JobEngine } from './engine.js';
import type { Progress } from './progress.js';

/**
 * The service at `server` when one is given (--server or IPENRICH_URL); otherwise the engine in this process,
 * loaded only then, so that a command talking to a server never loads the database code.
 */
export async function openEngine(server: URL | undefined, progress: Progress): Promise<JobEngine> {
  if (server !== undefined) return new HttpJobs(server);
  const { openLocalJobs } = await import('./local.js');
  return openLocalJobs(process.env, progress);
}
