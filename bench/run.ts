/**
 * `npm run bench`: the service in a child process against real PostgreSQL, real Redis and the upstream
 * doubles of the tests, driven and timed from here. Prints one table of measured values against their
 * ideal or bound and target; a missed target is a FAIL row, not a failed run.
 *
 * The matrix (README, Performance) runs each cold cell on a service booted for it; `--only` and the other
 * flags of bench/options.ts run a part of it.
 *
 * BENCH_NODE_FLAGS='--max-semi-space-size=32' runs each service with those Node flags.
 *
 * BENCH_CPU_PROF_DIR=<dir> runs each service with --cpu-prof, leaves its profile in a folder of its own
 * there and adds to the notes where the service's CPU went during each window.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import pg from 'pg';
import { ConfigSchema } from '../src/config.js';
import { errorMessage } from '../src/errors/message.js';
import { startCymruWhois } from '../tests/doubles/cymru-whois.js';
import { HttpUpstreamDouble } from '../tests/doubles/http-upstream.js';
import { createTestDatabase } from '../tests/support/database.js';
import { writeTestMaxMind } from '../tests/support/app.js';
import { routableLists } from './addresses.js';
import { backendCpuSeconds, calibrationMs } from './cpu.js';
import { closeClient, timedEnrich } from './enrich-client.js';
import { closeJobClient, coldJob, streamResults } from './job.js';
import { cellName, coldCell, type Cell } from './matrix.js';
import { benchOptions } from './options.js';
import { monotonicUs, summarizeProfile, type Window } from './profile.js';
import { formatTable, mb, verdict, type Row } from './report.js';
import { allSources, peakMemory, persisting, REFUSAL_LINES, singleLookups, type ScenarioResult, type Upstreams } from './scenarios.js';
import { freePort, startChild, type ChildServer } from './service.js';
import { fixedLatencyFor, SETTINGS } from './settings.js';

const REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
const ADMIN_DATABASE_URL = process.env.TEST_ADMIN_DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';

/** Undone in reverse order, once, however the run ends. */
const cleanups: Array<{ what: string; run: () => Promise<unknown> }> = [];
let cleaned = false;

async function cleanUp(): Promise<void> {
  if (cleaned) return;
  cleaned = true;
  for (const { what, run } of cleanups.reverse()) {
    try {
      await run();
    } catch (error) {
      console.error(`cleanup: could not ${what}: ${errorMessage(error)}`);
    }
  }
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    console.error(`${signal}: cleaning up`);
    void cleanUp().then(() => process.exit(130));
  });
}

async function deleteKeys(redis: Redis, prefix: string): Promise<number> {
  let deleted = 0;
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length > 0) deleted += await redis.del(...keys);
  } while (cursor !== '0');
  return deleted;
}

async function machine(admin: pg.Client, redis: Redis): Promise<string[]> {
  const { rows } = await admin.query<{ server_version: string }>('SHOW server_version');
  const redisVersion = /redis_version:(\S+)/.exec(await redis.info('server'))?.[1] ?? '?';
  const cores = cpus();
  const git = (...args: string[]) => execFileSync('git', args, { encoding: 'utf8' }).trim();
  const changed = git('status', '--porcelain', '--', 'src').split('\n').filter(Boolean).length;
  return [
    `code: ${git('rev-parse', '--short', 'HEAD')}${changed > 0 ? ` with ${changed} uncommitted change(s) under src/` : ''}`,
    `machine: ${cores.length} cores (${cores[0]?.model ?? '?'}), ${mb(totalmem())} RAM, node ${process.version}, ` +
      `PostgreSQL ${rows[0]?.server_version ?? '?'}, Redis ${redisVersion}`,
  ];
}

const windows: Window[] = [];

async function scenario<T extends ScenarioResult>(rows: Row[], notes: string[], name: string, work: () => Promise<T>): Promise<T | undefined> {
  process.stderr.write(`bench: ${name}...\n`);
  const startUs = monotonicUs();
  try {
    const result = await work();
    windows.push(...(result.windows ?? [{ name, startUs, endUs: monotonicUs() }]));
    rows.push(...result.rows);
    notes.push(...result.notes);
    return result;
  } catch (error) {
    const message = errorMessage(error);
    rows.push({ scenario: name, measured: 'not measured', bound: '-', value: message.split('\n')[0]!.slice(0, 80), target: '-', pass: null });
    notes.push(`${name}: ${message}`);
    return undefined;
  }
}

async function main(): Promise<number> {
  const options = benchOptions();
  const redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await redis.connect();
  cleanups.push({ what: 'close the Redis connection', run: () => redis.quit() });
  // One connection for the bench's own questions to PostgreSQL (its version, the backends' CPU).
  const admin = new pg.Client({ connectionString: ADMIN_DATABASE_URL });
  await admin.connect();
  cleanups.push({ what: 'close the PostgreSQL admin connection', run: () => admin.end() });
  const header = await machine(admin, redis);
  const speedBefore = calibrationMs();

  const workDir = await mkdtemp(join(tmpdir(), 'ipenrich-bench-'));
  cleanups.push({ what: `remove ${workDir}`, run: () => rm(workDir, { recursive: true, force: true }) });
  const maxmind = await writeTestMaxMind(workDir);
  const serviceDb = await createTestDatabase();
  cleanups.push({ what: `drop database ${serviceDb.name}`, run: () => serviceDb.drop() });
  const storeDb = await createTestDatabase();
  cleanups.push({ what: `drop database ${storeDb.name}`, run: () => storeDb.drop() });
  const keyPrefix = `ipenrich-bench:${randomBytes(6).toString('hex')}:`;
  cleanups.push({ what: `delete Redis keys ${keyPrefix}*`, run: () => deleteKeys(redis, keyPrefix) });

  const { queryLatencyMs, perAddressLatencyMs } = SETTINGS.cymru;
  const upstreams: Upstreams = {
    cymru: await startCymruWhois({ queryLatencyMs, perAddressLatencyMs }),
    greynoise: await HttpUpstreamDouble.start({ latencyMs: SETTINGS.upstream.latencyMs, ceiling: SETTINGS.upstream.greynoiseCeiling }),
    dshield: await HttpUpstreamDouble.start({ latencyMs: SETTINGS.upstream.latencyMs, ceiling: SETTINGS.upstream.dshieldCeiling }),
  };
  cleanups.push({ what: 'close the Cymru double', run: () => upstreams.cymru.close() });
  cleanups.push({ what: 'close the GreyNoise double', run: () => upstreams.greynoise.close() });
  cleanups.push({ what: 'close the DShield double', run: () => upstreams.dshield.close() });

  // MaxMind City only: without an ASN database every address needs Team Cymru.
  const env: Record<string, string> = {
    LOG_LEVEL: 'warn',
    DATABASE_URL: serviceDb.url,
    REDIS_URL,
    REDIS_KEY_PREFIX: keyPrefix,
    MAXMIND_CITY_DB: maxmind.city,
    CYMRU_WHOIS_HOST: upstreams.cymru.host,
    CYMRU_WHOIS_PORT: String(upstreams.cymru.port),
    CYMRU_BATCH_SIZE: String(SETTINGS.cymru.batchSize),
    CYMRU_MAX_CONNECTIONS: String(SETTINGS.cymru.maxConnections),
    GREYNOISE_API_URL: upstreams.greynoise.url,
    GREYNOISE_RATE: String(SETTINGS.service.greynoise.rate),
    GREYNOISE_BURST: String(SETTINGS.service.greynoise.burst),
    GREYNOISE_MAX_IN_FLIGHT: String(SETTINGS.service.greynoise.maxInFlight),
    DSHIELD_API_URL: upstreams.dshield.url,
    DSHIELD_CONTACT: 'bench@example.org',
    DSHIELD_RATE: String(SETTINGS.service.dshield.rate),
    DSHIELD_BURST: String(SETTINGS.service.dshield.burst),
    DSHIELD_MAX_IN_FLIGHT: String(SETTINGS.service.dshield.maxInFlight),
    ENRICH_DEADLINE_MS: String(SETTINGS.service.deadlineMs),
    ENRICH_MAX_IPS: String(SETTINGS.addresses),
  };
  const profileDir = process.env.BENCH_CPU_PROF_DIR;
  // BENCH_NODE_FLAGS: V8 or Node settings to try on every service process (not on the bench's own).
  const nodeFlags = (process.env.BENCH_NODE_FLAGS ?? '').split(' ').filter(Boolean);
  const profiled = (name: string) => [...nodeFlags, ...(profileDir ? ['--cpu-prof', `--cpu-prof-dir=${join(profileDir, name)}`] : [])];
  const rows: Row[] = [];
  const notes: string[] = [];
  const { parts } = options;
  const cells = parts.has('cold')
    ? options.latenciesMs.flatMap((latencyMs) => options.cymruConnections.map((connections): Cell => ({ connections, latencyMs })))
    : [];
  const lists = routableLists([...cells.map(() => SETTINGS.addresses), SETTINGS.addresses, SETTINGS.addresses, SETTINGS.jobAddresses]);
  const [upstreamList = [], storeList = [], jobList = []] = lists.slice(cells.length);
  upstreams.cymru.prepare([...upstreamList, ...jobList]);
  const serviceBackends = () => backendCpuSeconds(admin, serviceDb.name);

  // Each cell of the matrix on a service of its own, booted for it, so that its peak RSS is its own and no cell
  // inherits another's heap; they share the database and Redis, and their lists are disjoint.
  for (const [index, cell] of cells.entries()) {
    const name = `[${index + 1}/${cells.length}] cold 10k then cached, ${cellName(cell)}`;
    const profile = `cold-${cell.connections}-${cell.latencyMs}`;
    const cellWindows = windows.length;
    await scenario(rows, notes, name, async () => {
      const double = await startCymruWhois({ queryLatencyMs: fixedLatencyFor(cell.latencyMs), perAddressLatencyMs });
      const closeDouble = { what: `close the Cymru double of ${cellName(cell)}`, run: () => double.close() };
      cleanups.push(closeDouble);
      const service = await startChild({
        name: `service, ${cellName(cell)}`,
        script: 'dist/server.js',
        port: await freePort(),
        env: { ...env, CYMRU_WHOIS_PORT: String(double.port), CYMRU_MAX_CONNECTIONS: String(cell.connections) },
        nodeFlags: profiled(profile),
        dropEnv: Object.keys(ConfigSchema.properties),
      });
      cleanups.push({ what: `stop the service of ${cellName(cell)}`, run: () => service.stop() });
      try {
        return await coldCell(service, double, cell, lists[index]!, serviceBackends);
      } finally {
        await service.stop();
        await double.close();
        cleanups.splice(cleanups.indexOf(closeDouble), 1);
      }
    });
    for (const row of rows.slice(-4)) process.stderr.write(`bench:   ${row.scenario}: ${row.measured}, ${row.value} ${verdict(row.pass)}\n`);
    if (profileDir) notes.push(...(await summarizeProfile(join(profileDir, profile), windows.slice(cellWindows))));
  }

  let bare: ChildServer | undefined;
  cleanups.push({ what: 'stop the bare server', run: async () => bare?.stop() });
  if (parts.has('sources') || parts.has('ip')) {
    const mainWindows = windows.length;
    const service = await startChild({
      name: 'service',
      script: 'dist/server.js',
      port: await freePort(),
      env,
      nodeFlags: profiled('main'),
      dropEnv: Object.keys(ConfigSchema.properties),
      watch: Object.values(REFUSAL_LINES),
    });
    cleanups.push({ what: 'stop the service', run: () => service.stop() });
    const bootPeak = await service.peakRss();
    let s2: ScenarioResult | undefined;
    if (parts.has('sources')) {
      s2 = await scenario(rows, notes, '2 cold 10k, all four sources', () => allSources(service, upstreams, upstreamList));
      rows.push(peakMemory({ boot: bootPeak, allSources: s2?.peakRss }));
    } else {
      // GET /ip needs the list cached, all four sources.
      await timedEnrich(service.url, { ips: upstreamList });
    }
    if (parts.has('ip')) {
      await scenario(rows, notes, 'c GET /ip cached', () =>
        singleLookups(service, upstreams, upstreamList, workDir, options.loadConnections, (started) => (bare = started)),
      );
    }
    // Stopped before the save scenario, so that it does not compete for the CPU (and its profile is written).
    await service.stop();
    if (profileDir) notes.push(...(await summarizeProfile(join(profileDir, 'main'), windows.slice(mainWindows))));
  }
  if (parts.has('save')) await scenario(rows, notes, '5 RecordStore.save 10k', () => persisting(storeDb.url, storeList));

  // The job runs on a worker of its own, as in a deployment (README, "Running at scale"), and is submitted
  // to and streamed from an API process of its own: neither carries what the other scenarios left in a
  // service's heap, and the worker's peak RSS is its own from boot.
  if (parts.has('job')) {
    const roles: ChildServer[] = [];
    cleanups.push({ what: 'stop the job processes', run: () => Promise.all(roles.map((child) => child.stop())) });
    const startRole = async (role: 'api' | 'worker') => {
      const dir = profileDir ? join(profileDir, `jobs-${role}`) : undefined;
      const child = await startChild({
        name: `service ROLE=${role}`,
        script: 'dist/server.js',
        port: await freePort(),
        env: { ...env, ROLE: role, ENRICH_MAX_IPS: String(SETTINGS.jobAddresses) },
        nodeFlags: profiled(`jobs-${role}`),
        dropEnv: Object.keys(ConfigSchema.properties),
      });
      roles.push(child);
      return { child, dir };
    };
    const api = await startRole('api');
    const worker = await startRole('worker');
    const jobWindows = windows.length;
    const job = await scenario(rows, notes, '7 cold job 100k, maxmind+cymru', () => coldJob(api.child, worker.child, upstreams, jobList));
    if (job) await scenario(rows, notes, '9 stream the job results', () => streamResults(api.child, job.id, jobList.length, admin, serviceDb.name));
    await Promise.all(roles.map((child) => child.stop()));
    for (const { dir } of [api, worker]) if (dir) notes.push(...(await summarizeProfile(dir, windows.slice(jobWindows))));
  }

  const { cymru, upstream, service: limits } = SETTINGS;
  console.log(
    [
      ...header,
      `machine speed: a fixed JSON workload (10,000 records made and parsed, best of 5) took ${speedBefore.toFixed(0)} ms ` +
        `before the bench and ${calibrationMs().toFixed(0)} ms after it; compare runs through it`,
      `service: node ${[...nodeFlags, ...(profileDir ? ['--cpu-prof'] : [])].map((flag) => `${flag} `).join('')}dist/server.js (built by npm run build; child processes, LOG_LEVEL=warn, Redis L1, PostgreSQL)`,
      `parts: ${[...parts].join(', ')}; matrix: CYMRU_MAX_CONNECTIONS ${options.cymruConnections.join('/')} × full-batch query ` +
        `${options.latenciesMs.join('/')} ms (${cymru.perAddressLatencyMs} ms of it per address), each cell on a service booted for it, ` +
        `MaxMind City only, the cold list then ${SETTINGS.matrix.cachedRepeats} cached repeats ${SETTINGS.cachedPauseMs} ms apart; ` +
        `GET /ip at ${options.loadConnections.join('/')} load connections`,
      `settings: ${SETTINGS.addresses} routable IPv4 per list, ${SETTINGS.jobAddresses} in the job; outside the matrix, Cymru double ` +
        `${cymru.queryLatencyMs} ms + ${cymru.perAddressLatencyMs} ms/address per query, CYMRU_BATCH_SIZE ${cymru.batchSize}, CYMRU_MAX_CONNECTIONS ${cymru.maxConnections}; GreyNoise/DShield doubles ` +
        `${upstream.latencyMs} ms, ceilings ${upstream.greynoiseCeiling.rate}/s burst ${upstream.greynoiseCeiling.burst} and ` +
        `${upstream.dshieldCeiling.rate}/s burst ${upstream.dshieldCeiling.burst}; service GREYNOISE_RATE/BURST ` +
        `${limits.greynoise.rate}/${limits.greynoise.burst} in flight ${limits.greynoise.maxInFlight}, DSHIELD_RATE/BURST ` +
        `${limits.dshield.rate}/${limits.dshield.burst} in flight ${limits.dshield.maxInFlight}, ` +
        `ENRICH_DEADLINE_MS ${limits.deadlineMs}; autocannon ` +
        `${SETTINGS.load.rounds} rounds of ${SETTINGS.load.seconds} s on the bare route then the service, after ` +
        `${SETTINGS.load.warmupSeconds} s warm-up each; save runs ${SETTINGS.saveRuns}; stream runs ${SETTINGS.streamRuns}`,
      'peak RSS: VmHWM of the service process from /proc/<pid>/status: a matrix cell\'s from its boot to its last repeat, ' +
        'growth is VmRSS after its last repeat minus after its second; scenario 2\'s after a reset through /proc/<pid>/clear_refs; ' +
        'scenarios 7-9 run on a ROLE=api and a ROLE=worker process started for them: 8 is the worker\'s VmHWM from its boot, ' +
        'and the API process\'s is reset before each form of 9',
      '',
      formatTable(rows),
      '',
      ...notes,
    ].join('\n'),
  );
  return rows.some((row) => row.pass === null) ? 1 : 0;
}

let exitCode = 1;
try {
  exitCode = await main();
} catch (error) {
  console.error(error);
} finally {
  await closeClient();
  await closeJobClient();
  await cleanUp();
}
process.exit(exitCode);
