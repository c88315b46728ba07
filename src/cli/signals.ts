import { EXIT } from './exit.js';

export interface Interruption {
  /** Aborts at the first Ctrl-C (SIGINT) or SIGTERM. */
  signal: AbortSignal;
  dispose(): void;
}

/**
 * Ctrl-C as an AbortSignal, so that the command can stop what it does and say where things stand; a second
 * Ctrl-C ends the process at once.
 */
export function interruption(): Interruption {
  const controller = new AbortController();
  const onSignal = () => {
    if (controller.signal.aborted) process.exit(EXIT.interrupted);
    controller.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return {
    signal: controller.signal,
    dispose() {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}

/** What to run to pick a server's job up again after leaving it. */
export function resumeHint(id: string, server: string): string {
  const at = `--server ${server}`;
  return (
    `\ninterrupted: job ${id} keeps running on ${server}\n` +
    `  progress:  ip-enrich job status ${id} ${at} --follow\n` +
    `  results:   ip-enrich job results ${id} ${at} --wait -o results.csv\n` +
    `  cancel:    ip-enrich job cancel ${id} ${at}\n`
  );
}
