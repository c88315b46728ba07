import type { JobView } from '../../src/schemas/jobs.js';
import { showError } from './api.js';
import { byId } from './dom.js';
import { number } from './format.js';
import { downloadResults } from './download.js';
import { applyFilter, offerChoices, readFilter } from './filters.js';
import { loadRows, type Row } from './rows.js';
import { renderSummary } from './summary.js';
import { sortRows, VirtualTable } from './table.js';

/* A finished job's results: the summary, the filters, the table and the downloads. */

let all: Row[] = [];
let jobId: string | undefined;
let table: VirtualTable | undefined;

function refresh(): void {
  if (!table) return;
  const shown = sortRows(applyFilter(all, readFilter()), table.sort);
  byId('results-count', HTMLParagraphElement).textContent =
    shown.length === all.length ? `${number(all.length)} results` : `${number(shown.length)} of ${number(all.length)} results match the filters`;
  renderSummary(shown);
  table.show(shown);
}

export async function showResults(job: JobView): Promise<void> {
  jobId = job.id;
  byId('results', HTMLElement).hidden = false;
  showError('results-error', undefined);
  const count = byId('results-count', HTMLParagraphElement);
  count.textContent = 'Loading the results…';
  try {
    all = await loadRows(job.id, (rows) => (count.textContent = `Loading the results… ${number(rows)} of ${number(job.counts.total)}`));
  } catch (error) {
    count.textContent = '';
    showError('results-error', error);
    return;
  }
  if (jobId !== job.id) return;
  offerChoices(all);
  refresh();
}

export function setUpResults(open: (ip: string) => void): void {
  table = new VirtualTable(byId('results-table', HTMLDivElement), open, refresh);
  const filters = byId('filters', HTMLFormElement);
  let typing = 0;
  filters.addEventListener('change', refresh);
  // Typing in the AS and attacks fields filters once the analyst pauses.
  filters.addEventListener('input', (event) => {
    if (!(event.target instanceof HTMLInputElement)) return;
    clearTimeout(typing);
    typing = window.setTimeout(refresh, 200);
  });
  filters.addEventListener('submit', (event) => event.preventDefault());
  // The form's reset clears the controls after this event, so the table follows once it has.
  filters.addEventListener('reset', () => setTimeout(refresh));
  for (const format of ['csv', 'ndjson'] as const) {
    byId(`download-${format}`, HTMLButtonElement).addEventListener('click', () => {
      if (jobId !== undefined) void downloadResults(jobId, format);
    });
  }
}
