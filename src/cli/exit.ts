/**
 * The command's exit statuses, as README's "Command line" section documents them. Scripts run from cron
 * branch on these, so a status never changes meaning.
 */
export const EXIT = {
  /** Done: every record written. */
  ok: 0,
  /** Something went wrong that none of the others names: a job that failed, a bug. */
  failed: 1,
  /** Usage or input error: a wrong option, a file that cannot be read as addresses. */
  usage: 2,
  /** Done, but some records ended with a source in `error`. */
  recordErrors: 3,
  /** The service could not be reached, or refused (its problem+json detail is printed). */
  server: 4,
  /** Interrupted (Ctrl-C); a server job keeps running. */
  interrupted: 130,
} as const;

export type ExitStatus = (typeof EXIT)[keyof typeof EXIT];

/** A failure the command explains in one line and ends with `status`. */
export class CliError extends Error {
  override name = 'CliError';

  constructor(
    message: string,
    readonly status: ExitStatus,
  ) {
    super(message);
  }
}

export const usageError = (message: string) => new CliError(message, EXIT.usage);

/** Resolves once everything written to `stream` so far has been handed to the system. */
const flushed = (stream: NodeJS.WriteStream) => new Promise<void>((resolve) => stream.write('', () => resolve()));

/**
 * Ends a one-shot command with its status. Writes to a pipe are asynchronous on Linux, and process.exit drops
 * what is still queued: `ip-enrich job results ID | jq` lost the last records whenever the reader was slower.
 */
export async function exitWith(status: number): Promise<never> {
  await Promise.all([flushed(process.stdout), flushed(process.stderr)]);
  process.exit(status);
}
