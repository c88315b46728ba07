import { SOURCE_NAMES, type SourceName } from '../record/model.js';

export const JOB_STATUSES = ['queued', 'running', 'completed', 'failed', 'cancelled'] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];
/**
 * A job whose inputs are still being written. It is nobody's to see or run yet: a list of a million
 * addresses takes seconds to store, and a worker must not start on half of it.
 */
export const CREATED = 'created';
export const FINISHED_STATUSES: ReadonlySet<string> = new Set<JobStatus>(['completed', 'failed', 'cancelled']);
export const ACTIVE_STATUSES = ['queued', 'running'] as const satisfies readonly JobStatus[];

export const JOB_KINDS = ['list', 'refresh'] as const;
export type JobKind = (typeof JOB_KINDS)[number];

export const PHASES = ['collect', 'maxmind', 'cymru', 'greynoise', 'dshield', 'persist'] as const;
export type Phase = (typeof PHASES)[number];

/**
 * A job goes through its sources in two passes: first MaxMind and Team Cymru in chunks of one bulk query,
 * then GreyNoise and DShield in chunks sized to their rate, waiting for their budgets. Each address keeps
 * the sources still due as bits, so a resumed job asks each address only what it still lacks.
 */
export type Pass = 'bulk' | 'limited';

export const SOURCE_BITS: Readonly<Record<SourceName, number>> = { maxmind: 1, cymru: 2, greynoise: 4, dshield: 8 };
export const PASS_BITS: Readonly<Record<Pass, number>> = { bulk: 1 | 2, limited: 4 | 8 };

export function maskOf(sources: readonly SourceName[]): number {
  return sources.reduce((mask, source) => mask | SOURCE_BITS[source], 0);
}

export function sourcesOf(mask: number): SourceName[] {
  return SOURCE_NAMES.filter((source) => (mask & SOURCE_BITS[source]) !== 0);
}

/** One phase's account, as the job row keeps it; its state is derived when the job is shown. */
export interface PhaseProgress {
  /** Addresses the phase has settled (for a source: answered now, or found fresh, unsupported or off). */
  done: number;
  total: number;
  /** Sources only: addresses actually sent to the upstream. */
  asked: number;
  /** Team Cymru only: bulk queries answered. */
  batches: number;
  startedAt: string | null;
  finishedAt: string | null;
  /** Rate-limited sources: the upstream's Retry-After block the job last ran into, while it lasts. */
  waitingUntil: string | null;
}

export type JobProgress = Record<Phase, PhaseProgress>;

const phase = (total: number): PhaseProgress => ({
  done: 0,
  total,
  asked: 0,
  batches: 0,
  startedAt: null,
  finishedAt: null,
  waitingUntil: null,
});

/** The progress of a job with `unique` distinct addresses, before any chunk. */
export function initialProgress(unique: number, sources: readonly SourceName[]): JobProgress {
  const requested = (source: SourceName) => (sources.includes(source) ? unique : 0);
  return {
    collect: phase(unique),
    maxmind: phase(requested('maxmind')),
    cymru: phase(requested('cymru')),
    greynoise: phase(requested('greynoise')),
    dshield: phase(requested('dshield')),
    persist: phase(unique),
  };
}
