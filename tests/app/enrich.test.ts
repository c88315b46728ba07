import { connect, type AddressInfo, type Socket } from 'node:net';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { IpRecord } from '../../src/record/model.js';
import type { EnrichStats } from '../../src/enrich/stats.js';
import { request } from 'undici';
import { defaultRow, type WhoisRow } from '../doubles/cymru-whois.js';
import { startHarness, type Harness } from '../support/app.js';
import { expectToMatchSchema } from '../support/contract.js';
import { createTestDatabase } from '../support/database.js';
import { startTcpProxy } from '../support/tcp-proxy.js';

interface EnrichAnswer {
  results: IpRecord[];
  stats: EnrichStats;
}

let harness: Harness;
let db: pg.Pool;
const whoisTable = new Map<string, WhoisRow | null>([
  ['1.1.1.1', { asns: [13335], prefix: '1.1.1.0/24', country: 'AU', registry: 'apnic', allocated: '2011-08-11', name: 'CLOUDFLARENET, US' }],
  ['216.90.108.31', { asns: [23028, 3356], prefix: '216.90.108.0/24', country: 'US', registry: 'arin', allocated: '1998-09-25', name: 'TEAM-CYMRU, US' }],
]);

beforeAll(async () => {
  harness = await startHarness({
    config: { CYMRU_BATCH_SIZE: 50, ENRICH_MAX_IPS: 300 },
    cymru: {
      notFound: ['198.41.0.250'],
      table: whoisTable,
    },
  });
  db = new pg.Pool({ connectionString: harness.database.url });
});

afterAll(async () => {
  await db.end();
  await harness.close();
});

async function enrich(body: unknown): Promise<{ status: number; json: EnrichAnswer; contentType: string }> {
  const response = await harness.app.inject({ method: 'POST', url: '/enrich', payload: body as object });
  const json = response.json<EnrichAnswer>();
  if (response.statusCode === 200) {
    for (const record of json.results) expectToMatchSchema('IpRecord', record);
    expectToMatchSchema('EnrichStats', json.stats);
  } else {
    expectToMatchSchema('Problem', json);
  }
  return { status: response.statusCode, json, contentType: String(response.headers['content-type']) };
}

interface HttpAnswer {
  statusCode: number;
  headers: Record<string, unknown>;
  body: string;
}

/** Asserts the answer is the problem+json the README promises and returns it for the detail checks. */
function expectProblem(response: HttpAnswer, status: number, code: string): { detail: string } {
  expect(response.statusCode).toBe(status);
  expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
  const problem = JSON.parse(response.body) as { detail: string };
  expectToMatchSchema('Problem', problem);
  expect(problem).toMatchObject({ status, code });
  return problem;
}

/** One raw HTTP/1.1 exchange, for requests Node's parser refuses before Fastify (and inject) could see them. */
async function rawExchange(port: number, request: string): Promise<HttpAnswer> {
  const text = await new Promise<string>((resolve) => {
    const chunks: Buffer[] = [];
    const socket = connect(port, '127.0.0.1', () => socket.write(request));
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    // The server closes the connection after the answer; a reset after it still leaves the answer read.
    socket.on('error', () => undefined);
    socket.on('close', () => resolve(Buffer.concat(chunks).toString('utf8')));
  });
  const [head = '', body = ''] = text.split('\r\n\r\n');
  const [statusLine = '', ...lines] = head.split('\r\n');
  const headers = Object.fromEntries(lines.map((line) => [line.slice(0, line.indexOf(':')).toLowerCase(), line.slice(line.indexOf(':') + 1).trim()]));
  return { statusCode: Number(statusLine.split(' ')[1]), headers, body };
}

describe('POST /enrich', () => {
  it('answers every input string in input order, looking duplicates up once', async () => {
    const inputs = ['1.1.1.1', 'not-an-ip', '10.0.0.1', '216.90.108.31', '1.1.1.1', '::ffff:1.1.1.1', '81.2.69.160'];
    const before = harness.cymru.connections.length;
    const { status, json } = await enrich({ ips: inputs, sources: ['maxmind', 'cymru'] });
    expect(status).toBe(200);
    expect(json.results.map((r) => r.input)).toEqual(inputs);
    expect(json.results.map((r) => r.status)).toEqual(['ok', 'invalid', 'bogon', 'ok', 'ok', 'ok', 'ok']);
    expect(json.results[5]!.ip).toBe('1.1.1.1');
    const asked = harness.cymru.connections.slice(before).flatMap((c) => c.addresses);
    expect(asked.sort()).toEqual(['1.1.1.1', '216.90.108.31']);
    expect(json.stats).toMatchObject({ total: 7, unique: 3, invalid: 1, bogon: 1 });
  });

  it('takes the ASN from MaxMind and asks Team Cymru only for addresses MaxMind cannot place', async () => {
    const { json } = await enrich({ ips: ['81.2.69.160', '216.90.108.31'], sources: ['maxmind', 'cymru'], refresh: true });
    const [london, cymru] = json.results;
    expect(london!.asn).toMatchObject({ number: 20712, name: 'Andrews & Arnold Ltd', prefix: '81.2.0.0/16', source: 'maxmind' });
    expect(london!.geo).toMatchObject({ country: 'GB', countryName: 'United Kingdom', city: 'London', timezone: 'Europe/London' });
    expect(london!.sources.cymru.status).toBe('skipped');
    expect(london!.sources.maxmind).toMatchObject({ status: 'ok' });
    expect(london!.sources.maxmind.database).toMatch(/GeoLite2-City 2026-11-17/);
    expect(cymru!.asn).toEqual({
      number: 23028,
      numbers: [23028, 3356],
      name: 'TEAM-CYMRU, US',
      prefix: '216.90.108.0/24',
      country: 'US',
      registry: 'arin',
      allocated: '1998-09-25',
      source: 'cymru',
    });
    expect(cymru!.sources.cymru.status).toBe('ok');
  });

  it('answers private, documentation and reserved ranges as bogons without any lookup', async () => {
    const bogons = ['192.168.1.1', '100.64.0.1', '127.0.0.1', '169.254.1.1', '192.0.2.7', '224.0.0.1', 'fe80::1', 'fc00::1', '2001:db8::1', '::1'];
    const before = harness.cymru.connections.length;
    const { json } = await enrich({ ips: bogons });
    expect(json.results.every((r) => r.status === 'bogon' && r.asn === null && r.range)).toBe(true);
    expect(harness.cymru.connections.length).toBe(before);
    expect(harness.greynoise.requests.length + harness.dshield.requests.length).toBe(0);
  });

  it('looks up NAT64 64:ff9b::/96 and the anycast exceptions inside bogon blocks like any routed address', async () => {
    const before = harness.cymru.connections.length;
    const { json } = await enrich({ ips: ['64:ff9b::1.2.3.4', '192.0.0.9'], sources: ['maxmind', 'cymru'] });
    expect(json.results.map((r) => [r.ip, r.status, r.range])).toEqual([
      ['64:ff9b::102:304', 'ok', undefined],
      ['192.0.0.9', 'ok', undefined],
    ]);
    const asked = harness.cymru.connections.slice(before).flatMap((c) => c.addresses);
    expect(asked.sort()).toEqual(['192.0.0.9', '64:ff9b::102:304']);
  });

  it('explains why a string is not an address', async () => {
    const { json } = await enrich({ ips: ['010.1.1.1', '1.2.3.4/24', 'fe80::1%eth0', ''] });
    expect(json.results.map((r) => r.status)).toEqual(['invalid', 'invalid', 'invalid', 'invalid']);
    expect(json.results.map((r) => r.error)).toEqual([
      expect.stringMatching(/dotted-decimal/),
      expect.stringMatching(/CIDR/),
      expect.stringMatching(/zone/),
      'empty string',
    ]);
  });

  it('marks an address Team Cymru does not route as not_found, and that is not a failure', async () => {
    const { json } = await enrich({ ips: ['198.41.0.250'], sources: ['maxmind', 'cymru'] });
    expect(json.results[0]).toMatchObject({ status: 'ok', asn: null, sources: { cymru: { status: 'not_found' } } });
  });

  it('caches a Team Cymru NA like an answer: the next request does not ask again', async () => {
    await enrich({ ips: ['198.41.0.250'], sources: ['maxmind', 'cymru'] });
    const before = harness.cymru.connections.length;
    const { json } = await enrich({ ips: ['198.41.0.250'], sources: ['maxmind', 'cymru'] });
    expect(json.results[0]!.sources.cymru.status).toBe('not_found');
    expect(harness.cymru.connections.length).toBe(before);
  });

  it('persists the merged record in PostgreSQL and updates it when enriched again', async () => {
    await enrich({ ips: ['1.1.1.1'], sources: ['maxmind', 'cymru'] });
    const first = await db.query<{ cymru: { name: string }; lookup_count: number; updated_at: Date }>(
      "SELECT cymru, lookup_count, updated_at FROM ip_record WHERE ip = '1.1.1.1'",
    );
    expect(first.rows[0]!.cymru.name).toBe('CLOUDFLARENET, US');
    whoisTable.set('1.1.1.1', { ...defaultRow('1.1.1.1'), asns: [13335], name: 'CLOUDFLARE RENAMED, US' });
    const { json } = await enrich({ ips: ['1.1.1.1'], sources: ['maxmind', 'cymru'], refresh: true });
    expect(json.results[0]!.asn!.name).toBe('CLOUDFLARE RENAMED, US');
    const second = await db.query<{ cymru: { name: string }; lookup_count: number; updated_at: Date }>(
      "SELECT cymru, lookup_count, updated_at FROM ip_record WHERE ip = '1.1.1.1'",
    );
    expect(second.rows[0]!.cymru.name).toBe('CLOUDFLARE RENAMED, US');
    expect(second.rows[0]!.lookup_count).toBeGreaterThan(first.rows[0]!.lookup_count);
    expect(second.rows[0]!.updated_at.getTime()).toBeGreaterThan(first.rows[0]!.updated_at.getTime());
  });

  it('queries Team Cymru in batches of CYMRU_BATCH_SIZE, not one connection per address', async () => {
    const ips = Array.from({ length: 120 }, (_, i) => `45.${i}.1.1`);
    const before = harness.cymru.connections.length;
    const { json } = await enrich({ ips, sources: ['maxmind', 'cymru'] });
    expect(json.results.every((r) => r.status === 'ok' && r.asn?.source === 'cymru')).toBe(true);
    const connections = harness.cymru.connections.slice(before);
    expect(connections.map((c) => c.addresses.length).sort((a, b) => a - b)).toEqual([20, 50, 50]);
  });

  it('marks only the addresses of a failed batch as errors, and still answers 200', async () => {
    const failing = await startHarness({
      config: { CYMRU_BATCH_SIZE: 2, CYMRU_MAX_CONNECTIONS: 1, CYMRU_RETRIES: 1 },
      cymru: { behaviour: (index) => (index === 0 || index === 2 ? 'refuse' : 'answer') },
    });
    try {
      const response = await failing.app.inject({
        method: 'POST',
        url: '/enrich',
        payload: { ips: ['45.1.1.1', '45.1.1.2', '45.1.1.3'], sources: ['maxmind', 'cymru'] },
      });
      expect(response.statusCode).toBe(200);
      const results = response.json<EnrichAnswer>().results;
      expect(results.map((r) => r.status)).toEqual(['partial', 'partial', 'ok']);
      expect(results[0]!.sources.cymru).toMatchObject({ status: 'error', error: expect.stringMatching(/Team Cymru/) });
      const stored = new pg.Client({ connectionString: failing.database.url });
      await stored.connect();
      const rows = await stored.query<{ ip: string }>('SELECT ip FROM ip_record WHERE cymru_status IS NOT NULL');
      await stored.end();
      expect(rows.rows.map((r) => r.ip)).toEqual(['45.1.1.3']);
    } finally {
      await failing.close();
    }
  });
});

/** POST /enrich over a real socket, the way a client reads the streamed answer. */
async function postOverHttp(app: Harness['app'], body: object) {
  if (!app.server.listening) await app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = app.server.address() as AddressInfo;
  const response = await request(`http://127.0.0.1:${port}/enrich`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return response;
}

describe('the streamed answer of POST /enrich', () => {
  it('is byte for byte the whole answer serialized at once, whatever order its chunks finish in', async () => {
    // Chunks of two addresses, three queries at once; the first query hangs until its timeout, so the
    // chunks after it finish first and the head of the list is final last.
    const streamed = await startHarness({
      config: { CYMRU_BATCH_SIZE: 2, CYMRU_MAX_CONNECTIONS: 3, CYMRU_RETRIES: 0, CYMRU_TIMEOUT_MS: 300 },
      cymru: { behaviour: (index) => (index === 0 ? 'hang' : 'answer') },
    });
    try {
      const inputs = ['45.2.0.1', 'nope', '45.2.0.2', '10.1.1.1', '45.2.0.3', ' 45.2.0.4', '45.2.0.5', '45.2.0.1', '::ffff:45.2.0.3'];
      const response = await postOverHttp(streamed.app, { ips: inputs, sources: ['maxmind', 'cymru'] });
      expect(response.statusCode).toBe(200);
      expect(response.headers['content-type']).toBe('application/json; charset=utf-8');
      const text = await response.body.text();
      const answer = JSON.parse(text) as EnrichAnswer;
      // What the route sent when it serialized the whole answer at the end: each record with JSON.stringify,
      // joined by commas, then the stats.
      const whole = `{"results":[${answer.results.map((record) => JSON.stringify(record)).join(',')}],"stats":${JSON.stringify(answer.stats)}}`;
      expect(text).toBe(whole);
      expect(answer.results.map((record) => [record.input, record.status])).toEqual([
        ['45.2.0.1', 'partial'],
        ['nope', 'invalid'],
        ['45.2.0.2', 'partial'],
        ['10.1.1.1', 'bogon'],
        ['45.2.0.3', 'ok'],
        [' 45.2.0.4', 'ok'],
        ['45.2.0.5', 'ok'],
        ['45.2.0.1', 'partial'],
        ['::ffff:45.2.0.3', 'ok'],
      ]);
      expect(answer.results[0]!.sources.cymru).toMatchObject({ status: 'error', error: expect.stringMatching(/timed out/) });
      for (const record of answer.results) expectToMatchSchema('IpRecord', record);

      // Asked again, every record comes from the cache tiers: the same records, in one piece.
      const again = await postOverHttp(streamed.app, { ips: inputs.slice(4, 7), sources: ['maxmind', 'cymru'] });
      const cached = (await again.body.json()) as EnrichAnswer;
      expect(cached.results.map((record) => JSON.stringify(record))).toEqual(answer.results.slice(4, 7).map((record) => JSON.stringify(record)));
      expect(again.headers['content-length']).toBeDefined();
    } finally {
      await streamed.close();
    }
  });

  it('ends the connection before the end of the body when the database fails after the head was sent', async () => {
    const database = await createTestDatabase();
    const url = new URL(database.url);
    const proxy = await startTcpProxy({ host: url.hostname, port: Number(url.port || 5432) });
    url.port = String(proxy.port);
    const failing = await startHarness({
      database,
      // The timeout is far above what a query takes on a loaded machine, so that only the freeze can fail one.
      config: { DATABASE_URL: url.toString(), DATABASE_TIMEOUT_MS: 1500, CYMRU_BATCH_SIZE: 2, CYMRU_MAX_CONNECTIONS: 1 },
      cymru: { queryLatencyMs: 300 },
    });
    try {
      const response = await postOverHttp(failing.app, { ips: ['45.3.0.1', '45.3.0.2', '45.3.0.3', '45.3.0.4'], sources: ['maxmind', 'cymru'] });
      // The head went out with the first chunk's records; the second chunk's write then finds no database.
      expect(response.statusCode).toBe(200);
      proxy.freeze();
      await expect(response.body.text()).rejects.toThrow();
    } finally {
      await proxy.close();
      await failing.close();
      await database.drop();
    }
  });
});

describe('concurrent requests for the same addresses', () => {
  let shared: Harness;
  beforeAll(async () => {
    shared = await startHarness({
      config: { CYMRU_BATCH_SIZE: 500, ENRICH_MAX_IPS: 500 },
      // Long enough for every request to have read the tiers and reached the upstream while the first one's
      // lookup is still out, however slowly this machine runs them: "at once".
      cymru: { queryLatencyMs: 500 },
      upstream: { latencyMs: 500 },
    });
  });
  afterAll(async () => shared.close());

  it('make one Team Cymru query for two identical 500-address lists sent at the same moment', async () => {
    const ips = Array.from({ length: 500 }, (_, k) => `47.${k >> 8}.${k & 255}.9`);
    const post = () => shared.app.inject({ method: 'POST', url: '/enrich', payload: { ips, sources: ['maxmind', 'cymru'] } });
    const [first, second] = await Promise.all([post(), post()]);
    expect(shared.cymru.connections).toHaveLength(1);
    const records = (response: typeof first) => response.json<EnrichAnswer>().results;
    expect(records(second).map((record) => [record.ip, record.status, record.asn?.number])).toEqual(
      records(first).map((record) => [record.ip, 'ok', record.asn?.number]),
    );
    expect(second.json<EnrichAnswer>().stats.sources.cymru).toMatchObject({ lookups: 500, ok: 500 });
  });

  it('cost one GreyNoise call for a hot address asked by 100 requests at once', async () => {
    const answers = await Promise.all(
      Array.from({ length: 100 }, () => shared.app.inject({ method: 'GET', url: '/ip/47.200.1.1?sources=greynoise' })),
    );
    expect(answers.every((answer) => answer.statusCode === 200)).toBe(true);
    expect(shared.greynoise.requestsFor('47.200.1.1')).toHaveLength(1);
    expect(new Set(answers.map((answer) => answer.json<IpRecord>().sources.greynoise.status))).toEqual(new Set(['not_found']));
  });
});

describe('rejected requests', () => {
  const cases: Array<[string, string | object, number, RegExp]> = [
    ['a body that is not JSON', '{"ips": [', 400, /not valid JSON/],
    ['a missing ips field', { sources: ['cymru'] }, 400, /ips/],
    ['ips that is not an array', { ips: '1.1.1.1' }, 400, /ips/],
    ['ips with a non-string element', { ips: ['1.1.1.1', 7] }, 400, /ips/],
    ['an unknown source', { ips: ['1.1.1.1'], sources: ['shodan'] }, 400, /sources/],
    ['an unknown field', { ips: ['1.1.1.1'], refrech: true }, 400, /refrech/],
  ];
  for (const [name, payload, status, detail] of cases) {
    it(`answers ${status} problem+json for ${name}`, async () => {
      const response = await harness.app.inject({
        method: 'POST',
        url: '/enrich',
        headers: { 'content-type': 'application/json' },
        payload: typeof payload === 'string' ? payload : JSON.stringify(payload),
      });
      expect(response.statusCode).toBe(status);
      expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
      const problem = response.json<{ type: string; title: string; status: number; detail: string }>();
      expectToMatchSchema('Problem', problem);
      expect(problem).toMatchObject({ status, title: expect.any(String), type: expect.any(String) });
      expect(problem.detail).toMatch(detail);
    });
  }

  it('answers 413 when the list is longer than ENRICH_MAX_IPS', async () => {
    const { status, json, contentType } = await enrich({ ips: Array.from({ length: 301 }, () => '1.1.1.1') });
    expect(status).toBe(413);
    expect(contentType).toMatch(/problem\+json/);
    expect((json as unknown as { detail: string }).detail).toMatch(/301 .*ENRICH_MAX_IPS allows 300/);
  });

  it.each([
    ['text/plain'],
    ['text/plain; charset=utf-8'],
    ['application/x-www-form-urlencoded'],
    ['application/xml'],
    ['application/vnd.api+json'],
  ])('answers 415 problem+json for a JSON-looking body sent as %s', async (contentType) => {
    const response = await harness.app.inject({
      method: 'POST',
      url: '/enrich',
      headers: { 'content-type': contentType },
      payload: '{"ips": ["1.1.1.1"]}',
    });
    const problem = expectProblem(response, 415, 'unsupported-media-type');
    expect(problem.detail).toBe(`the body must be application/json, not ${contentType}`);
  });

  it('answers 415 problem+json for a body without a content type', async () => {
    const response = await harness.app.inject({ method: 'POST', url: '/enrich', payload: '{"ips": ["1.1.1.1"]}' });
    expect(expectProblem(response, 415, 'unsupported-media-type').detail).toMatch(/application\/json.*no content type/);
  });

  it('accepts application/json with a charset parameter', async () => {
    const response = await harness.app.inject({
      method: 'POST',
      url: '/enrich',
      headers: { 'content-type': 'application/json; charset=utf-8' },
      payload: '{"ips": ["not-an-ip"]}',
    });
    expect(response.statusCode).toBe(200);
    expect(response.json<EnrichAnswer>().results[0]!.status).toBe('invalid');
  });

  it.each([
    ['a path that is not valid percent-encoding', 400, 'invalid-url', /percent-encoded UTF-8/, '/ip/%ZZ'],
    ['a percent-encoded path that is not UTF-8', 400, 'invalid-url', /percent-encoded UTF-8/, '/ip/%C0%AF'],
    ['an unknown route with a bad percent-encoding', 400, 'invalid-url', /percent-encoded UTF-8/, '/%ZZ'],
    ['a path parameter longer than the router takes', 414, 'uri-too-long', /longer than 100 characters/, `/ip/${'1'.repeat(150)}`],
  ])('answers %s with %i problem+json that shows no internals', async (_name, status, code, detail, url) => {
    const response = await harness.app.inject({ method: 'GET', url });
    expect(expectProblem(response, status, code).detail).toMatch(detail);
    expect(response.body).not.toMatch(/FST_|statusCode|1{150}/);
  });

  describe('refused by the HTTP parser, before any route', () => {
    let port: number;
    beforeAll(async () => {
      await harness.app.listen({ host: '127.0.0.1', port: 0 });
      port = (harness.app.server.address() as AddressInfo).port;
    });

    it('answers a malformed request with 400 problem+json', async () => {
      const response = await rawExchange(port, 'GET /healthz HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n');
      expect(expectProblem(response, 400, 'malformed-request').detail).toMatch(/not valid HTTP/);
    });

    it('answers headers larger than Node accepts with 431 problem+json', async () => {
      const response = await rawExchange(port, `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
      expect(expectProblem(response, 431, 'headers-too-large').detail).toMatch(/headers/);
    });

    it('answers a request that does not arrive in time with 408 problem+json', async () => {
      const { server } = harness.app;
      server.once('connection', (socket: Socket) => {
        // Node looks for overdue requests every 30 s or more; the error it then raises is raised here at once.
        const overdue = Object.assign(new Error('Request timeout'), { code: 'ERR_HTTP_REQUEST_TIMEOUT' });
        setTimeout(() => server.emit('clientError', overdue, socket), 50);
      });
      const response = await rawExchange(port, 'GET /healthz HTTP/1.1\r\nHost: x\r\n');
      expect(expectProblem(response, 408, 'request-timeout').detail).toMatch(/in time/);
    });
  });

  it('answers 404 problem+json for an unknown route', async () => {
    const response = await harness.app.inject({ method: 'GET', url: '/nope' });
    expect(response.statusCode).toBe(404);
    expect(response.headers['content-type']).toMatch(/problem\+json/);
  });
});

describe('GET /ip/:addr', () => {
  it('enriches one address on demand in its canonical form', async () => {
    const response = await harness.app.inject({ method: 'GET', url: '/ip/2A02:D8:0:0::1?sources=maxmind&sources=cymru' });
    expect(response.statusCode).toBe(200);
    const record = response.json<IpRecord>();
    expectToMatchSchema('IpRecord', record);
    expect(record).toMatchObject({ ip: '2a02:d8::1', status: 'ok', asn: { number: 8473 }, geo: { city: 'Stockholm' } });
  });

  it('answers a bogon with 200 and status bogon', async () => {
    const response = await harness.app.inject({ method: 'GET', url: '/ip/10.1.2.3' });
    expect(response.json<IpRecord>()).toMatchObject({ status: 'bogon', range: 'private' });
  });

  it('answers 400 problem+json for a non-address', async () => {
    const response = await harness.app.inject({ method: 'GET', url: '/ip/example.com' });
    expect(response.statusCode).toBe(400);
    expect(response.headers['content-type']).toMatch(/problem\+json/);
    expect(response.json<{ detail: string }>().detail).toMatch(/example\.com.*not an IP address/);
  });
});

describe('operations', () => {
  it('reports liveness and readiness with each source state', async () => {
    expect((await harness.app.inject({ method: 'GET', url: '/healthz' })).json<unknown>()).toEqual({ status: 'ok' });
    const ready = await harness.app.inject({ method: 'GET', url: '/readyz' });
    expect(ready.statusCode).toBe(200);
    expectToMatchSchema('Readiness', ready.json());
    expect(ready.json<Record<string, unknown>>()).toMatchObject({
      status: 'ready',
      database: { status: 'ok' },
      sources: {
        maxmind: { status: 'ready', databases: [{ type: 'GeoLite2-City' }, { type: 'GeoLite2-ASN' }] },
        cymru: { status: 'ready' },
        dshield: { status: 'ready' },
      },
    });
  });
});
