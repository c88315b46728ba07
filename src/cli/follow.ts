import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import type { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type { JobEngine, JobView } from './engine.js';
import { FINISHED } from './engine.js';
import { CliError, EXIT, usageError, type ExitStatus } from './exit.js';
import { formatFromName, resultWriter, ResultTally, type CsvColumn, type OutputFormat, type ResultRecord } from './output.js';
import type { Progress } from './progress.js';

/** How often a job is asked for its progress: soon at first (a small job is done at once), then every second. */
const FIRST_POLL_MS = 100;
const POLL_MS = 1000;

/** Asks for the job until it has finished, showing each answer. Rejects with an AbortError when `signal` aborts. */
export async function followJob(engine: JobEngine, id: string, progress: Progress, signal: AbortSignal): Promise<JobView> {
  let wait = FIRST_POLL_MS;
  for (;;) {
    signal.throwIfAborted();
    const view = await engine.get(id);
    progress.job(view);
    if (FINISHED.has(view.status)) return view;
    await sleep(wait, undefined, { signal });
    wait = Math.min(POLL_MS, wait * 2);
  }
}

/** The format asked for, else the one the output file's name says, else a table on a terminal and CSV elsewhere. */
export function chooseFormat(format: OutputFormat | undefined, output: string | undefined, stdout: NodeJS.WriteStream): OutputFormat {
  const chosen = format ?? (output === undefined ? undefined : formatFromName(output)) ?? (output === undefined && stdout.isTTY ? 'table' : 'csv');
  if (chosen === 'table' && (output !== undefined || !stdout.isTTY)) {
    throw usageError('--format table is for a terminal; write a file or a pipe as csv, ndjson or json');
  }
  return chosen;
}

export interface Destination {
  stream: Writable;
  /** For messages: the file, or "standard output". */
  name: string;
  /** Aborts once the reader of standard output has gone (`| head`): writing stops, and the command ends as done. */
  gone: AbortSignal;
  close(): Promise<void>;
}

/** The output file, or standard output (never closed). */
export async function openDestination(output: string | undefined, stdout: NodeJS.WriteStream = process.stdout): Promise<Destination> {
  const gone = new AbortController();
  if (output === undefined || output === '-') {
    stdout.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code !== 'EPIPE') throw error;
      gone.abort();
      // A write waiting for 'drain' would wait forever.
      stdout.emit('drain');
    });
    return { stream: stdout, name: 'standard output', gone: gone.signal, close: async () => undefined };
  }
  const stream = createWriteStream(output);
  try {
    await once(stream, 'open');
  } catch (error) {
    throw new CliError(`cannot write ${output}: ${(error as Error).message}`, EXIT.usage);
  }
  return {
    stream,
    name: output,
    gone: gone.signal,
    close: async () => {
      const finished = once(stream, 'finish');
      stream.end();
      await finished;
    },
  };
}

/** Writes every result of a job; the tally tells what was written and which exit status it makes. */
export async function writeResults(
  engine: JobEngine,
  id: string,
  format: OutputFormat,
  destination: Destination,
  columns: readonly CsvColumn[],
  progress: Progress,
  signal: AbortSignal,
): Promise<ResultTally> {
  const tally = new ResultTally();
  const writer = resultWriter(format, destination.stream, columns);
  for await (const line of engine.results(id, signal)) {
    if (destination.gone.aborted) break;
    const record = JSON.parse(line) as ResultRecord;
    tally.add(record);
    await writer.write(record, line);
    if (tally.records % 1000 === 0) progress.writing(tally.records);
  }
  if (!destination.gone.aborted) await writer.end();
  progress.writing(tally.records);
  await destination.close();
  return tally;
}

/** 0, or 3 when a record has a source that ended in error. */
export function resultStatus(tally: ResultTally): ExitStatus {
  return tally.withErrors > 0 ? EXIT.recordErrors : EXIT.ok;
}

/** A job that ended without completing: its status is the command's failure. */
export function unfinished(view: JobView): CliError {
  const why = typeof view.error === 'string' ? `: ${view.error}` : '';
  return new CliError(`job ${view.id} ${view.status}${why}`, EXIT.failed);
}
