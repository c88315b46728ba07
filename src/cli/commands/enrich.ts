import type { InputFormat } from '../../input/extract.js';
import { serverUrl } from '../client.js';
import type { SourceName } from '../../record/model.js';
import { collectAddresses } from '../collect.js';
import { csvColumns } from '../columns.js';
import type { JobEngine, JobView } from '../engine.js';
import { CliError, EXIT } from '../exit.js';
import { chooseFormat, followJob, openDestination, resultStatus, unfinished, writeResults } from '../follow.js';
import { openEngine } from '../engines.js';
import type { OutputFormat } from '../output.js';
import { createProgress, type Progress } from '../progress.js';
import { interruption, resumeHint } from '../signals.js';

export interface EnrichOptions {
  input?: InputFormat;
  column?: string;
  field?: string;
  server?: string;
  format?: OutputFormat;
  output?: string;
  sources?: SourceName[];
  refresh: boolean;
  label?: string;
  quiet: boolean;
  progressEvery: number;
}

const LABEL_LENGTH = 200;

function labelFor(files: readonly string[]): string {
  const names = files.length === 0 ? 'standard input' : files.map((file) => (file === '-' ? 'standard input' : file)).join(', ');
  return names.length > LABEL_LENGTH ? `${names.slice(0, LABEL_LENGTH - 1)}…` : names;
}

/**
 * `ip-enrich enrich [FILE...]`: reads the addresses, enriches them as one job (on the server, or in this
 * process), follows it and writes one record per distinct address. Resolves to the exit status.
 */
export async function enrich(files: string[], options: EnrichOptions): Promise<number> {
  // Refused before anything is read: a wrong format must not cost a million-line read first.
  const format = chooseFormat(options.format, options.output, process.stdout);
  const server = options.server === undefined || options.server === '' ? undefined : serverUrl(options.server);
  const progress = createProgress({ quiet: options.quiet, everyMs: options.progressEvery * 1000 });
  const interrupted = interruption();
  let engine: JobEngine | undefined;
  let job: JobView | undefined;
  try {
    if (files.length === 0 && process.stdin.isTTY) progress.notice('reading addresses from standard input, one per line (Ctrl-D ends)');
    const collector = await collectAddresses(files, options, progress);
    interrupted.signal.throwIfAborted();
    engine = await openEngine(server, progress);
    interrupted.signal.throwIfAborted();
    job = await engine.submit({
      addresses: collector.addresses(),
      sources: options.sources,
      refresh: options.refresh,
      label: options.label ?? labelFor(files),
    });
    collector.clear();
    progress.notice(`job ${job.id} ${engine.detached ? `submitted to ${engine.where}` : 'runs in this process'}`);
    const done = await followJob(engine, job.id, progress, interrupted.signal);
    if (done.status !== 'completed') throw unfinished(done);
    const destination = await openDestination(options.output);
    const tally = await writeResults(engine, job.id, format, destination, await csvColumns(), progress, interrupted.signal);
    progress.stop();
    progress.notice(tally.describe(destination.name));
    return resultStatus(tally);
  } catch (error) {
    progress.stop();
    if (!interrupted.signal.aborted) throw error;
    return stopped(engine, job, progress);
  } finally {
    interrupted.dispose();
    await engine?.close();
  }
}

/** After Ctrl-C: a server's job goes on (and the way back to it is printed); a job in this process is cancelled. */
async function stopped(engine: JobEngine | undefined, job: JobView | undefined, progress: Progress): Promise<number> {
  if (!engine || !job) {
    progress.notice('interrupted before a job was submitted');
    return EXIT.interrupted;
  }
  if (engine.detached) {
    process.stderr.write(resumeHint(job.id, engine.where));
    return EXIT.interrupted;
  }
  try {
    await engine.cancel(job.id);
  } catch (error) {
    if (!(error instanceof CliError)) throw error;
  }
  process.stderr.write(
    `interrupted: job ${job.id} cancelled; what it finished is stored, so running the same command again only asks for the rest\n`,
  );
  return EXIT.interrupted;
}
