import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parse as parseCsv } from 'csv-parse/sync';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { IpRecord } from '../../src/record/model.js';
import { respond } from '../doubles/http-upstream.js';
import { listenOnLoopback, startHarness, type Harness } from '../support/app.js';
import { buildDist, finished, runCli, runInTerminal, startCli, CLI } from '../support/cli.js';

/*
 * The built command against a real service: the app of tests/support/app.ts listening on a port, with its
 * PostgreSQL database, real MaxMind files and the upstream doubles.
 */

let harness: Harness;
let url: string;
let dir: string;

beforeAll(async () => {
  await buildDist();
  // Team Cymru answers slowly enough that a job can be interrupted while it runs (see the Ctrl-C test).
  harness = await startHarness({ cymru: { queryLatencyMs: 150 }, config: { CYMRU_BATCH_SIZE: 20 } });
  url = await listenOnLoopback(harness);
  dir = await mkdtemp(join(tmpdir(), 'ipenrich-cli-server-'));
});

afterAll(async () => {
  await harness?.close();
  await rm(dir, { recursive: true, force: true });
});

async function file(name: string, content: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, content);
  return path;
}

/** What POST /enrich answers for the same addresses: the records the command's output must equal. */
async function serviceRecords(ips: string[]): Promise<IpRecord[]> {
  const response = await harness.app.inject({ method: 'POST', url: '/enrich', payload: { ips } });
  expect(response.statusCode, response.body).toBe(200);
  return response.json<{ results: IpRecord[] }>().results;
}

const parseNdjson = (text: string) =>
  text
    .trimEnd()
    .split('\n')
    .map((line) => JSON.parse(line) as IpRecord);

/** A cowrie JSON log: connect, failed logins and commands from a few attackers, one line per event. */
function cowrieLog(attackers: string[]): string {
  const lines: object[] = [];
  attackers.forEach((ip, index) => {
    const session = `c0ffee${String(index).padStart(4, '0')}`;
    const base = { sensor: 'honeypot-1', session, timestamp: `2026-11-30T12:00:${String(index % 60).padStart(2, '0')}.000000Z` };
    lines.push({ ...base, eventid: 'cowrie.session.connect', src_ip: ip, src_port: 40000 + index, dst_ip: '10.0.0.5', dst_port: 22, protocol: 'ssh', message: `New connection: ${ip}:${40000 + index} (10.0.0.5:22) [session: ${session}]` });
    lines.push({ ...base, eventid: 'cowrie.login.failed', src_ip: ip, username: 'root', password: '123456', message: 'login attempt [root/123456] failed' });
    lines.push({ ...base, eventid: 'cowrie.session.closed', src_ip: ip, duration: 1.2, message: 'Connection lost after 1.2 seconds' });
  });
  return `${lines.map((line) => JSON.stringify(line)).join('\n')}\n{"eventid":"cowrie.log.rotated","message":"truncated\n`;
}

describe('ip-enrich enrich --server', () => {
  it("enriches a cowrie log as a job, writing NDJSON equal to the service's records", async () => {
    const attackers = ['81.2.69.160', '45.80.1.7', '2a02:d8::1', '45.80.1.8', '10.1.2.3'];
    const log = await file('cowrie.json', cowrieLog(attackers));
    const run = await runCli(['enrich', log, '--server', url, '--format', 'ndjson', '--progress-every', '1']);
    expect(run.stderr).toContain('cowrie.json (NDJSON): 16 lines, 15 addresses; 1 line without an address (line 16 not JSON)');
    expect(run.status, run.stderr).toBe(0);
    const records = parseNdjson(run.stdout);
    expect(records.map((record) => record.ip)).toEqual(attackers);
    expect(records).toEqual(await serviceRecords(attackers));
    expect(records.find((record) => record.ip === '10.1.2.3')?.status).toBe('bogon');
    expect(run.stderr).toContain('wrote 5 records to standard output (4 ok, 1 bogon)');
  });

  it("writes CSV with the columns of the service's CSV results, from a CSV export's named column", async () => {
    const csv = await file('firewall.csv', 'time;action;source address;port\n1;drop;45.80.2.1;22\n2;drop;45.80.2.2;23\n3;drop;45.80.2.1;22\n4;drop;;80\n');
    const out = join(dir, 'firewall-enriched.csv');
    const run = await runCli(['enrich', csv, '--column', 'Source Address', '--server', url, '-o', out, '--quiet']);
    expect(run.stderr).toBe('');
    expect(run.stdout).toBe('');
    expect(run.status).toBe(0);
    const rows = parseCsv<Record<string, string>>(await readFile(out, 'utf8'), { columns: true });
    const records = await serviceRecords(['45.80.2.1', '45.80.2.2']);
    expect(rows.map((row) => row.ip)).toEqual(['45.80.2.1', '45.80.2.2']);
    rows.forEach((row, index) => {
      const record = records[index] as IpRecord;
      expect(row).toMatchObject({
        status: record.status,
        asn: String(record.asn?.number),
        as_name: record.asn?.name,
        prefix: record.asn?.prefix,
        cymru_status: record.sources.cymru.status,
        greynoise_status: record.sources.greynoise.status,
        dshield_status: record.sources.dshield.status,
        updated_at: record.updatedAt,
      });
    });
  });

  it('reads a plain list on standard input and a JSON array, answering one record per distinct address', async () => {
    const list = '# from the firewall\n45.80.3.1\n45.80.3.2 # twice\n45.80.3.2\n::ffff:45.80.3.1\nnot-an-address\n';
    const fromStdin = await runCli(['enrich', '--server', url, '--format', 'json', '--quiet'], { stdin: list });
    expect(fromStdin.status).toBe(0);
    expect((JSON.parse(fromStdin.stdout) as IpRecord[]).map((record) => record.ip)).toEqual(['45.80.3.1', '45.80.3.2']);
    const array = await file('list.json', JSON.stringify([{ ip: '45.80.3.3' }, { ip: '45.80.3.1' }]));
    const fromArray = await runCli(['enrich', array, '--server', url, '--format', 'ndjson', '--quiet']);
    expect(fromArray.status).toBe(0);
    expect(parseNdjson(fromArray.stdout)).toEqual(await serviceRecords(['45.80.3.3', '45.80.3.1']));
  });

  it('shows one bar per pass in a terminal while standard output carries only the records', async () => {
    const list = await file('terminal.txt', Array.from({ length: 60 }, (_, i) => `45.80.4.${i + 1}`).join('\n'));
    const out = join(dir, 'terminal.ndjson');
    const { status, screen, text } = await runInTerminal(`'${process.execPath}' '${CLI}' enrich '${list}' --server ${url} --format ndjson > '${out}'`);
    expect(status).toBe(0);
    // Drawn in place: the cursor moves back up over the bars to redraw them.
    expect(screen).toMatch(/\[\d+A/);
    for (const pass of ['collect', 'maxmind', 'greynoise', 'dshield']) expect(text).toMatch(new RegExp(`^${pass} +\\[█{24}\\] 60/60  done$`, 'm'));
    expect(text).toMatch(/^read +\[█{24}\] 60 lines, 60 addresses, 100%/m);
    expect(text).toMatch(/terminal\.txt \(plain list\): 60 lines, 60 addresses$/m);
    expect(text).toMatch(/^cymru +\[█{24}\] 60\/60 {2}done {2}3 batches$/m);
    expect(text).toMatch(/^job +[0-9a-f]{8} completed: 60 addresses/m);
    expect(text).toContain('wrote 60 records to standard output (60 ok)');
    const records = parseNdjson(await readFile(out, 'utf8'));
    expect(records).toHaveLength(60);
    expect(records.every((record) => record.status === 'ok')).toBe(true);
  });

  it('leaves the job running on Ctrl-C and says how to pick it up; job status, results and cancel follow it', async () => {
    const list = await file('long.txt', Array.from({ length: 200 }, (_, i) => `45.81.${i >> 7}.${(i & 127) + 1}`).join('\n'));
    const child = startCli(['enrich', list, '--server', url, '--format', 'csv', '--progress-every', '1']);
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    while (!/job [0-9a-f-]{36} submitted/.test(stderr)) await sleep(20);
    await sleep(300);
    child.kill('SIGINT');
    const run = await finished(child);
    expect(run.status).toBe(130);
    const id = /job ([0-9a-f-]{36}) submitted/.exec(stderr)?.[1] as string;
    expect(stderr).toContain(`interrupted: job ${id} keeps running on ${url}`);
    expect(stderr).toContain(`ip-enrich job results ${id} --server ${url} --wait -o results.csv`);

    const results = await runCli(['job', 'results', id, '--wait', '--format', 'ndjson'], { env: { IPENRICH_URL: url } });
    expect(results.status, results.stderr).toBe(0);
    expect(parseNdjson(results.stdout)).toHaveLength(200);
    const status = await runCli(['job', 'status', id, '--server', url]);
    expect(status.status).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject({ id, status: 'completed', counts: { total: 200, unique: 200 } });
    const cancel = await runCli(['job', 'cancel', id, '--server', url]);
    expect(cancel.status).toBe(4);
    expect(cancel.stderr.trim()).toMatch(new RegExp(`^ip-enrich: DELETE /jobs/${id} refused by ${url}: 409 job-finished: `));
  });

  it('exits 3 when a record ends with a source in error, the records written all the same', async () => {
    harness.greynoise.respondTo('45.80.9.9', respond.serverError());
    const list = await file('failing.txt', '45.80.9.8\n45.80.9.9\n');
    const run = await runCli(['enrich', list, '--server', url, '--format', 'ndjson']);
    expect(run.status, run.stderr).toBe(3);
    const records = parseNdjson(run.stdout);
    expect(records.map((record) => [record.ip, record.status, record.sources.greynoise.status])).toEqual([
      ['45.80.9.8', 'ok', 'not_found'],
      ['45.80.9.9', 'partial', 'error'],
    ]);
    expect(run.stderr).toContain('; 1 with a source in error (greynoise 1)');
  });

  it('exits 4 with the problem+json code and detail when the service refuses', async () => {
    const unknown = await runCli(['job', 'status', '00000000-0000-4000-8000-000000000000', '--server', url]);
    expect(unknown.status).toBe(4);
    expect(unknown.stderr.trim()).toBe(
      `ip-enrich: GET /jobs/00000000-0000-4000-8000-000000000000 refused by ${url}: 404 job-not-found: there is no job 00000000-0000-4000-8000-000000000000`,
    );
    // A service that takes fewer addresses per job than the list has.
    await harness.restart({ JOB_MAX_IPS: 2 });
    await harness.app.listen({ host: '127.0.0.1', port: 0 });
    const address = harness.app.server.address() as AddressInfo;
    const small = `http://127.0.0.1:${address.port}`;
    const list = await file('three.txt', '45.80.9.1\n45.80.9.2\n45.80.9.3\n');
    const refused = await runCli(['enrich', list, '--server', small, '--quiet']);
    expect(refused.stdout).toBe('');
    expect(refused.stderr.trim()).toMatch(new RegExp(`^ip-enrich: POST /jobs refused by ${small}: 413 too-many-addresses: .*JOB_MAX_IPS allows 2`));
    expect(refused.status).toBe(4);
  });

  it("shows an upstream's Retry-After block in the progress lines while the job waits it out", async () => {
    // Last: the block stays on this app's DShield limiter for an hour, so the app is a new one.
    await harness.restart({ DSHIELD_MAX_IN_FLIGHT: 1 });
    await harness.app.listen({ host: '127.0.0.1', port: 0 });
    const blocked = `http://127.0.0.1:${(harness.app.server.address() as AddressInfo).port}`;
    harness.dshield.enqueue(respond.limited(3600));
    const list = await file('blocked.txt', '45.80.10.1\n45.80.10.2\n');
    const child = startCli(['enrich', list, '--server', blocked, '--sources', 'dshield', '--progress-every', '0.25']);
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const deadline = Date.now() + 15_000;
    while (!/\(waiting /.test(stderr) && Date.now() < deadline) await sleep(50);
    child.kill('SIGINT');
    const run = await finished(child);
    // The block shows as soon as the limiter knows it, before or after the chunk that ran into it is recorded.
    expect(stderr).toMatch(/^job [0-9a-f]{8} running: collect [02]\/2, dshield 0\/2 \(waiting (1h00m|59m[0-9]{2}s)\); ETA 1h00m$/m);
    expect(run.status).toBe(130);
  });
});
