import { execFile } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase } from '../support/database.js';
import { buildDist, ROOT, runCli } from '../support/cli.js';
import { tempFiles } from '../support/temp-files.js';

// Everything here is refused or done before any job: no service is needed, and none may be reached.
const NOWHERE = 'http://127.0.0.1:9';

const temp = tempFiles('ipenrich-cli-');
const file = temp.file;
const dir = temp.path;
beforeAll(async () => {
  await buildDist();
});

/** Exit 2, nothing on standard output, and exactly one line on standard error that says what is wrong. */
async function refused(args: string[], message: string | RegExp) {
  const run = await runCli(args);
  expect(run.stdout).toBe('');
  expect(run.stderr.trimEnd().split('\n')).toEqual([expect.stringMatching(message)]);
  expect(run.status).toBe(2);
}

describe('ip-enrich', () => {
  it('answers --help with the subcommands and the exit statuses, also through npx', async () => {
    const run = await runCli(['--help']);
    expect(run.status).toBe(0);
    for (const word of ['enrich', 'job', 'serve', 'worker', 'migrate', 'Exit status:', '130']) expect(run.stdout).toContain(word);
    const enrichHelp = await runCli(['enrich', '--help']);
    expect(enrichHelp.stdout).toMatch(/--column <name>[\s\S]*--field <path>[\s\S]*--server <url>[\s\S]*IPENRICH_URL/);
    const npx = await promisify(execFile)('npx', ['--no-install', 'ip-enrich', '--version'], { cwd: ROOT });
    expect(npx.stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
  });

  it('refuses a binary file, a file without addresses and a CSV column that does not exist, with exit 2', async () => {
    const png = await file('logo.png', Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d]));
    await refused(['enrich', png, '--server', NOWHERE], /^ip-enrich: .*logo\.png is not a text file \(a NUL byte at offset 8\)/);
    const prose = await file('notes.txt', 'hello\nworld\n');
    await refused(['enrich', prose, '--server', NOWHERE], /^ip-enrich: no IP address found in .*notes\.txt: 2 lines without an address \(line 1 "hello", line 2 "world"\)$/);
    const csv = await file('export.csv', 'time,src\n1,192.0.2.1\n');
    await refused(['enrich', csv, '--column', 'addr', '--server', NOWHERE], /^ip-enrich: .*export\.csv has no column "addr" \(its first line holds "time", "src"\)$/);
    await refused(['enrich', dir('missing.txt'), '--server', NOWHERE], /^ip-enrich: cannot read .*missing\.txt: no such file$/);
  });

  it('refuses wrong usage with exit 2 before reading anything', async () => {
    const list = await file('list.txt', '192.0.2.1\n');
    await refused(['enrich', list, '--format', 'table', '-o', dir('out.txt'), '--server', NOWHERE], /^ip-enrich: --format table is for a terminal/);
    // Standard output is a pipe here, not a terminal.
    await refused(['enrich', list, '--format', 'table', '--server', NOWHERE], /--format table is for a terminal/);
    const sources = await runCli(['enrich', list, '--sources', 'maxmind,shodan']);
    expect(sources.status).toBe(2);
    expect(sources.stderr).toContain('expected a comma-separated list of maxmind, cymru, greynoise, dshield');
    expect((await runCli(['enrich', '--frobnicate'])).status).toBe(2);
    await refused(['enrich', list, '--server', 'ftp://example.org'], /^ip-enrich: --server ftp:\/\/example\.org must be an http:\/\/ or https:\/\/ URL$/);
    await refused(['job', 'status', '3f2a'], /^ip-enrich: job commands talk to a running service: give --server URL or set IPENRICH_URL$/);
  });

  it('exits 4 when the service cannot be reached', async () => {
    const list = await file('reach.txt', '192.0.2.1\n');
    const run = await runCli(['enrich', list, '--server', NOWHERE, '--quiet']);
    expect(run.stdout).toBe('');
    expect(run.stderr.trim()).toMatch(/^ip-enrich: cannot reach the service at http:\/\/127\.0\.0\.1:9: .*ECONNREFUSED/);
    expect(run.status).toBe(4);
    const viaEnv = await runCli(['job', 'status', '3f2a'], { env: { IPENRICH_URL: NOWHERE } });
    expect(viaEnv.status).toBe(4);
  });

  it('reads a 1,000,000-line list as a stream, staying well under 300 MB', async () => {
    const path = dir('million.txt');
    const out = createWriteStream(path);
    for (let block = 0; block < 100; block += 1) {
      let text = '';
      for (let i = 0; i < 10_000; i += 1) {
        const n = block * 10_000 + i;
        text += `${11 + (n >> 16)}.${(n >> 8) & 255}.${n & 255}.${(block % 7) + 1}\n`;
      }
      if (!out.write(text)) await once(out, 'drain');
    }
    await new Promise<void>((resolve) => out.end(() => resolve()));
    const run = await runCli(['extract', path, '-o', dir('million.out'), '--progress-every', '1'], { measureRss: true, timeoutMs: 60_000 });
    expect(run.stderr).toContain('1,000,000 lines, 1,000,000 addresses');
    expect(run.status).toBe(0);
    const written = await readFile(dir('million.out'), 'utf8');
    expect(written.split('\n').length - 1).toBe(1_000_000);
    expect(run.peakRssMb).toBeDefined();
    expect(run.peakRssMb).toBeLessThan(300);
  });

  it('migrate applies the migrations and exits; again, it finds nothing to do', async () => {
    const database = await createTestDatabase();
    try {
      const first = await runCli(['migrate'], { env: { DATABASE_URL: database.url } });
      expect(first.stderr).toMatch(/applied \d+ migrations to the database at DATABASE_URL/);
      expect(first.status).toBe(0);
      const again = await runCli(['migrate'], { env: { DATABASE_URL: database.url } });
      expect(again.stderr).toMatch(/the database at DATABASE_URL is up to date/);
      expect(again.status).toBe(0);
    } finally {
      await database.drop();
    }
  });
});
