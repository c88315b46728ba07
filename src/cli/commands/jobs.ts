import { HttpJobs, serverUrl } from '../client.js';
import { csvColumns } from '../columns.js';
import type { JobView } from '../engine.js';
import { EXIT, usageError } from '../exit.js';
import { chooseFormat, followJob, openDestination, resultStatus, unfinished, writeResults } from '../follow.js';
import type { OutputFormat } from '../output.js';
import { createProgress, describeJob } from '../progress.js';
import { interruption, resumeHint } from '../signals.js';

export interface ServerOptions {
  server?: string;
  quiet: boolean;
  progressEvery: number;
}

function jobsAt(options: ServerOptions): HttpJobs {
  if (options.server === undefined || options.server === '') {
    throw usageError('job commands talk to a running service: give --server URL or set IPENRICH_URL');
  }
  return new HttpJobs(serverUrl(options.server));
}

/**
 * Runs `work` with Ctrl-C watched. An interruption leaves the job running on the server and says how to pick
 * it up again; any other failure goes on to the caller.
 */
async function resumable(
  jobs: HttpJobs,
  id: string,
  progress: ReturnType<typeof createProgress>,
  work: (signal: AbortSignal) => Promise<number>,
): Promise<number> {
  const interrupted = interruption();
  try {
    return await work(interrupted.signal);
  } catch (error) {
    progress.stop();
    if (!interrupted.signal.aborted) throw error;
    process.stderr.write(resumeHint(id, jobs.where));
    return EXIT.interrupted;
  } finally {
    interrupted.dispose();
  }
}

const printJob = (view: JobView) => process.stdout.write(`${JSON.stringify(view, null, 2)}\n`);

/** `ip-enrich job status ID [--follow]`: the job as JSON on standard output; with --follow, progress until it ends. */
export async function jobStatus(id: string, options: ServerOptions & { follow: boolean }): Promise<number> {
  const jobs = jobsAt(options);
  if (!options.follow) {
    const view = await jobs.get(id);
    printJob(view);
    if (!options.quiet && !process.stdout.isTTY) process.stderr.write(`${describeJob(view, Date.now())}\n`);
    return EXIT.ok;
  }
  const progress = createProgress({ quiet: options.quiet, everyMs: options.progressEvery * 1000 });
  return resumable(jobs, id, progress, async (signal) => {
    const view = await followJob(jobs, id, progress, signal);
    progress.stop();
    printJob(view);
    return EXIT.ok;
  });
}

/** `ip-enrich job results ID`: the results as they are (pending ones included), or with --wait once the job ends. */
export async function jobResults(
  id: string,
  options: ServerOptions & { wait: boolean; format?: OutputFormat; output?: string },
): Promise<number> {
  const jobs = jobsAt(options);
  const format = chooseFormat(options.format, options.output, process.stdout);
  const progress = createProgress({ quiet: options.quiet, everyMs: options.progressEvery * 1000 });
  return resumable(jobs, id, progress, async (signal) => {
    if (options.wait) {
      const view = await followJob(jobs, id, progress, signal);
      if (view.status === 'failed') throw unfinished(view);
    } else {
      // Unknown ids are refused before an output file is created.
      await jobs.get(id);
    }
    const destination = await openDestination(options.output);
    const tally = await writeResults(jobs, id, format, destination, await csvColumns(), progress, signal);
    progress.stop();
    progress.notice(tally.describe(destination.name));
    return resultStatus(tally);
  });
}

/** `ip-enrich job cancel ID`: the cancelled job as JSON; a finished one is the server's 409 (exit 4). */
export async function jobCancel(id: string, options: ServerOptions): Promise<number> {
  const view = await jobsAt(options).cancel(id);
  printJob(view);
  return 0;
}
