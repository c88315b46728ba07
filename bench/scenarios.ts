import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { IpRecord, SourceName } from '../src/record/model.js';
import { SOURCE_NAMES } from '../src/record/model.js';
import type { CymruWhoisDouble } from '../tests/doubles/cymru-whois.js';
import type { HttpUpstreamDouble } from '../tests/doubles/http-upstream.js';
import { getJson, timedEnrich } from './enrich-client.js';
import { load, type LoadResult } from './load.js';
import { monotonicUs, type Window } from './profile.js';
import { mb, median, ms, perSecond, type Row } from './report.js';
import { freePort, startChild, type ChildServer } from './service.js';
import { cymruQueryMs, SETTINGS } from './settings.js';
import { measureSaves } from './store-save.js';

export interface Upstreams {
  cymru: CymruWhoisDouble;
  greynoise: HttpUpstreamDouble;
  dshield: HttpUpstreamDouble;
}

export interface ScenarioResult {
  rows: Row[];
  notes: string[];
  /** Peak RSS of the service during the scenario, when it was read. */
  peakRss?: number;
  /** Stretches worth a CPU profile summary of their own; the whole scenario when absent. */
  windows?: Window[];
}

/** Log texts of the service counted per upstream: one line per 429 the limiter was told of. */
export const REFUSAL_LINES = {
  greynoise: '"limiter":"greynoise","outcome":"limited"',
  dshield: '"limiter":"dshield","outcome":"limited"',
} as const;

const ratio = (value: number) => value.toFixed(3);

function statusCounts(results: readonly IpRecord[], source: SourceName): Map<string, number> {
  const counts = new Map<string, number>();
  for (const result of results) {
    const status = result.sources[source].status;
    counts.set(status, (counts.get(status) ?? 0) + 1);
  }
  return counts;
}

const describeCounts = (counts: Map<string, number>) =>
  [...counts].map(([status, count]) => `${status} ${count}`).join(', ');

async function cpuDuring<T>(service: ChildServer, work: () => Promise<T>): Promise<{ value: T; cpu: number }> {
  const before = await service.cpuSeconds();
  const value = await work();
  return { value, cpu: (await service.cpuSeconds()) - before };
}

function upstreamSpan(double: HttpUpstreamDouble, from: number) {
  const requests = double.requests.slice(from);
  const first = Math.min(...requests.map((r) => r.at));
  const last = Math.max(...requests.map((r) => r.at));
  return { count: requests.length, first, last, rate: (requests.length - 1) / ((last - first) / 1000) };
}

/** 2: a cold list through all four sources, against the slowest upstream's rate. */
export async function allSources(service: ChildServer, upstreams: Upstreams, ips: readonly string[]): Promise<ScenarioResult> {
  const { greynoise, dshield } = SETTINGS.service;
  const resetWorked = await service.resetPeak();
  const from = { greynoise: upstreams.greynoise.requests.length, dshield: upstreams.dshield.requests.length };
  const refusedBefore = {
    greynoise: service.countLines(REFUSAL_LINES.greynoise),
    dshield: service.countLines(REFUSAL_LINES.dshield),
  };
  const { value: answer, cpu } = await cpuDuring(service, () => timedEnrich(service.url, { ips }));
  const peakRss = await service.peakRss();
  const n = ips.length;
  const perUpstream = {
    greynoise: (n - greynoise.burst) / greynoise.rate,
    dshield: (n - dshield.burst) / dshield.rate,
    cymru: (Math.ceil(Math.ceil(n / SETTINGS.cymru.batchSize) / SETTINGS.cymru.maxConnections) * cymruQueryMs(SETTINGS)) / 1000,
  };
  const slowest = Object.entries(perUpstream).sort((a, b) => b[1] - a[1])[0]!;
  const bound = slowest[1] * 1000 + SETTINGS.upstream.latencyMs;
  const failed = { rateLimited: 0, error: 0 };
  const notes: string[] = [];
  for (const source of SOURCE_NAMES) {
    const counts = statusCounts(answer.results, source);
    failed.rateLimited += counts.get('rate_limited') ?? 0;
    failed.error += counts.get('error') ?? 0;
    notes.push(`2: ${source}: ${describeCounts(counts)}`);
  }
  const refused = {
    greynoise: service.countLines(REFUSAL_LINES.greynoise) - refusedBefore.greynoise,
    dshield: service.countLines(REFUSAL_LINES.dshield) - refusedBefore.dshield,
  };
  for (const source of ['greynoise', 'dshield'] as const) {
    const span = upstreamSpan(upstreams[source], from[source]);
    notes.push(
      `2: ${source} double: ${span.count} requests (${span.count - n} beyond one per address), 429s ${refused[source]}, ` +
        `achieved ${perSecond(span.rate)} between its first and last request (limit ${perSecond(SETTINGS.service[source].rate)}); ` +
        `first request ${ms(span.first - answer.startedAt)} after the POST, last answered ${ms(answer.endedAt - span.last - SETTINGS.upstream.latencyMs)} before its last byte`,
    );
  }
  notes.push(
    `2: service CPU ${cpu.toFixed(2)} s; stats.durationMs ${answer.stats.durationMs}; response ${mb(answer.bytes)}; ` +
      `peak RSS window ${resetWorked ? 'reset before scenario 2' : 'NOT reset (clear_refs refused): since boot'}`,
  );
  const clean = failed.rateLimited === 0 && failed.error === 0;
  return {
    peakRss,
    notes,
    rows: [
      {
        scenario: '2 cold 10k, all four sources',
        measured: ms(answer.ms),
        bound: `${ms(bound)} (${slowest[0]})`,
        value: ratio(answer.ms / bound),
        target: `ratio <= ${SETTINGS.targets.upstreamRatio.toFixed(2)}`,
        pass: answer.ms / bound <= SETTINGS.targets.upstreamRatio && clean,
      },
      {
        scenario: '2 failed answers / 429s',
        measured: `rate_limited ${failed.rateLimited}, error ${failed.error}`,
        bound: '0',
        value: `429s: greynoise ${refused.greynoise}, dshield ${refused.dshield}`,
        target: '0 failed (429s ideally 0)',
        pass: clean,
      },
    ],
  };
}

/**
 * 4: GET /ip/:addr on cached addresses against a bare Fastify route answering a constant record. The two
 * take turns for a few rounds, so that a change in the machine's speed during the run (this is a shared
 * 2-core VM, where the bare route alone has measured anywhere from 21,000 to 39,000 req/s) weighs on both
 * sides of each ratio; the row reports the median round.
 */
export async function singleLookups(
  service: ChildServer,
  upstreams: Upstreams,
  ips: readonly string[],
  workDir: string,
  loadConnections: readonly number[],
  onBare: (bare: ChildServer) => void,
): Promise<ScenarioResult> {
  const record = await getJson(`${service.url}/ip/${ips[0]}`);
  const recordFile = join(workDir, 'record.json');
  await writeFile(recordFile, JSON.stringify(record));
  const bare = await startChild({
    name: 'bare fastify',
    script: 'bench/bare-server.ts',
    port: await freePort(),
    env: { BENCH_RECORD_FILE: recordFile },
  });
  onBare(bare);
  const paths = ips.map((ip) => `/ip/${ip}`);
  const { seconds, warmupSeconds, rounds } = SETTINGS.load;
  const upstreamCount = () => upstreams.cymru.connections.length + upstreams.greynoise.requests.length + upstreams.dshield.requests.length;
  const upstreamBefore = upstreamCount();
  const windows: Window[] = [];
  const rows: Row[] = [];
  const notes: string[] = [];
  const perRequestUs = (cpu: number, result: LoadResult) => ((cpu / result.total) * 1e6).toFixed(0);
  for (const connections of loadConnections) {
    process.stderr.write(`bench:   GET /ip at ${connections} connections, ${rounds} rounds of ${seconds} s each side\n`);
    await load(bare.url, paths, connections, warmupSeconds);
    await load(service.url, paths, connections, warmupSeconds);
    const measured: Array<{ bare: LoadResult; bareCpu: number; service: LoadResult; cpu: number; ratio: number }> = [];
    for (let round = 0; round < rounds; round++) {
      const { value: baseline, cpu: bareCpu } = await cpuDuring(bare, () => load(bare.url, paths, connections, seconds));
      const startUs = monotonicUs();
      const { value, cpu } = await cpuDuring(service, () => load(service.url, paths, connections, seconds));
      windows.push({ name: `c GET /ip load on the service, ${connections} conns, round ${round + 1}`, startUs, endUs: monotonicUs() });
      measured.push({ bare: baseline, bareCpu, service: value, cpu, ratio: value.requestsPerSecond / baseline.requestsPerSecond });
    }
    const typical = [...measured].sort((a, b) => a.ratio - b.ratio)[Math.floor(measured.length / 2)]!;
    const p99 = median(measured.map((round) => round.service.latencyP99Ms));
    const clean = measured.every((round) => round.service.failures === 0 && round.bare.failures === 0);
    const pass = typical.ratio >= SETTINGS.targets.loadRatio && p99 <= SETTINGS.targets.p99Ms && clean;
    rows.push({
      scenario: `c GET /ip cached, ${connections} load conns`,
      measured: `${perSecond(typical.service.requestsPerSecond, 'req')}, p99 ${p99} ms`,
      bound: `bare ${perSecond(typical.bare.requestsPerSecond, 'req')}, p99 ${median(measured.map((round) => round.bare.latencyP99Ms))} ms`,
      value: `${ratio(typical.ratio)} (rounds ${measured.map((round) => ratio(round.ratio)).join(', ')})`,
      target: `>= ${SETTINGS.targets.loadRatio.toFixed(2)}, p99 <= ${ms(SETTINGS.targets.p99Ms)}`,
      pass,
    });
    process.stderr.write(`bench:   ${rows[rows.length - 1]!.scenario}: ${rows[rows.length - 1]!.value} ${pass ? 'pass' : 'FAIL'}\n`);
    notes.push(
      ...measured.map(
        (round, index) =>
          `c ${connections} conns, round ${index + 1}: bare ${perSecond(round.bare.requestsPerSecond, 'req')} (${perRequestUs(round.bareCpu, round.bare)} µs CPU per ` +
          `request, p99 ${round.bare.latencyP99Ms} ms), service ${perSecond(round.service.requestsPerSecond, 'req')} ` +
          `(${perRequestUs(round.cpu, round.service)} µs CPU per request, p99 ${round.service.latencyP99Ms} ms, max ` +
          `${round.service.latencyMaxMs} ms), ratio ${ratio(round.ratio)}; failed: service ${round.service.failures}, bare ${round.bare.failures}`,
      ),
    );
  }
  await bare.stop();
  const upstreamDuring = upstreamCount() - upstreamBefore;
  if (upstreamDuring > 0) for (const row of rows) row.pass = false;
  notes.push(`c: upstream requests during the load: ${upstreamDuring}; record ${JSON.stringify(record).length} bytes`);
  return { windows, rows, notes };
}

/** 5: RecordStore.save of full records for a whole list, first as inserts and then as upserts. */
export async function persisting(databaseUrl: string, ips: readonly string[]): Promise<ScenarioResult> {
  const timings = await measureSaves(databaseUrl, ips, SETTINGS.saveRuns);
  const row = (scenario: string, runs: number[]): Row => {
    const value = median(runs);
    return {
      scenario,
      measured: `${ms(value)} median`,
      bound: `min ${ms(Math.min(...runs))}`,
      value: perSecond((ips.length / value) * 1000, 'rows'),
      target: `<= ${ms(SETTINGS.targets.saveMs)}`,
      pass: value <= SETTINGS.targets.saveMs,
    };
  };
  return {
    rows: [row('5 save 10k, first insert', timings.insertMs), row('5 save 10k, re-save (upsert)', timings.resaveMs)],
    notes: [
      `5: insert runs ${timings.insertMs.map((t) => t.toFixed(0)).join(', ')} ms; re-save runs ` +
        `${timings.resaveMs.map((t) => t.toFixed(0)).join(', ')} ms; updates as JSON ≈ ${mb(timings.payloadBytes)}`,
    ],
  };
}

/** 6: the VmHWM of the service over scenario 2, whose lists ask all four sources. */
export function peakMemory(peaks: { allSources?: number; boot: number }): Row {
  return {
    scenario: '6 peak RSS of the service, all sources (VmHWM)',
    measured: peaks.allSources === undefined ? 'n/a' : mb(peaks.allSources),
    bound: `boot ${mb(peaks.boot)}`,
    value: '-',
    target: `<= ${mb(SETTINGS.targets.peakRssBytes)}`,
    pass: peaks.allSources === undefined ? null : peaks.allSources <= SETTINGS.targets.peakRssBytes,
  };
}
