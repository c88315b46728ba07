import { PassThrough } from 'node:stream';
import { parse } from 'csv-parse/sync';
import { describe, expect, it } from 'vitest';
import { chooseFormat } from '../../src/cli/follow.js';
import { formatFromName, resultWriter, ResultTally, type CsvColumn, type OutputFormat, type ResultRecord } from '../../src/cli/output.js';
import { describeJob, duration, type JobProgressView } from '../../src/cli/progress.js';

const report = (status: string) => ({ status }) as ResultRecord['sources']['maxmind'];

function record(ip: string, status: ResultRecord['status'], sources: Partial<Record<keyof ResultRecord['sources'], string>> = {}): ResultRecord {
  return {
    ip,
    input: ip,
    status,
    asn: { number: 64500, numbers: [64500], name: 'EXAMPLE, "QUOTED", NET', prefix: '192.0.2.0/24', country: 'ZZ', registry: 'arin', allocated: null, source: 'cymru' },
    geo: null,
    greynoise: null,
    dshield: null,
    sources: {
      maxmind: report(sources.maxmind ?? 'ok'),
      cymru: report(sources.cymru ?? 'ok'),
      greynoise: report(sources.greynoise ?? 'not_found'),
      dshield: report(sources.dshield ?? 'skipped'),
    },
    updatedAt: '2026-12-01T10:00:00.000Z',
  };
}

const COLUMNS: CsvColumn[] = [
  { header: 'ip', value: (r) => r.ip },
  { header: 'as_name', value: (r) => r.asn?.name },
  { header: 'noise', value: () => false },
];

async function written(format: OutputFormat, records: ResultRecord[]): Promise<string> {
  const out = new PassThrough();
  let text = '';
  out.on('data', (chunk: Buffer) => (text += chunk.toString()));
  const writer = resultWriter(format, out, COLUMNS);
  for (const r of records) await writer.write(r, JSON.stringify(r));
  await writer.end();
  return text;
}

describe('result writers', () => {
  const records = [record('192.0.2.1', 'ok'), record('192.0.2.2', 'partial', { cymru: 'error' })];

  it('write CSV with a CSV library (quotes, false as false), NDJSON and JSON as the service sent them', async () => {
    const csv = await written('csv', records);
    expect(parse(csv, { columns: true })).toEqual([
      { ip: '192.0.2.1', as_name: 'EXAMPLE, "QUOTED", NET', noise: 'false' },
      { ip: '192.0.2.2', as_name: 'EXAMPLE, "QUOTED", NET', noise: 'false' },
    ]);
    expect(await written('csv', [])).toBe('ip,as_name,noise\n');
    const ndjson = await written('ndjson', records);
    expect(ndjson.trimEnd().split('\n').map((line) => JSON.parse(line) as unknown)).toEqual(records);
    expect(JSON.parse(await written('json', records))).toEqual(records);
    expect(JSON.parse(await written('json', []))).toEqual([]);
  });

  it('writes a table of fixed columns, a header first', async () => {
    const lines = (await written('table', records)).trimEnd().split('\n');
    expect(lines[0]).toMatch(/^ip\s+status\s+asn\s+as name\s+cc\s+city\s+greynoise\s+attacks\s+problems$/);
    expect(lines[2]).toMatch(/^192\.0\.2\.2\s+partial\s+64500\s+EXAMPLE, "QUOTED", NET\s+ZZ\s+cymru error$/);
  });

  it('counts records by status and those with a source in error', () => {
    const tally = new ResultTally();
    for (const r of records) tally.add(r);
    expect(tally.withErrors).toBe(1);
    expect(tally.describe('out.csv')).toBe('wrote 2 records to out.csv (1 ok, 1 partial); 1 with a source in error (cymru 1)');
  });
});

describe('chooseFormat', () => {
  const terminal = { isTTY: true } as NodeJS.WriteStream;
  const pipe = { isTTY: false } as NodeJS.WriteStream;

  it('takes the option, else the file name, else table on a terminal and csv elsewhere', () => {
    expect(chooseFormat('ndjson', 'out.csv', pipe)).toBe('ndjson');
    expect(chooseFormat(undefined, 'out.jsonl', pipe)).toBe('ndjson');
    expect(formatFromName('OUT.JSON')).toBe('json');
    expect(chooseFormat(undefined, undefined, terminal)).toBe('table');
    expect(chooseFormat(undefined, undefined, pipe)).toBe('csv');
    expect(chooseFormat(undefined, 'results.txt', terminal)).toBe('csv');
    expect(() => chooseFormat('table', undefined, pipe)).toThrow(/--format table is for a terminal/);
  });
});

describe('progress lines', () => {
  it('say each pass, the bulk queries, a Retry-After wait and the ETA', () => {
    const now = Date.parse('2026-12-01T10:00:00Z');
    const phase = (done: number, total: number, state = 'running') => ({ state, done, total, startedAt: null, finishedAt: null });
    const view: JobProgressView = {
      id: '3f2a9c1e-0000-4000-8000-000000000000',
      status: 'running',
      counts: { total: 520, unique: 500, invalid: 15, bogon: 5 },
      phases: {
        collect: phase(500, 500, 'done'),
        maxmind: phase(500, 500, 'done'),
        cymru: { ...phase(340, 500), batches: 1 },
        greynoise: { ...phase(12, 500, 'waiting'), waitingUntil: '2026-12-01T10:00:14Z' },
        dshield: phase(0, 0, 'skipped'),
        persist: phase(12, 500),
      },
      etaSeconds: 95,
    };
    expect(describeJob(view, now)).toBe(
      'job 3f2a9c1e running: collect 500/500, maxmind 500/500, cymru 340/500 (1 batch), greynoise 12/500 (waiting 14s); ETA 1m35s',
    );
    expect(duration(7300)).toBe('2h01m');
  });
});
