import type { RateLimitedSource } from '../enrich/plan.js';
import type { SourceName } from '../record/model.js';
import type { JobPhaseView, JobView } from '../schemas/jobs.js';
import { FINISHED_STATUSES, PHASES, type JobKind, type JobProgress, type JobStatus, type PhaseProgress } from './model.js';
import type { JobRow } from './store.js';

/** What the limiters say now: each rate-limited upstream's Retry-After block, and its rate. */
export interface UpstreamPace {
  blockedUntil: Record<RateLimitedSource, number | null>;
  rate: Record<RateLimitedSource, number>;
}

const BULK_SOURCES = ['maxmind', 'cymru'] as const;
const LIMITED = ['greynoise', 'dshield'] as const;

/**
 * `waiting` (a rate-limited source's block, null for every other phase) comes before `pending`: a block short
 * enough to be waited out inside a chunk holds the job before that chunk has recorded anything, the first one
 * included.
 */
function phaseState(entry: PhaseProgress, requested: boolean, status: string, waiting: number | null): JobPhaseView['state'] {
  if (!requested) return 'skipped';
  if (entry.done >= entry.total && (entry.total > 0 || status === 'completed')) return 'done';
  if (FINISHED_STATUSES.has(status)) return 'stopped';
  if (waiting !== null) return 'waiting';
  return entry.startedAt === null ? 'pending' : 'running';
}

/**
 * The time left, in seconds: the bulk pass at the pace it has kept so far, then the slowest rate-limited
 * source at its rate for the share of addresses it actually had to ask, plus what remains of its block.
 */
function eta(progress: JobProgress, sources: readonly SourceName[], status: string, now: number, pace: UpstreamPace, waits: Record<RateLimitedSource, number | null>): number | null {
  if (status === 'completed') return 0;
  if (FINISHED_STATUSES.has(status)) return null;
  let seconds = 0;
  const bulk = BULK_SOURCES.filter((source) => sources.includes(source)).map((source) => progress[source]);
  const bulkLeft = Math.max(0, ...bulk.map((entry) => entry.total - entry.done));
  if (bulkLeft > 0) {
    const slowest = bulk.reduce((a, b) => (a.done <= b.done ? a : b));
    if (slowest.startedAt === null || slowest.done === 0) return null;
    const perSecond = slowest.done / Math.max(1, (now - Date.parse(slowest.startedAt)) / 1000);
    seconds += bulkLeft / perSecond;
  }
  let limited = 0;
  for (const source of LIMITED) {
    if (!sources.includes(source)) continue;
    const entry = progress[source];
    const left = entry.total - entry.done;
    if (left <= 0) continue;
    const share = entry.done > 0 ? entry.asked / entry.done : 1;
    const blocked = Math.max(0, ((waits[source] ?? now) - now) / 1000);
    limited = Math.max(limited, (left * share) / pace.rate[source] + blocked);
  }
  return Math.ceil(seconds + limited);
}

/** A job as the API shows it. */
export function jobView(row: JobRow, now: number, pace: UpstreamPace): JobView {
  const progress = row.progress as unknown as JobProgress;
  const sources = row.sources as SourceName[];
  const status = row.status as JobStatus;
  const waits = {} as Record<RateLimitedSource, number | null>;
  for (const source of LIMITED) {
    const stored = progress[source].waitingUntil;
    const until = Math.max(stored ? Date.parse(stored) : 0, pace.blockedUntil[source] ?? 0);
    waits[source] = status === 'running' && until > now && progress[source].done < progress[source].total ? until : null;
  }
  const phases = Object.fromEntries(
    PHASES.map((phase) => {
      const entry = progress[phase];
      const requested = phase === 'collect' || phase === 'persist' || sources.includes(phase);
      const waiting = phase === 'greynoise' || phase === 'dshield' ? waits[phase] : null;
      const view: JobPhaseView = {
        state: phaseState(entry, requested, status, waiting),
        done: entry.done,
        total: entry.total,
        startedAt: entry.startedAt,
        finishedAt: entry.finishedAt,
      };
      if (phase !== 'collect' && phase !== 'persist') view.asked = entry.asked;
      if (phase === 'cymru') view.batches = entry.batches;
      if (view.state === 'waiting' && waiting !== null) view.waitingUntil = new Date(waiting).toISOString();
      return [phase, view];
    }),
  ) as JobView['phases'];
  const view: JobView = {
    id: row.id,
    kind: row.kind as JobKind,
    status,
    label: row.label,
    sources,
    refresh: row.refresh,
    createdAt: row.createdAt.toISOString(),
    startedAt: row.startedAt?.toISOString() ?? null,
    finishedAt: row.finishedAt?.toISOString() ?? null,
    counts: { total: row.total, unique: row.unique, invalid: row.invalid, bogon: row.bogon },
    phases,
    etaSeconds: eta(progress, sources, status, now, pace, waits),
    results: `/jobs/${row.id}/results`,
  };
  if (row.error !== null && status === 'failed') view.error = row.error;
  return view;
}
