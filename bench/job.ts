import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type pg from 'pg';
import { Agent, request } from 'undici';
import { monotonicUs, wallWindow, type Window } from './profile.js';
import { mb, median, ms, perSecond, type Row } from './report.js';
import type { Upstreams } from './scenarios.js';
import { backendCpuSeconds, cpuSince } from './cpu.js';
import type { ChildServer } from './service.js';
import { cymruQueryMs, SETTINGS } from './settings.js';

/** Jobs answer slowly only when asked for their results, which may take a while for a big job. */
const agent = new Agent({ keepAliveTimeout: 60_000, headersTimeout: 600_000, bodyTimeout: 600_000 });

interface JobAnswer {
  id: string;
  status: string;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  counts: { total: number; unique: number };
}

async function send(url: string, options: Parameters<typeof request>[1]): Promise<{ status: number; text: string }> {
  const response = await request(url, { dispatcher: agent, ...options });
  return { status: response.statusCode, text: await response.body.text() };
}

/** How often GET /jobs/{id} is asked while the job runs: the submit → completed time is known to this much. */
const POLL_MS = 50;

export interface JobRun {
  id: string;
  rows: Row[];
  notes: string[];
  windows: Window[];
}

/**
 * 7 and 8: a cold job of `ips` through MaxMind and Team Cymru, from POST /jobs to `api` until GET /jobs/{id}
 * says completed, against the ideal of its Cymru batches and connections; and the peak RSS of `worker`, the
 * only process that runs jobs, from its boot to the job's end.
 */
export async function coldJob(service: ChildServer, worker: ChildServer, upstreams: Upstreams, ips: readonly string[]): Promise<JobRun> {
  const { batchSize, maxConnections } = SETTINGS.cymru;
  const firstConnection = upstreams.cymru.connections.length;
  const before = await worker.rss();
  const cpuBefore = await worker.cpuSeconds();
  const apiCpuBefore = await service.cpuSeconds();
  const payload = JSON.stringify({ ips, sources: ['maxmind', 'cymru'], label: 'bench' });
  const startedAt = Date.now();
  const start = performance.now();
  const submitted = await send(`${service.url}/jobs`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: payload,
  });
  const submitMs = performance.now() - start;
  if (submitted.status !== 202) throw new Error(`POST /jobs answered ${submitted.status}: ${submitted.text.slice(0, 500)}`);
  const { id } = JSON.parse(submitted.text) as JobAnswer;
  let job: JobAnswer;
  for (;;) {
    const polled = await send(`${service.url}/jobs/${id}`, { method: 'GET' });
    if (polled.status !== 200) throw new Error(`GET /jobs/${id} answered ${polled.status}: ${polled.text.slice(0, 500)}`);
    job = JSON.parse(polled.text) as JobAnswer;
    if (job.status === 'completed') break;
    if (job.status === 'failed' || job.status === 'cancelled') throw new Error(`job ${id} ended ${job.status}: ${polled.text.slice(0, 500)}`);
    if (performance.now() - start > 600_000) throw new Error(`job ${id} still ${job.status} after 600 s`);
    await sleep(POLL_MS);
  }
  const measured = performance.now() - start;
  const endedAt = Date.now();
  const peakRss = await worker.peakRss();
  const cpu = (await worker.cpuSeconds()) - cpuBefore;
  const apiCpu = (await service.cpuSeconds()) - apiCpuBefore;
  const batches = Math.ceil(ips.length / batchSize);
  const ideal = Math.ceil(batches / maxConnections) * cymruQueryMs(SETTINGS);
  const connections = upstreams.cymru.connections.slice(firstConnection);
  const asked = connections.reduce((sum, c) => sum + c.addresses.length, 0);
  const cymruStart = Math.min(...connections.map((c) => c.startedAt));
  const cymruEnd = Math.max(...connections.map((c) => c.endedAt ?? Number.NaN));
  const serviceMs = Date.parse(job.finishedAt ?? '') - Date.parse(job.createdAt);
  const ratio = measured / ideal;
  const complete = job.counts.unique === ips.length && asked === ips.length;
  return {
    id,
    windows: [
      wallWindow('7 job: submit -> first Cymru query', startedAt, cymruStart),
      wallWindow('7 job: while Cymru answers', cymruStart, cymruEnd),
      wallWindow('7 job: last Cymru answer -> completed seen', cymruEnd, endedAt),
    ],
    rows: [
      {
        scenario: `7 cold job ${ips.length / 1000}k, maxmind+cymru, POST /jobs -> completed`,
        measured: ms(measured),
        bound: `${ms(ideal)} (${batches} batches)`,
        value: ratio.toFixed(3),
        target: `ratio <= ${SETTINGS.targets.coldRatio.toFixed(2)}`,
        pass: ratio <= SETTINGS.targets.coldRatio && complete,
      },
      {
        scenario: '8 peak RSS of the worker (ROLE=worker process, VmHWM)',
        measured: mb(peakRss),
        bound: `boot ${mb(before)}`,
        value: 'from boot to the job completed',
        target: `<= ${mb(SETTINGS.targets.peakRssBytes)}`,
        pass: peakRss <= SETTINGS.targets.peakRssBytes,
      },
    ],
    notes: [
      `7: POST /jobs answered in ${ms(submitMs)}; the job's own createdAt -> finishedAt ${ms(serviceMs)}; polled every ${POLL_MS} ms; ` +
        `${connections.length} bulk queries for ${asked} addresses (the list has ${ips.length}), at most ${upstreams.cymru.maxConcurrent()} at once; ` +
        `submit -> first Cymru query ${ms(cymruStart - startedAt)}, Cymru span ${ms(cymruEnd - cymruStart)}, last answer -> completed seen ` +
        `${ms(endedAt - cymruEnd)}; CPU: worker ${cpu.toFixed(2)} s, API ${apiCpu.toFixed(2)} s`,
    ],
  };
}

interface Streamed {
  ms: number;
  bytes: number;
  lines: number;
}

/** GET /jobs/{id}/results in `type` to the last byte, counting lines (one per record, plus a CSV header). */
async function stream(url: string, type: string): Promise<Streamed> {
  const start = performance.now();
  const response = await request(url, { dispatcher: agent, headers: { accept: type } });
  if (response.statusCode !== 200) throw new Error(`GET ${url} as ${type} answered ${response.statusCode}: ${(await response.body.text()).slice(0, 500)}`);
  let bytes = 0;
  let lines = 0;
  for await (const chunk of response.body as AsyncIterable<Buffer>) {
    bytes += chunk.length;
    for (let at = chunk.indexOf(10); at !== -1; at = chunk.indexOf(10, at + 1)) lines += 1;
  }
  return { ms: performance.now() - start, bytes, lines };
}

/**
 * 9: the job's results streamed as NDJSON (and CSV, informational) to the last byte, a few times each, with the
 * CPU each record cost the API process and PostgreSQL: on a machine shared with other work, the rate moves
 * with the load and the CPU per record much less.
 */
export async function streamResults(
  service: ChildServer,
  jobId: string,
  records: number,
  admin: pg.Client,
  database: string,
): Promise<{ rows: Row[]; notes: string[]; windows: Window[] }> {
  const url = `${service.url}/jobs/${jobId}/results`;
  const target = SETTINGS.targets.streamRecordsPerSecond;
  const windows: Window[] = [];
  const rows: Row[] = [];
  const notes: string[] = [];
  for (const [label, type, extraLines] of [
    ['NDJSON', 'application/x-ndjson', 0],
    ['CSV', 'text/csv', 1],
  ] as const) {
    const runs: Streamed[] = [];
    const cpu: Array<{ service: number; database: number }> = [];
    const rssBefore = await service.rss();
    const reset = await service.resetPeak();
    for (let run = 0; run < SETTINGS.streamRuns; run++) {
      const [serviceBefore, databaseBefore] = [await service.cpuSeconds(), await backendCpuSeconds(admin, database)];
      const startUs = monotonicUs();
      runs.push(await stream(url, type));
      windows.push({ name: `9 ${label} stream, run ${run + 1}`, startUs, endUs: monotonicUs() });
      cpu.push({
        service: (await service.cpuSeconds()) - serviceBefore,
        database: cpuSince(databaseBefore, await backendCpuSeconds(admin, database)),
      });
    }
    const peak = await service.peakRss();
    const wrong = runs.filter((r) => r.lines !== records + extraLines).length;
    const rates = runs.map((r) => (records / r.ms) * 1000);
    const rate = median(rates);
    rows.push({
      scenario: `9 stream the job's ${records / 1000}k results as ${label} (median of ${SETTINGS.streamRuns})`,
      measured: `${ms(median(runs.map((r) => r.ms)))} (${ms(Math.min(...runs.map((r) => r.ms)))}–${ms(Math.max(...runs.map((r) => r.ms)))})`,
      bound: ms((records / target) * 1000),
      value: perSecond(rate, 'records'),
      // The issue's target is NDJSON's; CSV is shown beside it, failing only for a wrong line count.
      target: label === 'NDJSON' ? `>= ${perSecond(target, 'records')}` : '-',
      pass: label === 'NDJSON' ? rate >= target && wrong === 0 : wrong === 0 ? undefined : false,
    });
    notes.push(
      `9: ${label}: runs ${runs.map((r) => r.ms.toFixed(0)).join(', ')} ms (${rates.map((r) => perSecond(r)).join(', ')}), ` +
        `${mb(runs[0]!.bytes)} each; runs with a wrong line count: ${wrong}; API process RSS ${mb(rssBefore)} before, peak ${mb(peak)} while streaming${reset ? '' : ' (VmHWM NOT reset: since boot)'}; ` +
        `CPU per record, API process + PostgreSQL: ${cpu.map((c) => `${perRecordUs(c.service, records)} + ${perRecordUs(c.database, records)} us`).join(', ')}`,
    );
  }
  return { rows, notes, windows };
}

const perRecordUs = (seconds: number, records: number) => ((seconds * 1e6) / records).toFixed(1);

export async function closeJobClient(): Promise<void> {
  await agent.close();
}
