import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, startChild, type ChildServer } from '../../bench/service.js';
import type { JobView } from '../../src/schemas/jobs.js';
import { startCymruWhois, type CymruWhoisDouble } from '../doubles/cymru-whois.js';
import { writeTestMaxMind } from '../support/app.js';
import { buildDist } from '../support/cli.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

const ADDRESSES = Array.from({ length: 400 }, (_, i) => `45.80.${i >> 7}.${(i & 127) + 1}`);
/** Bulk queries answered before the double stops answering, and the service is killed. */
const ANSWERED = 6;

let database: TestDatabase;
let cymru: CymruWhoisDouble;
let mmdbDir: string;
let env: Record<string, string>;
/** Until the kill, the bulk queries past the first ANSWERED hang: those in flight then never answer. */
let killed = false;
const children: ChildServer[] = [];

beforeAll(async () => {
  // The service as production runs it: the built dist/server.js.
  await buildDist();
  database = await createTestDatabase();
  cymru = await startCymruWhois({ queryLatencyMs: 50, behaviour: (index) => (killed || index < ANSWERED ? 'answer' : 'hang') });
  mmdbDir = await mkdtemp(join(tmpdir(), 'ipenrich-restart-'));
  const files = await writeTestMaxMind(mmdbDir);
  env = {
    DATABASE_URL: database.url,
    MAXMIND_CITY_DB: files.city,
    MAXMIND_ASN_DB: files.asn,
    CYMRU_WHOIS_HOST: cymru.host,
    CYMRU_WHOIS_PORT: String(cymru.port),
    CYMRU_BATCH_SIZE: '20',
    JOB_LEASE_SECONDS: '2',
    REFRESH_SCHEDULE: 'off',
    LOG_LEVEL: 'info',
  };
}, 120_000);

afterAll(async () => {
  for (const child of children) await child.stop(2000);
  await cymru.close();
  await database.drop();
  await rm(mmdbDir, { recursive: true, force: true });
});

async function boot(): Promise<ChildServer> {
  const child = await startChild({ name: 'service', script: 'dist/server.js', port: await freePort(), env, dropEnv: ['REDIS_URL'] });
  children.push(child);
  return child;
}

async function job(child: ChildServer, id: string): Promise<JobView> {
  const response = await fetch(`${child.url}/jobs/${id}`);
  expect(response.status).toBe(200);
  return (await response.json()) as JobView;
}

async function until(child: ChildServer, id: string, done: (job: JobView) => boolean, timeoutMs = 30_000): Promise<JobView> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const current = await job(child, id);
    if (done(current)) return current;
    if (Date.now() > deadline) throw new Error(`job never got there: ${JSON.stringify(current)}\n${child.tail()}`);
    await sleep(50);
  }
}

describe('the built service killed with SIGKILL in the middle of a job', () => {
  it('resumes the job after a restart and completes it without asking Team Cymru about any address twice', async () => {
    const first = await boot();
    const submitted = await fetch(`${first.url}/jobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ips: ADDRESSES, sources: ['maxmind', 'cymru'] }),
    });
    expect(submitted.status).toBe(202);
    const { id } = (await submitted.json()) as JobView;
    // Every answered query is written before the kill; the ones then in flight hang and never answer.
    await until(first, id, (current) => (current.phases.cymru.batches ?? 0) >= ANSWERED);
    expect(first.tail(2000)).toMatch(/job [0-9a-f]{8}… cymru \d+\/400 addresses, \d+ batches/);
    process.kill(first.pid, 'SIGKILL');
    await first.stop(0);
    killed = true;

    const second = await boot();
    const done = await until(second, id, (current) => current.status === 'completed');
    expect(done.phases.persist).toMatchObject({ done: 400, total: 400, state: 'done' });

    const answered = cymru.connections.filter((connection) => connection.rowsWritten > 0);
    const asked = answered.flatMap((connection) => connection.addresses);
    expect(asked.sort()).toEqual([...ADDRESSES].sort());
    // The killed service had queries in flight that never answered, and the restarted one did not repeat the rest.
    expect(cymru.connections.some((connection) => connection.rowsWritten === 0)).toBe(true);
    const results = await fetch(`${second.url}/jobs/${id}/results?limit=10000`);
    const { results: records } = (await results.json()) as { results: Array<{ input: string; status: string; asn: { number: number } }> };
    expect(records.map((record) => [record.input, record.status])).toEqual(ADDRESSES.map((ip) => [ip, 'ok']));
    expect(records[0]!.asn.number).toBe(1045);
  });
});
