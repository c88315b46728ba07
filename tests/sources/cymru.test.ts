import { once } from 'node:events';
import { connect } from 'node:net';
import ipaddr from 'ipaddr.js';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ManualClock } from '../support/manual-clock.js';
import type { Asn, SourceOutcome } from '../../src/record/model.js';
import { CymruClient, type CymruOptions } from '../../src/sources/cymru.js';
import { CymruConnections } from '../../src/sources/cymru-connections.js';
import { parseBulkAnswer } from '../../src/sources/cymru-parser.js';
import {
  defaultRow,
  startCymruWhois,
  type Behaviour,
  type CymruWhoisDouble,
  type CymruWhoisOptions,
} from '../doubles/cymru-whois.js';

const SAMPLE = [
  'Bulk mode; whois.cymru.com [2026-11-22 05:46:42 +0000]',
  'AS      | IP               | BGP Prefix          | CC | Registry | Allocated  | AS Name',
  '15169   | 74.125.225.229   | 74.125.225.0/24     | US | arin     | 2007-03-13 | GOOGLE, US',
  '15169   | 2001:4860:4860::8888                     | 2001:4860::/32      | US | arin     | 2005-03-14 | GOOGLE, US',
  'NA      | 10.0.0.1         | NA                  |    | other    |            | NA',
  '23028 3356 | 216.90.108.31 | 216.90.108.0/24 | US | arin | 1998-09-25 | TEAM-CYMRU, US',
  'Error: no ASN or IP match on line 7.',
  '',
].join('\n');

describe('parseBulkAnswer', () => {
  it('reads the rows of a verbose bulk answer and ignores the banner, header and errors', () => {
    const answers = parseBulkAnswer(SAMPLE);
    expect([...answers.keys()]).toEqual(['74.125.225.229', '2001:4860:4860::8888', '10.0.0.1', '216.90.108.31']);
    expect(answers.get('74.125.225.229')).toEqual({
      number: 15169,
      numbers: [15169],
      name: 'GOOGLE, US',
      prefix: '74.125.225.0/24',
      country: 'US',
      registry: 'arin',
      allocated: '2007-03-13',
      source: 'cymru',
    });
    expect(answers.get('2001:4860:4860::8888')).toMatchObject({ number: 15169, prefix: '2001:4860::/32' });
  });

  it('reports NA as no route', () => {
    expect(parseBulkAnswer(SAMPLE).get('10.0.0.1')).toBeNull();
  });

  it('takes the first of several ASNs as the origin and keeps them all', () => {
    expect(parseBulkAnswer(SAMPLE).get('216.90.108.31')).toMatchObject({
      number: 23028,
      numbers: [23028, 3356],
      name: 'TEAM-CYMRU, US',
    });
  });

  it('keys rows by canonical address whatever the spelling', () => {
    const answers = parseBulkAnswer(
      [
        '15169 | 2001:4860:4860:0000:0000:0000:0000:8888 | 2001:4860::/32 | US | arin | 2005-03-14 | GOOGLE, US',
        '13335 | ::ffff:1.1.1.1 | 1.1.1.0/24 | AU | apnic | 2011-08-11 | CLOUDFLARENET, US',
      ].join('\n'),
    );
    expect([...answers.keys()]).toEqual(['2001:4860:4860::8888', '1.1.1.1']);
  });

  it('lets a repeated row with a route win over NA but not the reverse', () => {
    const route = '15169 | 8.8.8.8 | 8.8.8.0/24 | US | arin | 2023-12-28 | GOOGLE, US';
    const none = 'NA | 8.8.8.8 | NA | | other | | NA';
    expect(parseBulkAnswer(`${none}\n${route}\n`).get('8.8.8.8')).toMatchObject({ number: 15169 });
    expect(parseBulkAnswer(`${route}\n${none}\n${route}\n`).get('8.8.8.8')).toMatchObject({ number: 15169 });
  });

  it('turns empty and unknown columns into null', () => {
    const asn = parseBulkAnswer('64512 | 9.9.9.9 |  |  | other |  | \r\n').get('9.9.9.9');
    expect(asn).toEqual({
      number: 64512,
      numbers: [64512],
      name: null,
      prefix: null,
      country: null,
      registry: null,
      allocated: null,
      source: 'cymru',
    });
  });

  it('ignores lines that are not rows', () => {
    const answers = parseBulkAnswer(
      [
        '<html><body>502 Bad Gateway</body></html>',
        'AS12 | 1.2.3.4 | 1.2.3.0/24 | US | arin | 2000-01-01 | BAD AS COLUMN',
        '15169 | 74.125.225.229 | 74.125.225.0/24 | US | arin',
        '15169 | not-an-ip | 74.125.225.0/24 | US | arin | 2007-03-13 | GOOGLE, US',
        '99999999999 | 5.6.7.8 | 5.6.7.0/24 | US | arin | 2000-01-01 | TOO BIG',
        '\u0000\u0001 | | | | | |',
      ].join('\n'),
    );
    expect(answers.size).toBe(0);
    expect(parseBulkAnswer('').size).toBe(0);
  });
});

function addresses(count: number, firstOctet = 11): string[] {
  return Array.from({ length: count }, (_, i) => `${firstOctet + Math.floor(i / 65_536)}.${(i >> 8) & 255}.${i & 255}.1`);
}

function expectedOk(ip: string): SourceOutcome<Asn> {
  const row = defaultRow(ip);
  return {
    status: 'ok',
    data: {
      number: row.asns[0] ?? 0,
      numbers: row.asns,
      name: row.name,
      prefix: row.prefix,
      country: row.country,
      registry: row.registry,
      allocated: row.allocated,
      source: 'cymru',
    },
  };
}

describe('the Team Cymru double', () => {
  /** One raw bulk exchange; the banner's timestamp is dropped, since it changes from second to second. */
  async function ask(double: CymruWhoisDouble, lines: readonly string[]): Promise<string> {
    const socket = connect({ host: double.host, port: double.port });
    socket.setEncoding('utf8');
    let answer = '';
    socket.on('data', (chunk: string) => (answer += chunk));
    socket.write(`begin\nverbose\n${lines.join('\n')}\nend\n`);
    await once(socket, 'close');
    return answer.split('\n').slice(1).join('\n');
  }

  it('answers addresses whose rows it formatted ahead exactly as it answers them on the spot', async () => {
    const table = new Map([['198.51.100.7', { asns: [64500], prefix: '198.51.100.0/24', country: 'NL', registry: 'ripencc', allocated: '2010-01-01', name: 'TABLED, NL' }]]);
    const double = await startCymruWhois({ table, notFound: ['45.93.1.9'], repeatRows: true });
    try {
      const lines = ['8.8.8.8', '2001:4860::8888', '10.0.0.1', '198.51.100.7', '45.93.1.9', 'not-an-address'];
      const onTheSpot = await ask(double, lines);
      double.prepare(lines);
      expect(await ask(double, lines)).toBe(onTheSpot);
      expect(onTheSpot.split('\n').filter((line) => line.startsWith('1008 '))).toHaveLength(2);
      expect(onTheSpot).toContain('Error: no ASN or IP match on line 8.');
    } finally {
      await double.close();
    }
  });
});

describe('CymruClient', () => {
  const doubles: CymruWhoisDouble[] = [];

  async function whois(options: CymruWhoisOptions = {}): Promise<CymruWhoisDouble> {
    const double = await startCymruWhois(options);
    doubles.push(double);
    return double;
  }

  function client(double: { host: string; port: number }, options: Partial<CymruOptions> = {}): CymruClient {
    return new CymruClient({
      host: double.host,
      port: double.port,
      batchSize: 500,
      maxConnections: 2,
      timeoutMs: 5_000,
      retries: 2,
      retryBaseDelayMs: 1,
      ...options,
    });
  }

  afterEach(async () => {
    await Promise.all(doubles.splice(0).map((double) => double.close()));
  });

  it('asks for 1,200 addresses in exactly 3 bulk queries of at most 500', async () => {
    const double = await whois();
    const ips = addresses(1_200);
    const results = await client(double).lookup(ips);
    expect(double.connections.map((c) => c.addresses.length).sort()).toEqual([200, 500, 500]);
    expect(new Set(double.connections.flatMap((c) => c.addresses))).toEqual(new Set(ips));
    expect(results.size).toBe(1_200);
    for (const ip of ips) expect(results.get(ip)).toEqual(expectedOk(ip));
  });

  it('never has more than maxConnections queries open, even for concurrent lookups', async () => {
    const double = await whois({ queryLatencyMs: 30 });
    const cymru = client(double, { maxConnections: 2 });
    const calls = [11, 12, 13].map((octet) => cymru.lookup(addresses(1_200, octet)));
    const results = await Promise.all(calls);
    expect(double.connections).toHaveLength(9);
    expect(double.maxConcurrent()).toBe(2);
    expect(results.map((r) => [...r.values()].filter((o) => o.status === 'ok').length)).toEqual([1_200, 1_200, 1_200]);
    expect(cymru.stats()).toEqual({ queries: 9, failures: 0, inFlight: 0 });
  });

  it('reports NA as not_found, several ASNs as numbers, and tolerates IPv6 and repeated rows', async () => {
    const double = await whois({
      repeatRows: true,
      notFound: ['45.0.0.1'],
      table: new Map([
        [
          '216.90.108.31',
          {
            asns: [23028, 3356],
            prefix: '216.90.108.0/24',
            country: 'US',
            registry: 'arin',
            allocated: '1998-09-25',
            name: 'TEAM-CYMRU, US',
          },
        ],
      ]),
    });
    const results = await client(double).lookup(['45.0.0.1', '216.90.108.31', '2606:4700::1111', '45.0.0.1']);
    expect(double.connections).toHaveLength(1);
    expect(double.connections[0]?.addresses).toEqual(['45.0.0.1', '216.90.108.31', '2606:4700::1111']);
    expect(results.get('45.0.0.1')).toEqual({ status: 'not_found', data: null });
    expect(results.get('216.90.108.31')).toMatchObject({ status: 'ok', data: { number: 23028, numbers: [23028, 3356] } });
    expect(results.get('2606:4700::1111')).toEqual(expectedOk('2606:4700::1111'));
    expect(results.size).toBe(3);
  });

  it('matches rows by canonical address, not by spelling or position', async () => {
    const double = await whois({
      reverseRows: true,
      spell: (ip) =>
        ip.includes(':')
          ? ipaddr.IPv6.parse(ip)
              .parts.map((part) => part.toString(16).padStart(4, '0'))
              .join(':')
          : `::ffff:${ip}`,
    });
    const ips = ['2606:4700::1111', '1.1.1.1', '8.8.8.8'];
    const results = await client(double).lookup(ips);
    for (const ip of ips) expect(results.get(ip)).toEqual(expectedOk(ip));
  });

  it('reports an address the server did not answer for as an error, without asking again', async () => {
    const double = await whois();
    const results = await client(double).lookup(['8.8.8.8', 'not-an-address']);
    expect(results.get('8.8.8.8')).toEqual(expectedOk('8.8.8.8'));
    expect(results.get('not-an-address')).toEqual({
      status: 'error',
      error: 'no answer from Team Cymru for this address',
    });
    expect(double.connections).toHaveLength(1);
  });

  it('retries a reset batch for the missing addresses only and then succeeds', async () => {
    const double = await whois({ behaviour: (index) => (index === 0 ? { resetAfterRows: 3 } : 'answer') });
    const ips = addresses(10);
    const cymru = client(double, { retries: 1 });
    const results = await cymru.lookup(ips);
    expect(double.connections).toHaveLength(2);
    expect(double.connections[1]?.addresses).toEqual(ips.slice(3));
    for (const ip of ips) expect(results.get(ip)).toEqual(expectedOk(ip));
    expect(cymru.stats()).toEqual({ queries: 2, failures: 1, inFlight: 0 });
  });

  it('keeps the rows that arrived when every attempt is reset', async () => {
    const double = await whois({ behaviour: () => ({ resetAfterRows: 2 }) });
    const ips = addresses(10);
    const results = await client(double, { retries: 1 }).lookup(ips);
    expect(double.connections.map((c) => c.addresses)).toEqual([ips, ips.slice(2)]);
    for (const ip of ips.slice(0, 4)) expect(results.get(ip)).toEqual(expectedOk(ip));
    for (const ip of ips.slice(4)) {
      expect(results.get(ip)).toEqual({ status: 'error', error: expect.stringMatching(/ECONNRESET/) as unknown });
    }
  });

  it('does not take a row cut off by a reset for an answer', async () => {
    const double = await whois({ behaviour: () => ({ resetAfterRows: 1, cutRow: true }) });
    const [first = '', cut = ''] = addresses(2);
    const results = await client(double, { retries: 0 }).lookup([first, cut]);
    expect(results.get(first)).toEqual(expectedOk(first));
    expect(results.get(cut)).toMatchObject({ status: 'error' });
  });

  it('asks again for the addresses of an answer cut mid-line, even when the connection closed cleanly', async () => {
    const double = await whois({ behaviour: (index) => (index === 0 ? { resetAfterRows: 1, cutRow: true, cleanClose: true } : 'answer') });
    const [first = '', cut = ''] = addresses(2);
    const cymru = client(double, { retries: 1 });
    const results = await cymru.lookup([first, cut]);
    expect(results.get(first)).toEqual(expectedOk(first));
    expect(results.get(cut)).toEqual(expectedOk(cut));
    expect(double.connections.map((connection) => connection.addresses)).toEqual([[first, cut], [cut]]);
    expect(cymru.stats().failures).toBe(1);
  });

  it('times out a hanging query, destroys its socket and fails only that batch', async () => {
    const double = await whois({ behaviour: (index) => (index === 0 ? 'hang' : 'answer') });
    const cymru = client(double, { batchSize: 2, timeoutMs: 150, retries: 0 });
    const results = await cymru.lookup(addresses(4));
    const [hung, answered] = double.connections;
    expect(double.connections).toHaveLength(2);
    for (const ip of hung?.addresses ?? []) {
      expect(results.get(ip)).toEqual({
        status: 'error',
        error: 'Team Cymru bulk query failed: timed out after 150 ms',
      });
    }
    for (const ip of answered?.addresses ?? []) expect(results.get(ip)).toEqual(expectedOk(ip));
    await double.idle();
    expect(cymru.stats()).toEqual({ queries: 2, failures: 1, inFlight: 0 });
  });

  it('says how long a query waited for a free connection before its own opened', async () => {
    const double = await whois({ queryLatencyMs: 150 });
    const connections = new CymruConnections({ host: double.host, port: double.port, timeoutMs: 5_000 }, 1);
    try {
      const [first, second] = await Promise.all([connections.query(addresses(2, 11)), connections.query(addresses(2, 12))]);
      expect(first.failure).toBeUndefined();
      expect(first.waitedMs).toBeLessThan(100);
      expect(second.waitedMs).toBeGreaterThanOrEqual(140);
      expect(second.rows.size).toBe(2);
    } finally {
      connections.close();
    }
  });

  it('fails the queries still waiting or out at once when closed, rather than at their timeout', async () => {
    const double = await whois({ behaviour: () => 'hang' });
    const cymru = client(double, { batchSize: 2, maxConnections: 1, timeoutMs: 10_000, retries: 1 });
    const lookup = cymru.lookup(addresses(4));
    await vi.waitFor(() => expect(double.connections).toHaveLength(1));
    const started = performance.now();
    cymru.close();
    const results = await lookup;
    expect(performance.now() - started).toBeLessThan(2_000);
    expect([...results.values()]).toEqual(
      Array(4).fill({ status: 'error', error: 'Team Cymru bulk query failed: the Team Cymru client is closed' }),
    );
    expect(double.connections).toHaveLength(1);
  });

  it('marks the batch an error after the retries when the connection is refused', async () => {
    const closed = await startCymruWhois();
    await closed.close();
    const cymru = client(closed, { retries: 2 });
    const results = await cymru.lookup(['8.8.8.8', '1.1.1.1']);
    for (const outcome of results.values()) {
      expect(outcome).toEqual({ status: 'error', error: expect.stringMatching(/ECONNREFUSED/) as unknown });
    }
    expect(cymru.stats()).toEqual({ queries: 3, failures: 3, inFlight: 0 });
  });

  it('retries when the server closes at once and gives up after the retries', async () => {
    const double = await whois({ behaviour: () => 'refuse' });
    const results = await client(double, { retries: 2 }).lookup(['8.8.8.8']);
    expect(double.connections).toHaveLength(3);
    expect(results.get('8.8.8.8')).toMatchObject({ status: 'error' });
  });

  it('retries an answer without a single row and then succeeds', async () => {
    const double = await whois({ behaviour: (index) => (index === 0 ? 'garbage' : 'answer') });
    const results = await client(double, { retries: 1 }).lookup(['8.8.8.8']);
    expect(double.connections).toHaveLength(2);
    expect(results.get('8.8.8.8')).toEqual(expectedOk('8.8.8.8'));
  });

  it('fails a batch whose every answer is garbage', async () => {
    const double = await whois({ behaviour: () => 'garbage' });
    const results = await client(double, { retries: 1 }).lookup(['8.8.8.8']);
    expect(results.get('8.8.8.8')).toEqual({
      status: 'error',
      error: 'Team Cymru bulk query failed: no parseable row in the answer',
    });
  });

  it('delivers each batch as it completes, one callback at a time', async () => {
    const double = await whois({ queryLatencyMs: 40 });
    const ips = addresses(25);
    const delivered: number[] = [];
    const endedAtFirstDelivery: number[] = [];
    let active = 0;
    let overlapped = false;
    await client(double, { batchSize: 10, maxConnections: 1 }).lookupStreaming(ips, async (batch) => {
      if (delivered.length === 0) {
        endedAtFirstDelivery.push(double.connections.filter((c) => c.endedAt !== null).length);
      }
      overlapped ||= active > 0;
      active++;
      delivered.push(batch.size);
      await new Promise((resolve) => setTimeout(resolve, 5));
      active--;
    });
    expect(delivered).toEqual([10, 10, 5]);
    expect(endedAtFirstDelivery[0]).toBeLessThan(3);
    expect(overlapped).toBe(false);
  });

  it('hands over answers that arrive together one per turn of the event loop, so the work of one does not starve I/O', async () => {
    const double = await whois({ answerTogether: 3 });
    const turnsBetween: boolean[] = [];
    let turned = true;
    await client(double, { batchSize: 10, maxConnections: 3 }).lookupStreaming(addresses(30), (batch) => {
      turnsBetween.push(turned);
      turned = false;
      setTimeout(() => (turned = true), 0);
      // A merge and write of a long chunk: the other answers reach the process meanwhile.
      const until = performance.now() + 100;
      while (performance.now() < until);
      expect(batch.size).toBe(10);
    });
    expect(turnsBetween).toEqual([true, true, true]);
  });

  it('rejects with the callback error only once every batch is done', async () => {
    const double = await whois({ queryLatencyMs: 20 });
    const cymru = client(double, { batchSize: 5 });
    const failing = cymru.lookupStreaming(addresses(15), () => {
      throw new Error('cannot persist');
    });
    await expect(failing).rejects.toThrow('cannot persist');
    expect(cymru.stats()).toEqual({ queries: 3, failures: 0, inFlight: 0 });
  });

  it('waits for the retry backoff on the injected clock, and asks again only once it has passed', async () => {
    const clock = new ManualClock();
    const double = await whois({ behaviour: (index) => (index === 0 ? 'garbage' : 'answer') });
    // The first retry waits 100 to 200 ms: half the base delay, plus up to as much again of jitter.
    const cymru = client(double, { retries: 1, retryBaseDelayMs: 200, clock });
    let answered = false;
    const lookup = cymru.lookup(['8.8.8.8']).finally(() => (answered = true));
    await vi.waitFor(() => expect(clock.sleeping).toBe(1), { timeout: 5_000, interval: 1 });
    await clock.advance(99);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(double.connections).toHaveLength(1);
    expect(answered).toBe(false);
    await clock.advance(101);
    expect((await lookup).get('8.8.8.8')).toEqual(expectedOk('8.8.8.8'));
    expect(double.connections).toHaveLength(2);
  });

  it('is ready before any query, failing after one whose every attempt failed, and ready after one that got through', async () => {
    const clock = new ManualClock();
    const behaviours: Behaviour[] = ['garbage', 'garbage', { resetAfterRows: 0 }, { resetAfterRows: 0 }, 'garbage', 'answer', 'refuse', 'garbage'];
    const double = await whois({ behaviour: (index) => behaviours[index] ?? 'answer' });
    // No backoff, so that the retries need no time on the clock.
    const cymru = client(double, { retries: 1, retryBaseDelayMs: 0, clock });
    expect(cymru.health()).toEqual({ status: 'ready' });
    const began = new Date(clock.now()).toISOString();
    await cymru.lookup(['8.8.8.8']);
    expect(cymru.health()).toEqual({ status: 'failing', reason: 'no parseable row in the answer', since: began });
    // A run of failures keeps the moment it began, and tells the latest error.
    await clock.advance(60_000);
    await cymru.lookup(['8.8.8.8']);
    expect(cymru.health()).toEqual({ status: 'failing', reason: expect.stringMatching(/ECONNRESET/), since: began });
    await clock.advance(60_000);
    await cymru.lookup(['8.8.8.8']);
    expect(cymru.health()).toEqual({ status: 'ready' });
    await clock.advance(60_000);
    const againAt = new Date(clock.now()).toISOString();
    await cymru.lookup(['8.8.8.8']);
    expect(cymru.health()).toEqual({ status: 'failing', reason: 'no parseable row in the answer', since: againAt });
    expect(double.connections).toHaveLength(8);
  });

  it('makes one query for two identical 500-address lists asked at the same moment', async () => {
    const double = await whois({ queryLatencyMs: 50 });
    const cymru = client(double);
    const ips = Array.from({ length: 500 }, (_, k) => `46.${k >> 8}.${k & 255}.1`);
    const [first, second] = await Promise.all([cymru.lookup(ips), cymru.lookup([...ips].reverse())]);
    expect(double.connections).toHaveLength(1);
    expect(second).toEqual(first);
    expect(second.get('46.1.0.1')).toMatchObject({ status: 'ok', data: { number: 1046 } });
  });

  it('asks only for what another lookup is not asking for already, and asks anew once that answer is taken', async () => {
    const double = await whois({ queryLatencyMs: 50 });
    const cymru = client(double);
    const first = cymru.lookup(['46.9.0.1', '46.9.0.2']);
    const second = cymru.lookup(['46.9.0.2', '46.9.0.3']);
    expect((await second).get('46.9.0.2')).toEqual((await first).get('46.9.0.2'));
    expect(double.connections.map((c) => c.addresses)).toEqual([['46.9.0.1', '46.9.0.2'], ['46.9.0.3']]);
    await cymru.lookup(['46.9.0.2']);
    expect(double.connections).toHaveLength(3);
  });

  it('opens no connection for an empty list', async () => {
    const double = await whois();
    expect((await client(double).lookup([])).size).toBe(0);
    expect(double.connections).toHaveLength(0);
  });
});
