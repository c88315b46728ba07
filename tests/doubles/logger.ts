import type { FastifyBaseLogger } from 'fastify';
import { pino } from 'pino';

export interface LogLine {
  level: number;
  msg: string;
}

/** A real pino logger whose lines are kept, parsed, for a test to read. */
export function capturingLogger(): { logger: FastifyBaseLogger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => lines.push(JSON.parse(line) as LogLine) });
  return { logger, lines };
}
