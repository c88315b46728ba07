import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, startChild, type ChildServer } from '../../bench/service.js';
import { startCymruWhois, type CymruWhoisDouble } from '../doubles/cymru-whois.js';
import { writeTestMaxMind } from '../support/app.js';
import { buildDist } from '../support/cli.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

/** What a collector received on POST /v1/traces. */
interface Export {
  headers: IncomingHttpHeaders;
  body: Buffer;
}

let collector: Server;
const exports: Export[] = [];
let database: TestDatabase;
let cymru: CymruWhoisDouble;
let mmdbDir: string;
let service: ChildServer;

/** An OTLP/HTTP collector on loopback: it takes every export and answers as a collector does, 200 with an empty message. */
async function startCollector(): Promise<string> {
  collector = createServer((request, response) => {
    const parts: Buffer[] = [];
    request.on('data', (part: Buffer) => parts.push(part));
    request.on('end', () => {
      if (request.method === 'POST' && request.url === '/v1/traces') exports.push({ headers: request.headers, body: Buffer.concat(parts) });
      response.writeHead(request.url === '/v1/traces' ? 200 : 404, { 'content-type': 'application/x-protobuf' }).end();
    });
  });
  collector.listen(0, '127.0.0.1');
  await once(collector, 'listening');
  return `http://127.0.0.1:${(collector.address() as AddressInfo).port}`;
}

beforeAll(async () => {
  await buildDist();
  const endpoint = await startCollector();
  database = await createTestDatabase();
  cymru = await startCymruWhois();
  mmdbDir = await mkdtemp(join(tmpdir(), 'ipenrich-otlp-'));
  const files = await writeTestMaxMind(mmdbDir);
  service = await startChild({
    name: 'service',
    script: 'dist/server.js',
    port: await freePort(),
    env: {
      DATABASE_URL: database.url,
      MAXMIND_CITY_DB: files.city,
      MAXMIND_ASN_DB: files.asn,
      CYMRU_WHOIS_HOST: cymru.host,
      CYMRU_WHOIS_PORT: String(cymru.port),
      REFRESH_SCHEDULE: 'off',
      // Only what an operator sets: the endpoint. The protocol is the default, OTLP over HTTP as protobuf.
      OTEL_EXPORTER_OTLP_ENDPOINT: endpoint,
      OTEL_BSP_SCHEDULE_DELAY: '100',
    },
    dropEnv: ['REDIS_URL', 'OTEL_SERVICE_NAME', 'OTEL_TRACES_EXPORTER', 'OTEL_SDK_DISABLED', 'OTEL_EXPORTER_OTLP_PROTOCOL'],
  });
}, 120_000);

afterAll(async () => {
  await service?.stop(5000);
  collector?.close();
  await cymru?.close();
  await database?.drop();
  await rm(mmdbDir, { recursive: true, force: true });
});

describe('the built service with OTEL_EXPORTER_OTLP_ENDPOINT set', () => {
  it('sends the spans of a request to the OTLP/HTTP endpoint, in the trace of the incoming traceparent', async () => {
    const traceId = '0af7651916cd43dd8448eb211c80319c';
    const response = await fetch(`${service.url}/enrich`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', traceparent: `00-${traceId}-b7ad6b7169203331-01` },
      body: JSON.stringify({ ips: ['45.93.5.5'] }),
    });
    expect(response.status).toBe(200);

    // Protobuf carries the ids as raw bytes and names as UTF-8, so the export is read without decoding it.
    const traceBytes = Buffer.from(traceId, 'hex');
    const names = ['request', 'enrich', 'chunk', 'cache.l2', 'cymru.query', 'pg.query:SELECT', 'pg.query:INSERT', 'ip-enrich'];
    const deadline = Date.now() + 15_000;
    let received = Buffer.alloc(0);
    while (Date.now() < deadline) {
      received = Buffer.concat(exports.filter((e) => e.body.includes(traceBytes)).map((e) => e.body));
      if (names.every((name) => received.includes(name))) break;
      await sleep(100);
    }
    expect(exports[0]?.headers['content-type']).toBe('application/x-protobuf');
    for (const name of names) {
      expect(received.includes(name), `${name} in the exported spans\n${service.tail()}`).toBe(true);
    }
  });
});
