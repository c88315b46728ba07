import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { IpRecord, SourceName } from '../src/record/model.js';
import { SOURCE_NAMES } from '../src/record/model.js';
import type { CymruWhoisDouble } from '../tests/doubles/cymru-whois.js';
import type { HttpUpstreamDouble } from '../tests/doubles/http-upstream.js';
import { getJson, timedEnrich } from './enrich-client.js';
import { load, type LoadResult } from './load.js';
import { monotonicUs, wallWindow, type Window } from './profile.js';
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

/** 1: a cold list where every address needs Team Cymru, against the ideal of its batches and connections. */
export async function coldCymru(service: ChildServer, upstreams: Upstreams, ips: readonly string[]): Promise<ScenarioResult> {
  const { batchSize, maxConnections } = SETTINGS.cymru;
  const firstConnection = upstreams.cymru.connections.length;
  const { value: answer, cpu } = await cpuDuring(service, () => timedEnrich(service.url, { ips, sources: ['maxmind', 'cymru'] }));
  const peakRss = await service.peakRss();
  const batches = Math.ceil(ips.length / batchSize);
  const ideal = Math.ceil(batches / maxConnections) * cymruQueryMs(SETTINGS);
  const wrong = answer.results.filter((r) => r.status !== 'ok' || r.sources.cymru.status !== 'ok').length;
  const connections = upstreams.cymru.connections.slice(firstConnection);
  const cymruStart = Math.min(...connections.map((c) => c.startedAt));
  const cymruEnd = Math.max(...connections.map((c) => c.endedAt ?? Number.NaN));
  const busy = connections.reduce((sum, c) => sum + ((c.endedAt ?? Number.NaN) - c.startedAt), 0);
  const idlePerQuery = ((cymruEnd - cymruStart) * maxConnections - busy) / connections.length;
  const pass = answer.ms / ideal <= SETTINGS.targets.coldRatio && wrong === 0;
  return {
    peakRss,
    windows: [
      wallWindow('1 before the first Cymru query', answer.startedAt, cymruStart),
      wallWindow('1 while Cymru answers', cymruStart, cymruEnd),
      wallWindow('1 after the last Cymru answer', cymruEnd, answer.endedAt),
    ],
    rows: [
      {
        scenario: '1 cold 10k, maxmind+cymru',
        measured: ms(answer.ms),
        bound: `${ms(ideal)} (${batches} batches)`,
        value: ratio(answer.ms / ideal),
        target: `ratio <= ${SETTINGS.targets.coldRatio.toFixed(2)}`,
        pass,
      },
      {
        scenario: '1 throughput',
        measured: perSecond((ips.length / answer.ms) * 1000, 'IPs'),
        bound: perSecond((ips.length / ideal) * 1000, 'IPs'),
        value: '-',
        target: '-',
        pass: undefined,
      },
    ],
    notes: [
      `1: ${connections.length} bulk queries (sizes ${[...new Set(connections.map((c) => c.addresses.length))].join('/')}), ` +
        `at most ${upstreams.cymru.maxConcurrent()} at once; answers not ok: ${wrong}; service CPU ${cpu.toFixed(2)} s; ` +
        `response ${mb(answer.bytes)}`,
      `1: request start -> first Cymru connection ${ms(cymruStart - answer.startedAt)}; Cymru span ${ms(cymruEnd - cymruStart)}; ` +
        `last Cymru answer -> last byte of the response ${ms(answer.endedAt - cymruEnd)}; service stats.durationMs ${answer.stats.durationMs}`,
      `1: a query holds its connection ${ms(busy / connections.length)} on average (the double's price ${ms(cymruQueryMs(SETTINGS))}); ` +
        `connection slots stand idle ${ms(idlePerQuery)} per query within the Cymru span`,
    ],
  };
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

/** 3: the list of scenario 2 again, every address in the Redis L1. */
export async function cached(service: ChildServer, ips: readonly string[]): Promise<ScenarioResult> {
  const times: number[] = [];
  const serverMs: number[] = [];
  const l1Ms: number[] = [];
  let cpuTotal = 0;
  let bytes = 0;
  for (let run = 0; run < SETTINGS.cachedRuns; run++) {
    const { value: answer, cpu } = await cpuDuring(service, () => timedEnrich(service.url, { ips }));
    const lookups = SOURCE_NAMES.reduce((sum, source) => sum + answer.stats.sources[source].lookups, 0);
    if (answer.stats.tiers.l1.hits !== ips.length || lookups !== 0) {
      throw new Error(`run ${run + 1} was not all cached: L1 hits ${answer.stats.tiers.l1.hits}, source lookups ${lookups}`);
    }
    times.push(answer.ms);
    serverMs.push(answer.stats.durationMs);
    l1Ms.push(answer.stats.tiers.l1.durationMs);
    cpuTotal += cpu;
    bytes = answer.bytes;
    await sleep(SETTINGS.cachedPauseMs);
  }
  const best = Math.min(...times);
  const rate = (ips.length / best) * 1000;
  const target = SETTINGS.targets.cachedAddressesPerSecond;
  return {
    rows: [
      {
        scenario: `3 cached 10k (best of ${SETTINGS.cachedRuns})`,
        measured: `${ms(best)} (median ${ms(median(times))})`,
        bound: ms((ips.length / target) * 1000),
        value: perSecond(rate, 'addresses'),
        target: `>= ${perSecond(target, 'addresses')}`,
        pass: rate >= target,
      },
    ],
    notes: [
      `3: runs ${times.map((t) => t.toFixed(0)).join(', ')} ms to the last byte; the service's own stats.durationMs ` +
        `${serverMs.map((t) => t.toFixed(0)).join(', ')} (enricher only, before serialization), of which reading L1 ` +
        `${l1Ms.map((t) => t.toFixed(0)).join(', ')}; response ${mb(bytes)}; ` +
        `service CPU ${(cpuTotal / SETTINGS.cachedRuns).toFixed(2)} s per run including its background write`,
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
  const { connections, seconds, warmupSeconds, rounds } = SETTINGS.load;
  const upstreamBefore = upstreams.cymru.connections.length + upstreams.greynoise.requests.length + upstreams.dshield.requests.length;
  await load(bare.url, paths, connections, warmupSeconds);
  await load(service.url, paths, connections, warmupSeconds);
  const windows: Window[] = [];
  const measured: Array<{ bare: LoadResult; bareCpu: number; service: LoadResult; cpu: number; ratio: number }> = [];
  for (let round = 0; round < rounds; round++) {
    const { value: baseline, cpu: bareCpu } = await cpuDuring(bare, () => load(bare.url, paths, connections, seconds));
    const startUs = monotonicUs();
    const { value, cpu } = await cpuDuring(service, () => load(service.url, paths, connections, seconds));
    windows.push({ name: `4 GET /ip load on the service, round ${round + 1}`, startUs, endUs: monotonicUs() });
    measured.push({ bare: baseline, bareCpu, service: value, cpu, ratio: value.requestsPerSecond / baseline.requestsPerSecond });
  }
  await bare.stop();
  const upstreamAfter = upstreams.cymru.connections.length + upstreams.greynoise.requests.length + upstreams.dshield.requests.length;
  const typical = [...measured].sort((a, b) => a.ratio - b.ratio)[Math.floor(measured.length / 2)]!;
  const p99 = median(measured.map((round) => round.service.latencyP99Ms));
  const clean =
    measured.every((round) => round.service.failures === 0 && round.bare.failures === 0) && upstreamAfter === upstreamBefore;
  const perRequestUs = (cpu: number, result: LoadResult) => ((cpu / result.total) * 1e6).toFixed(0);
  return {
    windows,
    rows: [
      {
        scenario: `4 GET /ip cached, ${connections} conns, median of ${rounds} rounds of ${seconds} s`,
        measured: perSecond(typical.service.requestsPerSecond, 'req'),
        bound: `bare ${perSecond(typical.bare.requestsPerSecond, 'req')}`,
        value: ratio(typical.ratio),
        target: `ratio >= ${SETTINGS.targets.loadRatio.toFixed(2)}`,
        pass: typical.ratio >= SETTINGS.targets.loadRatio && clean,
      },
      {
        scenario: '4 GET /ip p99 latency (median round)',
        measured: `${p99} ms`,
        bound: `bare ${median(measured.map((round) => round.bare.latencyP99Ms))} ms`,
        value: `p50 ${median(measured.map((round) => round.service.latencyP50Ms))} ms (1 ms steps)`,
        target: `<= ${ms(SETTINGS.targets.p99Ms)}`,
        pass: p99 <= SETTINGS.targets.p99Ms && clean,
      },
    ],
    notes: [
      ...measured.map(
        (round, index) =>
          `4: round ${index + 1}: bare ${perSecond(round.bare.requestsPerSecond, 'req')} (${perRequestUs(round.bareCpu, round.bare)} µs CPU per ` +
          `request, p99 ${round.bare.latencyP99Ms} ms), service ${perSecond(round.service.requestsPerSecond, 'req')} ` +
          `(${perRequestUs(round.cpu, round.service)} µs CPU per request, p99 ${round.service.latencyP99Ms} ms, max ` +
          `${round.service.latencyMaxMs} ms), ratio ${ratio(round.ratio)}; failed: service ${round.service.failures}, bare ${round.bare.failures}`,
      ),
      `4: upstream requests during the load: ${upstreamAfter - upstreamBefore}; record ${JSON.stringify(record).length} bytes`,
    ],
  };
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

/** 6: the highest VmHWM read after scenarios 1 and 2. */
export function peakMemory(peaks: { scenario1?: number; scenario2?: number; boot: number }): Row {
  const measured = Math.max(peaks.scenario1 ?? 0, peaks.scenario2 ?? 0);
  const known = (value: number | undefined) => (value === undefined ? 'n/a' : mb(value));
  return {
    scenario: '6 peak RSS of the service (VmHWM)',
    measured: mb(measured),
    bound: `boot ${mb(peaks.boot)}`,
    value: `s1 ${known(peaks.scenario1)}, s2 ${known(peaks.scenario2)}`,
    target: `<= ${mb(SETTINGS.targets.peakRssBytes)}`,
    pass: peaks.scenario1 === undefined && peaks.scenario2 === undefined ? null : measured <= SETTINGS.targets.peakRssBytes,
  };
}
