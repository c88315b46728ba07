/**
 * `npm run bench`: the service in a child process against real PostgreSQL, real Redis and the upstream
 * doubles of the tests, driven and timed from here. Prints one table of measured values against their
 * ideal or bound and target; a missed target is a FAIL row, not a failed run.
 *
 * BENCH_CPU_PROF_DIR=<dir> runs the service with --cpu-prof, leaves its profile there and adds to the notes
 * where the service's CPU went during each scenario. BENCH_ONLY=job runs only the job scenarios (7-9).
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
import { closeClient } from './enrich-client.js';
import { closeJobClient, coldJob, streamResults } from './job.js';
import { monotonicUs, summarizeProfile, type Window } from './profile.js';
import { formatTable, mb, type Row } from './report.js';
import {
  allSources,
  cached,
  coldCymru,
  peakMemory,
  persisting,
  REFUSAL_LINES,
  singleLookups,
  type ScenarioResult,
  type Upstreams,
} from './scenarios.js';
import { freePort, startChild, type ChildServer } from './service.js';
import { SETTINGS } from './settings.js';

const REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
const ADMIN_DATABASE_URL = process.env.TEST_ADMIN_DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';
const JOB_ONLY = process.env.BENCH_ONLY === 'job';

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

async function machine(redis: Redis): Promise<string[]> {
  const admin = new pg.Client({ connectionString: ADMIN_DATABASE_URL });
  await admin.connect();
  const { rows } = await admin.query<{ server_version: string }>('SHOW server_version');
  await admin.end();
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
  const redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await redis.connect();
  cleanups.push({ what: 'close the Redis connection', run: () => redis.quit() });
  const header = await machine(redis);

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
  const nodeFlags = profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [];
  let bare: ChildServer | undefined;
  cleanups.push({ what: 'stop the bare server', run: async () => bare?.stop() });
  const service = await startChild({
    name: 'service',
    script: 'dist/server.js',
    port: await freePort(),
    env,
    nodeFlags,
    dropEnv: Object.keys(ConfigSchema.properties),
    watch: Object.values(REFUSAL_LINES),
  });
  cleanups.push({ what: 'stop the service', run: () => service.stop() });
  const bootPeak = await service.peakRss();

  const [coldList = [], upstreamList = [], storeList = [], jobList = []] = routableLists([
    SETTINGS.addresses,
    SETTINGS.addresses,
    SETTINGS.addresses,
    SETTINGS.jobAddresses,
  ]);
  const rows: Row[] = [];
  const notes: string[] = [];
  if (!JOB_ONLY) {
    const s1 = await scenario(rows, notes, '1 cold 10k, maxmind+cymru', () => coldCymru(service, upstreams, coldList));
    const s2 = await scenario(rows, notes, '2 cold 10k, all four sources', () => allSources(service, upstreams, upstreamList));
    await scenario(rows, notes, '3 cached 10k', () => cached(service, upstreamList));
    await scenario(rows, notes, '4 GET /ip cached', () =>
      singleLookups(service, upstreams, upstreamList, workDir, (started) => (bare = started)),
    );
    // Stopped before scenario 5, so that it does not compete for the CPU (and its profile is written).
    await service.stop();
    if (profileDir) notes.push(...(await summarizeProfile(profileDir, windows)));
    await scenario(rows, notes, '5 RecordStore.save 10k', () => persisting(storeDb.url, storeList));
    rows.push(peakMemory({ boot: bootPeak, scenario1: s1?.peakRss, scenario2: s2?.peakRss }));
  } else {
    await service.stop();
  }

  // The job runs on a worker of its own, as in a deployment (README, "Running at scale"), and is submitted
  // to and streamed from an API process of its own: neither carries what scenarios 1-4 left in the
  // service's heap, and the worker's peak RSS is its own from boot.
  const roles: ChildServer[] = [];
  cleanups.push({ what: 'stop the job processes', run: () => Promise.all(roles.map((child) => child.stop())) });
  const startRole = async (role: 'api' | 'worker') => {
    const dir = profileDir ? join(profileDir, `jobs-${role}`) : undefined;
    const child = await startChild({
      name: `service ROLE=${role}`,
      script: 'dist/server.js',
      port: await freePort(),
      env: { ...env, ROLE: role, ENRICH_MAX_IPS: String(SETTINGS.jobAddresses) },
      nodeFlags: dir ? ['--cpu-prof', `--cpu-prof-dir=${dir}`] : [],
      dropEnv: Object.keys(ConfigSchema.properties),
    });
    roles.push(child);
    return { child, dir };
  };
  const api = await startRole('api');
  const worker = await startRole('worker');
  const jobWindows = windows.length;
  const job = await scenario(rows, notes, '7 cold job 100k, maxmind+cymru', () => coldJob(api.child, worker.child, upstreams, jobList));
  if (job) await scenario(rows, notes, '9 stream the job results', () => streamResults(api.child, job.id, jobList.length, serviceDb.url));
  await Promise.all(roles.map((child) => child.stop()));
  for (const { dir } of [api, worker]) if (dir) notes.push(...(await summarizeProfile(dir, windows.slice(jobWindows))));

  const { cymru, upstream, service: limits } = SETTINGS;
  console.log(
    [
      ...header,
      `service: ${['node', ...nodeFlags, 'dist/server.js'].join(' ')} (built by npm run build; child process, LOG_LEVEL=warn, Redis L1, PostgreSQL)`,
      `settings: ${SETTINGS.addresses} routable IPv4 per list, ${SETTINGS.jobAddresses} in the job; Cymru double ${cymru.queryLatencyMs} ms + ${cymru.perAddressLatencyMs} ms/address ` +
        `per query, CYMRU_BATCH_SIZE ${cymru.batchSize}, CYMRU_MAX_CONNECTIONS ${cymru.maxConnections}; GreyNoise/DShield doubles ` +
        `${upstream.latencyMs} ms, ceilings ${upstream.greynoiseCeiling.rate}/s burst ${upstream.greynoiseCeiling.burst} and ` +
        `${upstream.dshieldCeiling.rate}/s burst ${upstream.dshieldCeiling.burst}; service GREYNOISE_RATE/BURST ` +
        `${limits.greynoise.rate}/${limits.greynoise.burst} in flight ${limits.greynoise.maxInFlight}, DSHIELD_RATE/BURST ` +
        `${limits.dshield.rate}/${limits.dshield.burst} in flight ${limits.dshield.maxInFlight}, ` +
        `ENRICH_DEADLINE_MS ${limits.deadlineMs}; cached runs ${SETTINGS.cachedRuns}; autocannon ${SETTINGS.load.connections} ` +
        `connections, ${SETTINGS.load.rounds} rounds of ${SETTINGS.load.seconds} s on the bare route then the service, after ` +
        `${SETTINGS.load.warmupSeconds} s warm-up each; save runs ${SETTINGS.saveRuns}; stream runs ${SETTINGS.streamRuns}`,
      'peak RSS: VmHWM of the service process from /proc/<pid>/status, read right after scenario 1 and after ' +
        'scenario 2 (the high-water mark is reset through /proc/<pid>/clear_refs before scenario 2); scenarios 7-9 run on a ' +
        'ROLE=api and a ROLE=worker process started for them after scenario 5: 8 is the worker\'s VmHWM from its boot, and the ' +
        'API process\'s is reset before each form of 9',
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
