import type { JobEngine } from './engine.js';
import { CliError, EXIT } from './exit.js';
import type { Progress } from './progress.js';

/** The jobs engine in this process: waits for the job runner (issue 10). */
export async function openLocalJobs(_env: NodeJS.ProcessEnv, _progress: Progress): Promise<JobEngine> {
  throw new CliError('enriching without a server needs the job runner, which this build lacks; give --server URL', EXIT.usage);
}
