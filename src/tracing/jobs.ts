import { context, createContextKey, type Context, type Span } from '@opentelemetry/api';
import { PHASES, type JobProgress, type Phase } from '../jobs/model.js';
import { activeTracer, failSpan, inSpan } from './spans.js';

/**
 * Spans of a job (src/jobs/runner.ts). A job runs in slices, possibly on several workers, so its trace is
 * per slice: `job.slice` with the job id, the slice's chunks under it (each an `enrich` span), and one span
 * per phase the slice worked on (`job.collect`, `job.cymru`, …), from the phase's start (or the slice's) to
 * its end (or the slice's, with `ipenrich.job.phase.finished` false: the next slice goes on with it).
 */

interface SliceTrace {
  jobId: string;
  /** The slice span's context, the parent of its phase spans. */
  parent: Context;
  startedAt: number;
  open: Map<Phase, Span>;
  finished: Set<Phase>;
}

const SLICE = createContextKey('ipenrich job slice');

interface TracedJob {
  id: string;
  kind: string;
  unique: number;
  progress: unknown;
}

/** Phase timestamps come from the service's clock; a span's times stay within the slice as it really ran. */
const within = (iso: string | null, from: number, to: number) => Math.min(Math.max(iso === null ? from : Date.parse(iso), from), to);

/** Runs one slice of a job in its span; `run` resolves with how the slice ended. */
export function traceJobSlice<T extends { kind: string; error?: unknown }>(job: TracedJob, run: () => Promise<T>): Promise<T> {
  const tracer = activeTracer();
  if (tracer === undefined) return run();
  const progress = job.progress as JobProgress;
  const attributes = { 'ipenrich.job.id': job.id, 'ipenrich.job.kind': job.kind, 'ipenrich.job.unique': job.unique };
  return inSpan(
    tracer,
    'job.slice',
    attributes,
    () => {
      const slice: SliceTrace = {
        jobId: job.id,
        parent: context.active(),
        startedAt: Date.now(),
        open: new Map(),
        finished: new Set(PHASES.filter((phase) => progress[phase].finishedAt !== null)),
      };
      return context.with(context.active().setValue(SLICE, slice), run).finally(() => {
        for (const [phase, span] of slice.open) endPhase(span, progress[phase], false);
        slice.open.clear();
      });
    },
    (span, end) => {
      span.setAttribute('ipenrich.job.slice_end', end.kind);
      if (end.kind === 'failed') failSpan(span, end.error);
    },
  );
}

function endPhase(span: Span, entry: JobProgress[Phase], finished: boolean, at = Date.now()): void {
  span.setAttributes({
    'ipenrich.job.phase.finished': finished,
    'ipenrich.job.phase.done': entry.done,
    'ipenrich.job.phase.total': entry.total,
    'ipenrich.job.phase.asked': entry.asked,
    'ipenrich.job.phase.batches': entry.batches,
  });
  span.end(at);
}

/** Opens the phase spans of phases that have started and ends those that have finished, after a chunk. */
export function traceJobProgress(progress: JobProgress): void {
  const tracer = activeTracer();
  if (tracer === undefined) return;
  const slice = context.active().getValue(SLICE) as SliceTrace | undefined;
  if (slice === undefined) return;
  const now = Date.now();
  for (const phase of PHASES) {
    const entry = progress[phase];
    if (entry.startedAt === null || slice.finished.has(phase)) continue;
    let span = slice.open.get(phase);
    if (span === undefined) {
      const startTime = within(entry.startedAt, slice.startedAt, now);
      span = tracer.startSpan(`job.${phase}`, { startTime, attributes: { 'ipenrich.job.id': slice.jobId, 'ipenrich.job.phase': phase } }, slice.parent);
      slice.open.set(phase, span);
    }
    if (entry.finishedAt !== null) {
      endPhase(span, entry, true, within(entry.finishedAt, slice.startedAt, now));
      slice.open.delete(phase);
      slice.finished.add(phase);
    }
  }
}
