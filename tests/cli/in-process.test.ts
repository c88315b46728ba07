import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseCsv } from 'csv-parse/sync';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import type { IpRecord } from '../../src/record/model.js';
import { startCymruWhois, type CymruWhoisDouble } from '../doubles/cymru-whois.js';
import { HttpUpstreamDouble } from '../doubles/http-upstream.js';
import { upstreamEnv, writeTestMaxMind } from '../support/app.js';
import { buildDist, runCli } from '../support/cli.js';

/*
 * The built command with no server anywhere: the engine runs in the command's own process, configured by the
 * service's variables, on the embedded database in a DATA_DIR of its own.
 */

let dir: string;
let cymru: CymruWhoisDouble;
let greynoise: HttpUpstreamDouble;
let dshield: HttpUpstreamDouble;
let env: Record<string, string>;

beforeAll(async () => {
  await buildDist();
  dir = await mkdtemp(join(tmpdir(), 'ipenrich-cli-local-'));
  cymru = await startCymruWhois();
  greynoise = await HttpUpstreamDouble.start();
  dshield = await HttpUpstreamDouble.start();
  const mmdb = await writeTestMaxMind(dir);
  env = {
    DATA_DIR: join(dir, 'data'),
    ...upstreamEnv({ cymru, greynoise, dshield }, mmdb),
    CYMRU_BATCH_SIZE: '20',
  };
});

afterAll(async () => {
  await Promise.all([cymru?.close(), greynoise?.close(), dshield?.close()]);
  await rm(dir, { recursive: true, force: true });
});

const ATTACKERS = ['81.2.69.160', '45.80.5.1', '45.80.5.2', '2a02:d8::5', '192.168.1.1'];

/** A cowrie JSON log (one event per line): every attacker connects and fails to log in. */
const cowrie = ATTACKERS.flatMap((ip, index) => [
  { eventid: 'cowrie.session.connect', src_ip: ip, src_port: 50000 + index, dst_ip: '10.0.0.5', dst_port: 2222, session: `s${index}` },
  { eventid: 'cowrie.login.failed', src_ip: ip, username: 'admin', password: 'admin', session: `s${index}` },
])
  .map((event) => JSON.stringify(event))
  .join('\n');

describe('ip-enrich enrich without a server', () => {
  it('runs the job in its own process on the embedded database, and a second run finds the records stored', async () => {
    const log = join(dir, 'cowrie.json');
    await writeFile(log, `${cowrie}\n`);
    const first = await runCli(['enrich', log, '--format', 'ndjson'], { env, timeoutMs: 60_000 });
    expect(first.stderr).toContain(`no --server: enriching in this process, with the embedded database in DATA_DIR ${env.DATA_DIR}`);
    expect(first.status, first.stderr).toBe(0);
    const records = first.stdout
      .trimEnd()
      .split('\n')
      .map((line) => JSON.parse(line) as IpRecord);
    expect(records.map((record) => [record.ip, record.status])).toEqual([
      ['81.2.69.160', 'ok'],
      ['45.80.5.1', 'ok'],
      ['45.80.5.2', 'ok'],
      ['2a02:d8::5', 'ok'],
      ['192.168.1.1', 'bogon'],
    ]);
    expect(records[0]).toMatchObject({ geo: { city: 'London' }, asn: { number: 20712, source: 'maxmind' } });
    expect(records[1]?.sources.cymru.status).toBe('ok');
    const bulkQueries = cymru.connections.length;
    expect(bulkQueries).toBeGreaterThan(0);

    // Again, as CSV: every record is stored and fresh, so no upstream is asked.
    const out = join(dir, 'cowrie.csv');
    const second = await runCli(['enrich', log, '-o', out, '--quiet'], { env, timeoutMs: 60_000 });
    expect(second.status, second.stderr).toBe(0);
    expect(cymru.connections.length).toBe(bulkQueries);
    const rows = parseCsv<Record<string, string>>(await readFile(out, 'utf8'), { columns: true });
    expect(rows.map((row) => [row.ip, row.status, row.asn, row.cymru_status, row.updated_at])).toEqual(
      records.map((record) => [record.ip, record.status, record.asn ? String(record.asn.number) : '', record.sources.cymru.status, record.updatedAt ?? '']),
    );

    // The service on the same DATA_DIR answers the same records.
    const app = await buildApp(loadConfig(env, { LOG_LEVEL: 'warn' }));
    try {
      const response = await app.inject({ method: 'POST', url: '/enrich', payload: { ips: ATTACKERS } });
      expect(response.json<{ results: IpRecord[] }>().results).toEqual(records);
    } finally {
      await app.close();
    }
  });
});
