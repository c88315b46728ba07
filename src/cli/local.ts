import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { buildApp } from '../app.js';
import { ConfigError, loadConfig } from '../config.js';
import { errorMessage } from '../errors/message.js';
import type { JobRunner } from '../jobs/runner.js';
import { createJobRunner } from '../plugins/app/jobs.js';
import { FINISHED, type JobEngine, type JobView, type Submission } from './engine.js';
import { CliError, EXIT } from './exit.js';
import type { Progress } from './progress.js';

/** How long to wait before trying a job again that another worker holds, or whose slice failed. */
const RETRY_MS = 1000;

/** The service's app; named through buildApp so that this edge of the command needs no Fastify type. */
type App = Awaited<ReturnType<typeof buildApp>>;

const LEVEL_NAMES: Record<number, string> = { 10: 'trace', 20: 'debug', 30: 'info', 40: 'warn', 50: 'error', 60: 'fatal' };

/** A pino line as one line of text among the command's own messages: `warn: could not renew … (error: …)`. */
function logLine(json: string): string {
  try {
    const line = JSON.parse(json) as { level?: number; msg?: string; err?: { message?: string } };
    const level = LEVEL_NAMES[line.level ?? 30] ?? 'log';
    return `${level}: ${line.msg ?? ''}${line.err?.message ? ` (${line.err.message})` : ''}`;
  } catch {
    return json.trimEnd();
  }
}

/**
 * The engine in this process: the service's parts built from the same configuration variables (the
 * embedded database in DATA_DIR unless DATABASE_URL is set), in the API role, so that this process neither
 * takes other jobs from the queue nor runs the schedules, and a job runner that works only on the job this
 * command submitted, slice after slice, as a worker would.
 */
export async function openLocalJobs(env: NodeJS.ProcessEnv, progress: Progress): Promise<JobEngine> {
  let config;
  try {
    config = loadConfig(env, { ROLE: 'api' });
  } catch (error) {
    if (error instanceof ConfigError) throw new CliError(`configuration error: ${error.message}`, EXIT.usage);
    throw error;
  }
  // The service logs at info; here only what needs attention, among the command's own lines on standard error.
  const level = env.LOG_LEVEL?.trim() ? config.LOG_LEVEL : 'warn';
  const logger = { level, stream: { write: (line: string) => progress.notice(logLine(line)) } };
  const where = config.DATABASE_URL ? 'the database at DATABASE_URL' : `the embedded database in DATA_DIR ${config.DATA_DIR}`;
  progress.notice(`no --server: enriching in this process, with ${where}`);
  let app: App;
  try {
    app = await buildApp(config, { logger });
    await app.ready();
  } catch (error) {
    // The usual case: a service runs on the same DATA_DIR, which it holds; then the job belongs there.
    throw new CliError(`cannot start the engine in this process: ${errorMessage(error)} (or give --server URL)`, EXIT.failed);
  }
  return new LocalJobs(app, createJobRunner(app));
}

class LocalJobs implements JobEngine {
  readonly detached = false;
  readonly where = 'this process';
  readonly #drivers = new Set<Promise<void>>();
  readonly #closing = new AbortController();
  #failure: unknown;

  constructor(
    private readonly app: App,
    private readonly runner: JobRunner,
  ) {}

  async submit(submission: Submission): Promise<JobView> {
    const job = await this.app.jobs.submit({
      inputs: [...submission.addresses],
      sources: submission.sources,
      refresh: submission.refresh,
      label: submission.label,
    });
    const driver = this.#drive(job.id).catch((error: unknown) => {
      if (!this.#closing.signal.aborted) this.#failure = error;
    });
    this.#drivers.add(driver);
    return job;
  }

  /** Runs the job's slices here until it has finished (or this engine closes). */
  async #drive(id: string): Promise<void> {
    const signal = this.#closing.signal;
    while (!signal.aborted) {
      const end = await this.runner.runSlice(id);
      if (end.kind === 'finished') return;
      if (end.kind === 'continue') {
        // Every address left waits for an upstream's Retry-After block: the slice resumes when it ends.
        if (end.after) await sleep(Math.max(0, end.after.getTime() - Date.now()), undefined, { signal });
        continue;
      }
      // Skipped (another worker on a shared DATABASE_URL holds it, or it has ended) or failed (counted; the
      // job fails after a few in a row): its status says which.
      const job = await this.app.jobs.get(id);
      if (!job || FINISHED.has(job.status)) return;
      await sleep(RETRY_MS, undefined, { signal });
    }
  }

  async get(id: string): Promise<JobView> {
    if (this.#failure !== undefined) throw new CliError(`the job runner stopped: ${errorMessage(this.#failure)}`, EXIT.failed);
    const job = await this.app.jobs.get(id);
    if (!job) throw new CliError(`there is no job ${id}`, EXIT.failed);
    return job;
  }

  async *results(id: string): AsyncIterable<string> {
    for await (const line of createInterface({ input: this.app.jobs.results.ndjson(id, 0), crlfDelay: Infinity })) {
      if (line !== '') yield line;
    }
  }

  async cancel(id: string): Promise<JobView> {
    const outcome = await this.app.jobs.cancel(id);
    if (outcome === null) throw new CliError(`there is no job ${id}`, EXIT.failed);
    return outcome === 'finished' ? this.get(id) : outcome;
  }

  async close(): Promise<void> {
    this.#closing.abort();
    await this.runner.stop();
    await Promise.allSettled(this.#drivers);
    await this.app.close();
  }
}
