import { parseArgs } from 'node:util';
import { SETTINGS } from './settings.js';

/** The parts of the bench that can be run alone. */
export const PARTS = ['cold', 'sources', 'ip', 'save', 'job'] as const;
export type Part = (typeof PARTS)[number];

export interface BenchOptions {
  parts: ReadonlySet<Part>;
  cymruConnections: readonly number[];
  latenciesMs: readonly number[];
  loadConnections: readonly number[];
}

function numbers(flag: string, text: string | undefined, all: readonly number[]): readonly number[] {
  if (text === undefined || text === '') return all;
  const values = text.split(',').map((part) => Number(part.trim()));
  if (values.some((value) => !Number.isInteger(value) || value <= 0)) throw new Error(`${flag} takes positive integers separated by commas, not ${text}`);
  return values;
}

/**
 * `npm run bench -- --only cold,ip --cymru-connections 8 --latency 200 --load-connections 64` (or BENCH_ONLY,
 * BENCH_CYMRU_CONNECTIONS, BENCH_LATENCY, BENCH_LOAD_CONNECTIONS): a part of the matrix, for measuring one
 * change again and again. Without them the whole bench runs.
 */
export function benchOptions(argv: readonly string[] = process.argv.slice(2), env = process.env): BenchOptions {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      only: { type: 'string' },
      'cymru-connections': { type: 'string' },
      latency: { type: 'string' },
      'load-connections': { type: 'string' },
    },
  });
  const only = values.only ?? env.BENCH_ONLY;
  const parts = only ? only.split(',').map((part) => part.trim()) : [...PARTS];
  for (const part of parts) {
    if (!(PARTS as readonly string[]).includes(part)) throw new Error(`--only takes ${PARTS.join(', ')}, not ${part}`);
  }
  return {
    parts: new Set(parts as Part[]),
    cymruConnections: numbers('--cymru-connections', values['cymru-connections'] ?? env.BENCH_CYMRU_CONNECTIONS, SETTINGS.matrix.cymruConnections),
    latenciesMs: numbers('--latency', values.latency ?? env.BENCH_LATENCY, SETTINGS.matrix.queryLatenciesMs),
    loadConnections: numbers('--load-connections', values['load-connections'] ?? env.BENCH_LOAD_CONNECTIONS, SETTINGS.matrix.loadConnections),
  };
}
