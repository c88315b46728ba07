import { setTimeout as sleep } from 'node:timers/promises';
import { SOURCE_NAMES } from '../src/record/model.js';
import type { ConnectionRecord, CymruWhoisDouble } from '../tests/doubles/cymru-whois.js';
import { cpuSince, machineShares, machineTicks, threadSeconds } from './cpu.js';
import { timedEnrich, type TimedAnswer } from './enrich-client.js';
import { wallWindow, type Window } from './profile.js';
import { mb, median, ms, perSecond } from './report.js';
import type { ScenarioResult } from './scenarios.js';
import type { ChildServer } from './service.js';
import { SETTINGS } from './settings.js';

/** One cell of the matrix: the service's CYMRU_MAX_CONNECTIONS and the double's price of a full batch. */
export interface Cell {
  connections: number;
  latencyMs: number;
}

export const cellName = (cell: Cell) => `conns ${cell.connections}, ${cell.latencyMs} ms`;

/** CPU seconds so far of the PostgreSQL backends serving the service, by backend. */
export type BackendCpu = () => Promise<Map<number, number>>;

const percent = (share: number) => `${(share * 100).toFixed(0)}%`;

const SOURCES = ['maxmind', 'cymru'] as const;

function expectCached(answer: TimedAnswer, ips: readonly string[], what: string): void {
  const lookups = SOURCE_NAMES.reduce((sum, source) => sum + answer.stats.sources[source].lookups, 0);
  if (answer.stats.tiers.l1.hits !== ips.length || lookups !== 0) {
    throw new Error(`${what} was not all cached: L1 hits ${answer.stats.tiers.l1.hits}, source lookups ${lookups}`);
  }
}

/** Median and largest of one phase of the bulk queries, as the double saw them. */
function phase(connections: readonly ConnectionRecord[], from: keyof ConnectionRecord, to: keyof ConnectionRecord): string {
  const spans = connections.map((c) => Number(c[to]) - Number(c[from])).filter((value) => Number.isFinite(value));
  return spans.length === 0 ? '-' : `${median(spans).toFixed(0)}/${Math.max(...spans).toFixed(0)} ms`;
}

/** From a query's close to the start of the next query that could take its connection. */
function slotGaps(connections: readonly ConnectionRecord[], slots: number): string {
  const starts = connections.map((c) => c.startedAt).sort((a, b) => a - b).slice(slots);
  const ends = connections.map((c) => c.endedAt ?? Number.NaN).filter(Number.isFinite);
  const gaps = starts.map((start) => start - Math.max(...ends.filter((end) => end <= start)));
  const finite = gaps.filter(Number.isFinite);
  return finite.length === 0 ? '-' : `${median(finite).toFixed(0)}/${Math.max(...finite).toFixed(0)} ms`;
}

/**
 * (a) a cold list where every address needs Team Cymru, on a service of its own, against the ideal of its
 * batches and connections; (b) the same list again, cached, right after and then repeatedly; (d) the
 * service's peak RSS over all of it, and its RSS from repeat to repeat.
 */
export async function coldCell(
  service: ChildServer,
  cymru: CymruWhoisDouble,
  cell: Cell,
  ips: readonly string[],
  backendCpu: BackendCpu,
): Promise<ScenarioResult> {
  const { batchSize } = SETTINGS.cymru;
  const { cachedRepeats, cachedMedianOf, rssGrowthBytes } = SETTINGS.matrix;
  const name = cellName(cell);
  cymru.prepare(ips);
  const firstConnection = cymru.connections.length;
  // Who used the two cores while the cold list ran, and how much of them the hypervisor took: on a shared
  // virtual machine the same code measures far apart from hour to hour, and this says why. Read again at the
  // last byte: the client's parsing of the answer and the service's Redis writes behind it come after.
  const cpuNow = async () => ({ bench: process.cpuUsage(), threads: await threadSeconds(service.pid), backends: await backendCpu(), machine: await machineTicks() });
  const before = await cpuNow();
  let after!: typeof before;
  const cold = await timedEnrich(service.url, { ips, sources: SOURCES }, async () => {
    after = await cpuNow();
  });
  const shares = machineShares(before.machine, after.machine);
  const benchSeconds = (after.bench.user + after.bench.system - before.bench.user - before.bench.system) / 1e6;
  const cpu =
    `service main thread ${(after.threads.main - before.threads.main).toFixed(2)} s, its other threads ` +
    `${(after.threads.others - before.threads.others).toFixed(2)} s, PostgreSQL ${cpuSince(before.backends, after.backends).toFixed(2)} s, ` +
    `the bench ${benchSeconds.toFixed(2)} s; cores busy ${percent(shares.busy)}, stolen ${percent(shares.steal)}`;
  const batches = Math.ceil(ips.length / batchSize);
  const ideal = Math.ceil(batches / cell.connections) * cell.latencyMs;
  const wrong = cold.results.filter((r) => r.status !== 'ok' || r.sources.cymru.status !== 'ok').length;
  const connections = cymru.connections.slice(firstConnection);
  const cymruStart = Math.min(...connections.map((c) => c.startedAt));
  const cymruEnd = Math.max(...connections.map((c) => c.endedAt ?? Number.NaN));

  // The first repeat comes right after the cold answer, as a client asking again would; the pause between
  // later ones lets the bookkeeping write of the previous one finish, as traffic of a few lists a second would.
  const repeats: number[] = [];
  const repeatWindows: Window[] = [];
  const rss: number[] = [];
  for (let run = 0; run < cachedRepeats; run++) {
    const answer = await timedEnrich(service.url, { ips, sources: SOURCES });
    expectCached(answer, ips, `repeat ${run + 1}`);
    repeats.push(answer.ms);
    if (run < 2) repeatWindows.push(wallWindow(`b ${name}: repeat ${run + 1}`, answer.startedAt, answer.endedAt));
    rss.push(await service.rss());
    await sleep(SETTINGS.cachedPauseMs);
  }
  const peakRss = await service.peakRss();
  const first = repeats[0]!;
  const later = median(repeats.slice(1, 1 + cachedMedianOf));
  const rate = (value: number) => (ips.length / value) * 1000;
  const minRate = SETTINGS.targets.cachedAddressesPerSecond;
  const bound = ms((ips.length / minRate) * 1000);
  const growth = rss[rss.length - 1]! - rss[1]!;
  const ratio = cold.ms / ideal;
  return {
    peakRss,
    windows: [
      wallWindow(`a ${name}: before the first Cymru query`, cold.startedAt, cymruStart),
      wallWindow(`a ${name}: while Cymru answers`, cymruStart, cymruEnd),
      wallWindow(`a ${name}: after the last Cymru answer`, cymruEnd, cold.endedAt),
      ...repeatWindows,
    ],
    rows: [
      {
        scenario: `a cold 10k, ${name}`,
        measured: ms(cold.ms),
        bound: `${ms(ideal)} (${Math.ceil(batches / cell.connections)} × ${cell.latencyMs} ms)`,
        value: ratio.toFixed(3),
        target: `<= ${SETTINGS.targets.coldRatio.toFixed(2)}`,
        pass: ratio <= SETTINGS.targets.coldRatio && wrong === 0,
      },
      {
        scenario: `b cached, first repeat, ${name}`,
        measured: ms(first),
        bound,
        value: perSecond(rate(first), 'addresses'),
        target: `>= ${perSecond(minRate)}`,
        pass: rate(first) >= minRate,
      },
      {
        scenario: `b cached, median of ${cachedMedianOf}, ${name}`,
        measured: ms(later),
        bound,
        value: perSecond(rate(later), 'addresses'),
        target: `>= ${perSecond(minRate)}`,
        pass: rate(later) >= minRate,
      },
      {
        scenario: `d peak RSS, ${name}`,
        measured: mb(peakRss),
        bound: `growth ${mb(growth)} (repeat 2 → ${cachedRepeats})`,
        value: `after repeats ${rss.map((bytes) => (bytes / 1024 / 1024).toFixed(0)).join('/')} MB`,
        target: `<= ${mb(SETTINGS.targets.coldPeakRssBytes)}, growth <= ${mb(rssGrowthBytes)}`,
        pass: peakRss <= SETTINGS.targets.coldPeakRssBytes && growth <= rssGrowthBytes,
      },
    ],
    notes: [
      `a ${name}: ${connections.length} bulk queries, at most ${cymru.maxConcurrent()} at once; answers not ok: ${wrong}; ` +
        `request start -> first Cymru connection ${ms(cymruStart - cold.startedAt)}; Cymru span ${ms(cymruEnd - cymruStart)}; ` +
        `last Cymru answer -> last byte ${ms(cold.endedAt - cymruEnd)}; CPU: ${cpu}; response ${mb(cold.bytes)}; ` +
        `per query (median/max): accept -> request read ${phase(connections, 'startedAt', 'askedAt')}, ` +
        `-> answer written ${phase(connections, 'askedAt', 'answeredAt')}, -> closed ${phase(connections, 'answeredAt', 'endedAt')}; ` +
        `close -> next query ${slotGaps(connections, cell.connections)}`,
      `b ${name}: repeats ${repeats.map((t) => t.toFixed(0)).join(', ')} ms to the last byte`,
    ],
  };
}
