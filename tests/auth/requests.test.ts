import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LogLine } from '../doubles/logger.js';
import { startHarness, type Harness } from '../support/app.js';

type Line = LogLine & { reqId?: string };

describe('request ids', () => {
  let harness: Harness;
  let lines: Line[];
  beforeAll(async () => {
    lines = [];
    const stream = { write: (line: string) => void lines.push(JSON.parse(line) as Line) };
    harness = await startHarness({ config: { LOG_LEVEL: 'debug' }, overrides: { logger: { level: 'debug', stream } } });
  });
  afterAll(async () => harness.close());

  it('uses a short printable X-Request-Id, in the answer header, every log line of the request and problem+json instance', async () => {
    const response = await harness.app.inject({ method: 'GET', url: '/ip/example.com', headers: { 'x-request-id': 'trace-42/abc' } });
    expect(response.headers['x-request-id']).toBe('trace-42/abc');
    expect(response.json<{ instance: string }>().instance).toBe('trace-42/abc');
    const mine = lines.filter((line) => line.reqId === 'trace-42/abc').map((line) => line.msg);
    expect(mine).toEqual(expect.arrayContaining(['incoming request', 'request completed']));
  });

  it.each([
    ['too long', 'x'.repeat(200)],
    ['not printable', 'a b\tc'],
    ['empty', ''],
  ])('makes its own id when the incoming one is %s', async (_why, incoming) => {
    const response = await harness.app.inject({ method: 'GET', url: '/healthz', headers: { 'x-request-id': incoming } });
    expect(response.headers['x-request-id']).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
  });

  it.each([
    ['/ip/%ZZ', 'invalid-url'],
    [`/ip/${'1'.repeat(150)}`, 'uri-too-long'],
  ])('logs "request completed" for %s, which the router refuses before any route', async (url, code) => {
    const response = await harness.app.inject({ method: 'GET', url });
    const id = response.headers['x-request-id'] as string;
    expect(response.json<{ code: string; instance: string }>()).toMatchObject({ code, instance: id });
    await new Promise((resolve) => setImmediate(resolve));
    expect(lines.filter((line) => line.reqId === id).map((line) => line.msg)).toEqual(['incoming request', 'request completed']);
  });
});

describe('CORS_ORIGINS', () => {
  let harness: Harness;
  beforeAll(async () => {
    harness = await startHarness({ config: { CORS_ORIGINS: 'https://soc.example.org, http://localhost:3000' } });
  });
  afterAll(async () => harness.close());

  it('answers a preflight from a listed origin, allowing the key headers and exposing the request id', async () => {
    const preflight = await harness.app.inject({
      method: 'OPTIONS',
      url: '/enrich',
      headers: { origin: 'https://soc.example.org', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,content-type' },
    });
    expect(preflight.statusCode).toBe(204);
    expect(preflight.headers['access-control-allow-origin']).toBe('https://soc.example.org');
    expect(String(preflight.headers['access-control-allow-headers'])).toMatch(/authorization/);
    const simple = await harness.app.inject({ method: 'GET', url: '/ip/10.0.0.1', headers: { origin: 'http://localhost:3000' } });
    expect(simple.headers['access-control-allow-origin']).toBe('http://localhost:3000');
    expect(String(simple.headers['access-control-expose-headers'])).toMatch(/x-request-id/);
  });

  it('gives an origin that is not listed no access', async () => {
    const response = await harness.app.inject({ method: 'GET', url: '/ip/10.0.0.1', headers: { origin: 'https://evil.example' } });
    expect(response.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('is off by default', async () => {
    const plain = await startHarness();
    try {
      const response = await plain.app.inject({ method: 'GET', url: '/ip/10.0.0.1', headers: { origin: 'https://soc.example.org' } });
      expect(response.headers['access-control-allow-origin']).toBeUndefined();
    } finally {
      await plain.close();
    }
  });
});
