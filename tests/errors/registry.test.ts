import { readFile } from 'node:fs/promises';
import { STATUS_CODES } from 'node:http';
import Fastify, { type FastifyInstance, type InjectOptions } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerApi } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { answerFrameworkError } from '../../src/errors/handlers.js';
import { PROBLEMS, type ProblemCode } from '../../src/errors/registry.js';
import { expectToMatchSchema } from '../support/contract.js';

/** The rows of README's "### Errors" table as code → status. */
async function readmeErrors(): Promise<Map<string, number>> {
  const readme = await readFile(new URL('../../README.md', import.meta.url), 'utf8');
  const section = readme.slice(readme.indexOf('\n### Errors\n'));
  const table = section.slice(0, section.indexOf('\n### ', 1));
  const rows = [...table.matchAll(/^\| (\d{3}) \| `([a-z-]+)` \|/gm)];
  return new Map(rows.map(([, status, code]) => [code!, Number(status)]));
}

describe('the error registry', () => {
  it('is what README\'s "Errors" table lists: the same codes with the same statuses', async () => {
    const documented = await readmeErrors();
    const registered = new Map(Object.entries(PROBLEMS).map(([code, { status }]) => [code, status]));
    expect(Object.fromEntries(documented)).toEqual(Object.fromEntries(registered));
  });

  it('titles every problem with the reason phrase of its status, which the client-error writer also sends', () => {
    for (const { status, title } of Object.values(PROBLEMS)) expect(title).toBe(STATUS_CODES[status]);
  });
});

describe('problems answered by the contract alone (no backend)', () => {
  let app: FastifyInstance;
  beforeAll(async () => {
    // The router's refusals reach the handlers through this constructor option, as in buildApp.
    app = Fastify({ logger: false, frameworkErrors: answerFrameworkError });
    await registerApi(app, loadConfig({}));
  });
  afterAll(async () => app.close());

  it.each<[string, ProblemCode, InjectOptions]>([
    ['an unknown route', 'not-found', { method: 'DELETE', url: '/enrich' }],
    [
      'a body whose size is not its Content-Length',
      'bad-request',
      { method: 'POST', url: '/enrich', headers: { 'content-type': 'application/json', 'content-length': '50' }, payload: '{"ips":[]}' },
    ],
    ['a body that is not JSON', 'invalid-json', { method: 'POST', url: '/enrich', headers: { 'content-type': 'application/json' }, payload: '{' }],
    ['a body against the schema', 'invalid-request', { method: 'POST', url: '/enrich', payload: { ips: 'x' } }],
    ['a body that is not JSON by its type', 'unsupported-media-type', { method: 'POST', url: '/enrich', headers: { 'content-type': 'text/plain' }, payload: '{}' }],
    ['a path that is not percent-encoded UTF-8', 'invalid-url', { method: 'GET', url: '/ip/%ZZ' }],
    ['a path parameter over the router limit', 'uri-too-long', { method: 'GET', url: `/ip/${'1'.repeat(150)}` }],
    ['a string that is not an address', 'invalid-address', { method: 'GET', url: '/ip/example.com' }],
  ])('answers %s with the status and title the registry gives %s', async (_name, code, request) => {
    const response = await app.inject(request);
    const { status, title } = PROBLEMS[code];
    expect(response.statusCode).toBe(status);
    expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
    const body = response.json<Record<string, unknown>>();
    expectToMatchSchema('Problem', body);
    expect(body).toMatchObject({ type: `urn:ip-enrich:problem:${code}`, code, status, title, instance: expect.any(String) });
  });
});
