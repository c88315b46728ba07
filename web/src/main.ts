import type { JobView } from '../../src/schemas/jobs.js';
import { showError } from './api.js';
import { setUpKey } from './auth.js';
import { byId } from './dom.js';
import { followJob, setUpJob } from './job.js';
import { setUpList } from './list.js';
import { lookUp, setUpLookup } from './lookup.js';
import { setUpResults, showResults } from './results.js';
import './style.css';

/* The analysts' page: one address, or a list as a job, its progress and its results. */

// Whatever fails unexpectedly is said on the page, never left as a blank or frozen screen.
window.addEventListener('error', (event) => showError('page-error', event.error ?? event.message));
window.addEventListener('unhandledrejection', (event) => showError('page-error', event.reason));

let currentJob: string | undefined;

function follow(id: string): void {
  currentJob = id;
  byId('results', HTMLElement).hidden = true;
  void followJob(id, (job: JobView) => void showResults(job));
}

setUpKey();
setUpLookup();
setUpJob(() => currentJob);
setUpResults((ip) => {
  byId('lookup-ip', HTMLInputElement).value = ip;
  byId('lookup', HTMLElement).scrollIntoView();
  void lookUp(ip, false);
});
setUpList((job) => {
  follow(job.id);
  byId('job', HTMLElement).scrollIntoView({ block: 'start' });
});

// A reload, or a link to the page with ?job=, picks the job up again.
const resumed = new URL(window.location.href).searchParams.get('job');
if (resumed) follow(resumed);
