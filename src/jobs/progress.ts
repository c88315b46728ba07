import type { Outcomes } from '../enrich/record-view.js';
import { SOURCE_NAMES, type SourceName } from '../record/model.js';
import { SOURCE_BITS, type JobProgress, type Phase, type PhaseProgress } from './model.js';

/** What one address of a chunk was due for, and what the chunk's sources said about it. */
export interface AddressResult {
  ip: string;
  /** The sources due before the chunk. */
  due: number;
  outcomes: Outcomes;
}

/** One address after a chunk: what is still due, what to keep of this job's answers, when to ask again. */
export interface AddressAfter {
  ip: string;
  due: number;
  outcomes: Outcomes | null;
  /** The earliest moment a rate-limited source may be asked again (epoch ms), when one was. */
  retryAt: number | undefined;
}

/** Outcomes the stored record shows by itself: a fresh answer, or nothing yet (asked again). */
const SHOWN_BY_RECORD: ReadonlySet<string> = new Set(['ok', 'not_found', 'rate_limited']);
const ASKED: ReadonlySet<string> = new Set(['ok', 'not_found', 'error']);

/**
 * Settles the addresses of a chunk that asked `asked` (bits) and folds it into the job's progress: each
 * address leaves the sources that answered, and keeps those that were rate limited, to be asked again.
 * `jobMask` is every source the job asks, which an address is due for until its first chunk ends. Returns
 * the addresses as they now are and the phases this chunk finished.
 */
export function settleChunk(
  progress: JobProgress,
  results: readonly AddressResult[],
  asked: number,
  jobMask: number,
  started: Date,
  ended: Date,
): { addresses: AddressAfter[]; finished: Phase[] } {
  const settled = Object.fromEntries(SOURCE_NAMES.map((source) => [source, 0])) as Record<SourceName, number>;
  const sent = { ...settled };
  const waitUntil: Partial<Record<SourceName, number>> = {};
  let collected = 0;
  let persisted = 0;
  const addresses = results.map(({ ip, due, outcomes }) => {
    if (due === jobMask) collected += 1;
    let still = due & ~asked;
    let kept: Outcomes | null = null;
    let retryAt: number | undefined;
    for (const source of SOURCE_NAMES) {
      if ((asked & SOURCE_BITS[source]) === 0) continue;
      const outcome = outcomes[source];
      if (outcome?.status === 'rate_limited') {
        still |= SOURCE_BITS[source];
        const at = Date.parse(outcome.retryAt);
        retryAt = Math.min(retryAt ?? at, at);
        waitUntil[source] = Math.max(waitUntil[source] ?? at, at);
        continue;
      }
      settled[source] += 1;
      if (outcome && ASKED.has(outcome.status)) sent[source] += 1;
      if (outcome && !SHOWN_BY_RECORD.has(outcome.status)) (kept ??= {})[source] = outcome;
    }
    if (still === 0) persisted += 1;
    return { ip, due: still, outcomes: kept, retryAt };
  });

  const finished: Phase[] = [];
  const advance = (phase: Phase, by: number, update?: (entry: PhaseProgress) => void) => {
    const entry = progress[phase];
    if (by > 0) entry.startedAt ??= started.toISOString();
    entry.done += by;
    update?.(entry);
    if (entry.finishedAt === null && entry.total > 0 && entry.done >= entry.total) {
      entry.finishedAt = ended.toISOString();
      finished.push(phase);
    }
  };
  advance('collect', collected);
  for (const source of SOURCE_NAMES) {
    if ((asked & SOURCE_BITS[source]) === 0) continue;
    advance(source, settled[source], (entry) => {
      entry.startedAt ??= started.toISOString();
      entry.asked += sent[source];
      if (source === 'cymru' && sent.cymru > 0) entry.batches += 1;
      const until = waitUntil[source];
      entry.waitingUntil = until !== undefined ? new Date(until).toISOString() : null;
    });
  }
  advance('persist', persisted);
  return { addresses, finished };
}

/** One phase as a log line says it: `cymru 8500/10000 addresses, 17 batches`. */
export function describePhase(phase: Phase, entry: PhaseProgress): string {
  let line = `${phase} ${entry.done}/${entry.total} addresses`;
  if (phase === 'cymru') line += `, ${entry.batches} batches`;
  if (entry.waitingUntil) line += `, waiting for the upstream until ${entry.waitingUntil}`;
  return line;
}
