import type { JobPhaseView, JobView } from '../../src/schemas/jobs.js';
import { api, ApiError, apiJson, showError } from './api.js';
import { byId, h } from './dom.js';
import { duration, moment, number } from './format.js';

/* A job's progress (GET /jobs/{id}): a bar per pass, with counts, the ETA and any Retry-After wait. */

type PhaseName = keyof JobView['phases'];

const PHASES: Array<{ name: PhaseName; label: string }> = [
  { name: 'collect', label: 'Cache tiers' },
  { name: 'maxmind', label: 'MaxMind' },
  { name: 'cymru', label: 'Team Cymru' },
  { name: 'greynoise', label: 'GreyNoise' },
  { name: 'dshield', label: 'DShield' },
  { name: 'persist', label: 'Written' },
];

const POLL_MS = 1000;
const RETRY_MS = 5000;

/** No answer at all, or a 5xx (503 database-unavailable, shutting-down): worth asking again; a 4xx is not. */
const passing = (error: unknown) => !(error instanceof ApiError) || error.status >= 500;
const FINISHED = new Set(['completed', 'failed', 'cancelled']);

export const isFinished = (job: JobView) => FINISHED.has(job.status);

function phaseText(phase: JobPhaseView, now: number): string {
  const parts = [`${number(phase.done)} / ${number(phase.total)}`];
  if (phase.asked !== undefined) parts.push(`${number(phase.asked)} asked`);
  if (phase.batches !== undefined) parts.push(`${number(phase.batches)} bulk ${phase.batches === 1 ? 'query' : 'queries'}`);
  if (phase.state === 'waiting' && phase.waitingUntil) {
    const left = (Date.parse(phase.waitingUntil) - now) / 1000;
    parts.push(`waiting ${duration(left)} for the upstream's Retry-After (until ${moment(phase.waitingUntil)})`);
  } else {
    parts.push(phase.state === 'skipped' ? 'skipped: not requested' : phase.state);
  }
  return parts.join(' · ');
}

function statusLine(job: JobView): string {
  const { counts } = job;
  const parts = [
    `${job.label ? `“${job.label}” ` : ''}${job.status}`,
    `${number(counts.total)} strings: ${number(counts.unique)} distinct routable addresses, ${number(counts.bogon)} bogons, ${number(counts.invalid)} invalid`,
  ];
  if (!isFinished(job) && job.etaSeconds !== null) parts.push(`about ${duration(job.etaSeconds)} left`);
  if (job.finishedAt) parts.push(`finished ${moment(job.finishedAt)}`);
  return parts.join(' · ');
}

function render(job: JobView): void {
  const now = Date.now();
  byId('job-title', HTMLHeadingElement).textContent = `Job ${job.id}`;
  byId('job-status', HTMLParagraphElement).textContent = statusLine(job);
  byId('job-cancel', HTMLButtonElement).hidden = isFinished(job);
  byId('job-phases', HTMLOListElement).replaceChildren(
    ...PHASES.map(({ name, label }) => {
      const phase = job.phases[name];
      const text = phaseText(phase, now);
      return h(
        'li',
        { class: `phase phase-${phase.state}`, 'data-phase': name },
        h('span', { class: 'phase-name', id: `phase-${name}` }, label),
        h('progress', { max: Math.max(1, phase.total), value: phase.total === 0 ? (phase.state === 'done' ? 1 : 0) : phase.done, 'aria-labelledby': `phase-${name}`, 'aria-valuetext': text }),
        h('span', { class: 'phase-text' }, text),
      );
    }),
  );
  if (job.status === 'failed') showError('job-error', new Error(`The job failed: ${job.error ?? 'no reason given'}`));
}

/** Follows one job until it finishes; a new follow (another job) stops the previous one. */
let following = 0;

export async function followJob(id: string, onFinished: (job: JobView) => void): Promise<void> {
  const mine = ++following;
  byId('job', HTMLElement).hidden = false;
  showError('job-error', undefined);
  const url = new URL(window.location.href);
  url.searchParams.set('job', id);
  window.history.replaceState(null, '', url);
  let unanswered = false;
  for (;;) {
    let job: JobView;
    try {
      job = await apiJson<JobView>(`/jobs/${encodeURIComponent(id)}`);
    } catch (error) {
      if (mine !== following) return;
      showError('job-error', error);
      unanswered = true;
      // The job goes on without the page: a service that is down or busy for a moment is asked again.
      if (!passing(error)) return;
      await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
      continue;
    }
    if (mine !== following) return;
    // Only the poll's own error is cleared once it answers again (a refused cancel stays said).
    if (unanswered) showError('job-error', undefined);
    unanswered = false;
    render(job);
    if (isFinished(job)) {
      onFinished(job);
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

export function setUpJob(currentJob: () => string | undefined): void {
  byId('job-cancel', HTMLButtonElement).addEventListener('click', () => {
    const id = currentJob();
    if (id === undefined) return;
    api(`/jobs/${encodeURIComponent(id)}`, { method: 'DELETE' }).then(
      () => undefined,
      (error: unknown) => showError('job-error', error),
    );
  });
}
